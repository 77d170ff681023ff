"""Programmatic dependent launch (PDL): let a decode kernel start before its predecessor ends.

In a CUDA-graph decode step every kernel normally waits for the previous one to finish and
flush, then ramps up from zero loads in flight: at decode sizes those gaps and ramps are a
large part of the step (docs/performance.md section 7: 64 us of kernels per layer where the
bytes need 27 at batch 1). On sm_90+ a kernel launched with the programmatic-serialisation
attribute (Triton: ``launch_pdl=True``) may start once every program of the previous kernel
has executed ``griddepcontrol.launch_dependents`` (or exited); it must execute
``griddepcontrol.wait`` -- which returns when the previous kernel has completed and its
writes are visible -- before it touches anything an earlier kernel writes or reads.

The contract every Lynx kernel with a ``PDL`` constexpr keeps
(:mod:`lynx.kernels.pdl_triton`):

* before the wait it only reads memory no kernel of the step writes (weights, block tables
  staged before the graph) and writes nothing;
* every program executes the wait, so "previous kernel complete" stays transitive down the
  chain (a program that skipped it could let its kernel finish before its predecessor);
* it triggers its dependents right at the start, so the next kernel's programs can be
  resident and waiting (or prefetching their weights) when this one drains.

Spin-waiting kernels stay deadlock-free: a kernel's dependents launch only after all of its
programs have started, so the programs that occupy SMs early are always those of earlier
kernels, which finish without it.

It is on by default (``LYNX_PDL=0`` turns it off; read at each launch, host side: a captured
CUDA graph keeps the launches it was captured with). ``LYNX_PDL=wait`` launches the same way
but never triggers early, so a kernel's dependents launch as its programs exit (only the
launch latency overlaps). ``LYNX_PDL_WAIT_ONLY`` lists kernel kinds that wait without
triggering early; its default, ``routing,norm``, is the setting measured best on the H200:
with every kernel triggering early a Qwen3-30B-A3B decode step was 2-3% faster at batch 1
and 64 but 1-2% slower at 16 (the one-launch MoE started early behind the routing kernel);
with routing and norms wait-only it was 1.00-1.01x of no PDL at batch 1, 16 and 64 for top-k
and LYNX, never slower (docs/performance.md section 9). PDL needs a CUDA device of compute
capability 9.0 or newer and a driver for CUDA 12.4 or newer (``MIN_DRIVER``; a conservative
bound for PDL inside graph capture), and is never used by Triton's interpreter.
"""

from __future__ import annotations

import functools
import os

import torch

from lynx.kernels.cuda_driver import driver_version
from lynx.kernels.triton_interpret import interpreter_enabled

PDL_ENV = "LYNX_PDL"
PDL_VALUES = {"0": 0, "1": 1, "wait": 2}
WAIT_ONLY_ENV = "LYNX_PDL_WAIT_ONLY"  # comma-separated kernel kinds that never trigger early
WAIT_ONLY_DEFAULT = "routing,norm"  # measured (module doc); "" = every kind triggers early
KINDS = ("norm", "gemm", "attention", "rope", "routing", "moe")
MIN_DRIVER = 12040  # programmatic launches captured into CUDA graphs: CUDA 12.4 drivers and newer


@functools.cache
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def pdl_mode(device: torch.device, kind: str = "") -> int:
    """The ``PDL`` constexpr for a kernel of ``kind`` (one of ``KINDS``) launched now on
    ``device``: 0 off (``LYNX_PDL=0``, a CPU or pre-sm_90 device, the interpreter), 1
    (default) trigger the next kernel at the start then wait, 2 (``LYNX_PDL=wait``, or
    ``kind`` listed in ``LYNX_PDL_WAIT_ONLY``) only wait."""
    value = os.environ.get(PDL_ENV, "1") or "1"
    if value not in PDL_VALUES:
        raise ValueError(f"{PDL_ENV}={value!r}: expected one of {sorted(PDL_VALUES)}")
    if kind and kind not in KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; expected one of {KINDS}")
    if (PDL_VALUES[value] == 0 or device.type != "cuda" or interpreter_enabled() or torch.version.hip is not None
            or _capability(device)[0] < 9):  # griddepcontrol is PTX for sm_90+ (not ROCm)
        return 0
    version = driver_version()
    if version is not None and version < MIN_DRIVER:  # (unknown: assume a current driver)
        return 0
    wait_only = [k.strip() for k in os.environ.get(WAIT_ONLY_ENV, WAIT_ONLY_DEFAULT).split(",") if k.strip()]
    unknown = set(wait_only) - set(KINDS)
    if unknown:
        raise ValueError(f"{WAIT_ONLY_ENV}: unknown kernel kinds {sorted(unknown)}; expected some of {KINDS}")
    return 2 if kind in wait_only else PDL_VALUES[value]


def pdl_launch(device: torch.device, kind: str) -> dict[str, int | bool]:
    """Keyword arguments of a Triton launch of a kernel of ``kind`` with a ``PDL`` constexpr:
    ``PDL`` (:func:`pdl_mode`) and ``launch_pdl`` (the launch attribute), on or off together."""
    mode = pdl_mode(device, kind)
    return {"PDL": mode, "launch_pdl": mode > 0}
