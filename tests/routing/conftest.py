"""Make ``lynx`` importable from the src layout when it is not installed (CI installs it)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("lynx") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))
