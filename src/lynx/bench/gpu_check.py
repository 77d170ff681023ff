"""Shared plumbing of the GPU checks (``lynx bench kernels|routing|attention``).

* :class:`RunContext`: a time budget (:meth:`~RunContext.left`), a list of result records
  (:meth:`~RunContext.record`, optionally rewritten to a JSON file after every record so a
  crashed child process still leaves what it measured) and :meth:`~RunContext.guard`, which
  turns an exception into an ``error`` record so that one failing case hides nothing.
* :func:`require_cuda`: the one-line :class:`GpuUnavailableError` the CLI prints on a machine
  without CUDA (instead of a traceback from deep inside torch).
* :func:`child_command`: the command line of a part run in its own Python process (a crash
  such as an illegal address then loses only that part), with ``lynx`` imported as a bare
  namespace package so the child loads ``lynx.kernels`` without the engine.
* :func:`json_output_path` and :func:`standalone_main`: ``--json`` / ``$OUT`` handling and the
  entry point of the old ``scripts/gpu_*_check.py`` wrappers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from lynx.errors import LynxError

T = TypeVar("T")

LYNX_DIR = Path(__file__).resolve().parents[1]  # the ``lynx`` package directory

# Run in a child ``python -c``: install ``lynx`` as a bare namespace package (its
# ``__init__`` would import the engine), then call ``<module>.child_main(argv)``.
_CHILD_BOOT = (
    "import importlib, sys, types\n"
    "pkg = types.ModuleType('lynx')\n"
    "pkg.__path__ = [sys.argv[1]]\n"
    "sys.modules['lynx'] = pkg\n"
    "sys.exit(importlib.import_module(sys.argv[2]).child_main(sys.argv[3:]))\n"
)


class GpuUnavailableError(LynxError):
    """A GPU check was asked to run on a machine without a usable CUDA device."""


def format_record(rec: dict[str, Any]) -> str:
    """One printed line per record: ``key=value`` pairs, floats to 4 significant digits."""
    return "  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items())


class RunContext:
    """Time budget, result records and error guard of one check (or one part of it).

    Args:
        deadline: wall-clock time (``clock()`` units, seconds) the run should stop by;
            :meth:`left` counts down to it. Callers may move it between parts.
        result: if given, the whole record list is rewritten there as JSON after every
            :meth:`record`, so a killed process leaves everything recorded up to then.
        max_error_chars: the ``error`` field of an error record is cut to this length.
        clock: the time source (``time.time``; tests pass a fake one).
    """

    def __init__(self, deadline: float, result: str | Path | None = None, *, max_error_chars: int = 500,
                 clock: Callable[[], float] = time.time) -> None:
        self.deadline = deadline
        self.result = None if result is None else Path(result)
        self.max_error_chars = max_error_chars
        self.clock = clock
        self.records: list[dict[str, Any]] = []

    def left(self) -> float:
        """Seconds until the deadline (negative once it has passed)."""
        return self.deadline - self.clock()

    def record(self, **rec: Any) -> None:
        """Append ``rec``, print it and (with a result file) flush all records to JSON."""
        self.records.append(rec)
        print(format_record(rec), flush=True)
        if self.result is not None:
            self.result.write_text(json.dumps(self.records))

    def guard(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run ``fn(*args, **kwargs)``; on an exception print it, record it and return None.

        ``Exception`` only: a KeyboardInterrupt still stops the run.
        """
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # keep going: one failing backend must not hide the rest
            tb = traceback.format_exc(limit=4)
            print(f"!! {what} failed: {type(exc).__name__}: {exc}\n{tb}", flush=True)
            self.record(kind="error", what=what, error=f"{type(exc).__name__}: {exc}"[: self.max_error_chars])
            return None


def cuda_available() -> bool:
    """True if torch sees a CUDA device (torch is imported only here, when asked)."""
    import torch

    return bool(torch.cuda.is_available())


def require_cuda(verb: str, device: str = "cuda") -> None:
    """Raise :class:`GpuUnavailableError` if ``device`` is a CUDA device and none is usable."""
    if device.startswith("cuda") and not cuda_available():
        raise GpuUnavailableError(
            f"lynx bench {verb} needs a CUDA GPU (torch.cuda.is_available() is False); "
            "--dry-run runs tiny shapes on the CPU in the Triton interpreter")


def child_command(module: str, argv: Sequence[str]) -> list[str]:
    """Command running ``module.child_main(argv)`` in a fresh interpreter (bare ``lynx``)."""
    return [sys.executable, "-c", _CHILD_BOOT, str(LYNX_DIR), module, *argv]


def json_output_path(json_path: str | None, default_name: str) -> Path | None:
    """Where to write the JSON result: ``--json`` if given, else ``$OUT/<default_name>`` if
    ``OUT`` is set (what the GPU scripts always did), else nowhere."""
    if json_path:
        return Path(json_path)
    out_dir = os.environ.get("OUT")
    return Path(out_dir) / default_name if out_dir else None


def add_json_argument(p: argparse.ArgumentParser, default_name: str) -> None:
    """``--json PATH`` (dest ``json_path``), defaulting to ``$OUT/<default_name>``."""
    p.add_argument("--json", dest="json_path", metavar="PATH", default=None,
                   help=f"write the JSON results to PATH (default: $OUT/{default_name} if OUT is set, else no file)")


def standalone_main(description: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                    run: Callable[[argparse.Namespace], int], argv: Sequence[str] | None = None) -> int:
    """Entry point outside the ``lynx`` CLI (the ``scripts/gpu_*_check.py`` wrappers).

    Errors a user can cause (no GPU) end in one ``<prog>: error: ...`` line and exit code 2,
    as in the CLI.
    """
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(run(args) or 0)
    except LynxError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
