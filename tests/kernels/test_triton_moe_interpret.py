"""Run the Triton kernel checks in Triton's CPU interpreter, in a subprocess.

``TRITON_INTERPRET=1`` must be set before ``@triton.jit`` functions are created and would
leak into every later test of this process (and into anything else using Triton), so the
cases live in ``triton_moe_interpret_cases.py`` and run under their own pytest process.
Skipped when Triton is not installed (it is not a Lynx dependency).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES_FILE = Path(__file__).with_name("triton_moe_interpret_cases.py")


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed (optional)")
def test_triton_kernels_in_interpreter() -> None:
    env = dict(os.environ, TRITON_INTERPRET="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CASES_FILE)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout, report  # not everything skipped
