"""The few CUDA driver queries Lynx makes directly (``libcuda.so.1`` through ctypes).

PyTorch and Triton do not expose them: the driver's own occupancy count for a loaded kernel
(the one-launch MoE must know that all its programs fit at once) and the driver version
(programmatic dependent launch inside CUDA graphs needs a recent driver). Every query
returns None where the library or the call is unavailable; callers then fall back.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libcuda() -> ctypes.CDLL | None:
    """The CUDA driver library, or None (no NVIDIA driver on this machine)."""
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError:
        return None


def driver_resident_ctas(function: int, threads: int, shared: int) -> int | None:
    """``cuOccupancyMaxActiveBlocksPerMultiprocessor``: CTAs of a loaded kernel (``CUfunction``
    handle, ``threads`` per CTA, ``shared`` bytes of dynamic shared memory) that fit on an SM
    at once. A hand count can miss a rule of a new architecture; the driver cannot."""
    lib = libcuda()
    if lib is None:
        return None
    blocks = ctypes.c_int(0)
    rc = lib.cuOccupancyMaxActiveBlocksPerMultiprocessor(
        ctypes.byref(blocks), ctypes.c_void_p(function), ctypes.c_int(threads), ctypes.c_size_t(shared))
    return int(blocks.value) if rc == 0 else None


@functools.cache
def driver_version() -> int | None:
    """``cuDriverGetVersion``: e.g. 12040 for a CUDA 12.4 driver."""
    lib = libcuda()
    if lib is None:
        return None
    version = ctypes.c_int(0)
    return int(version.value) if lib.cuDriverGetVersion(ctypes.byref(version)) == 0 else None
