"""Kept so old commands still work: the same as ``lynx bench attention`` (see its ``--help``)."""

import sys
import types
from pathlib import Path

# lynx from this checkout as a bare namespace package, as before: the check needs lynx.kernels, not the engine
sys.modules["lynx"] = types.ModuleType("lynx")
sys.modules["lynx"].__path__ = [str(Path(__file__).resolve().parents[1] / "src" / "lynx")]

from lynx.bench.attention import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
