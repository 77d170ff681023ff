"""Rerun a test file's interpreter cases in a subprocess with ``TRITON_INTERPRET=1``.

Triton decides at decoration time whether a ``@triton.jit`` function is compiled or
interpreted, so a test process that already imported the kernels cannot switch; the kernel
test files therefore keep their interpreter cases skipped in the outer run and rerun
themselves, selected by ``-k``, in a fresh interpreter with the variable set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def assert_interpreted_cases_pass(test_file: str | Path, selector: str, timeout: float = 600) -> None:
    """Run ``pytest -k selector test_file`` under the interpreter; fail unless every selected case passed.

    A skipped case fails the run too: it would mean the interpreter was not in effect.
    """
    path = Path(test_file)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", selector, str(path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=path.parent, check=False)
    report = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, report
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, report
