"""Device side of programmatic dependent launch (see :mod:`lynx.kernels.pdl` for the contract).

:func:`pdl_enter` compiles to nothing when ``PDL`` is 0 (or None, as in an ahead-of-time
compile that omits it), which it always is in Triton's interpreter (it cannot run inline PTX).
"""

from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait


@triton.jit
def pdl_enter(PDL: tl.constexpr):
    """Start of a PDL kernel (``PDL``: 0 off, 1 trigger then wait, 2 wait only, so that the next
    kernel launches only as this one's programs exit): call it before the first read of
    anything a kernel writes."""
    if PDL == 1:  # (== rather than >: an AOT compile that omits PDL passes None)
        gdc_launch_dependents()
    if PDL == 1 or PDL == 2:
        gdc_wait()


@triton.jit
def prefetch_l2(ptrs, nbytes):
    """Bulk-prefetch ``nbytes`` (a multiple of 16; 16-byte aligned addresses) from each of
    ``ptrs`` into L2 (``cp.async.bulk.prefetch.L2``, sm_90+). No registers hold the data, so a
    PDL kernel can warm L2 with its weights before it waits for its inputs."""
    tl.inline_asm_elementwise(
        "cp.async.bulk.prefetch.L2.global [$1], $2;\n\tmov.u32 $0, 0;", "=r,l,r",
        [ptrs, nbytes], dtype=tl.int32, is_pure=False, pack=1,
    )
