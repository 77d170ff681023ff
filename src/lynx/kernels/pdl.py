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

``LYNX_PDL=1`` turns it on (read at each launch, host side: a captured CUDA graph keeps the
launches it was captured with); it needs a CUDA device of compute capability 9.0 or newer
and is never used by Triton's interpreter.
"""

from __future__ import annotations

import functools
import os

import torch

from lynx.kernels.triton_interpret import interpreter_enabled

PDL_ENV = "LYNX_PDL"


@functools.lru_cache(maxsize=None)
def _capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def pdl_enabled(device: torch.device) -> bool:
    """Whether kernels launched now on ``device`` use PDL (see the module doc)."""
    if os.environ.get(PDL_ENV, "0") != "1" or device.type != "cuda" or interpreter_enabled():
        return False
    return _capability(device)[0] >= 9


def pdl_launch(device: torch.device) -> dict[str, bool]:
    """Keyword arguments of a Triton launch of a kernel with a ``PDL`` constexpr:
    ``PDL`` (compile the wait/trigger) and ``launch_pdl`` (launch attribute), both on or off."""
    on = pdl_enabled(device)
    return {"PDL": on, "launch_pdl": on}
