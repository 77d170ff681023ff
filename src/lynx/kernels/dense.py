"""Which GEMM computes a dense decode projection (qkv, o_proj, router, dense MLP): cuBLAS or the skinny kernel.

``LYNX_DENSE_GEMM`` (read at each call, host side; a CUDA graph keeps what it captured):

* ``cublas``: ``F.linear`` (cuBLAS on the GPU, PyTorch on the CPU).
* ``skinny``: :func:`lynx.kernels.skinny_gemm.skinny_linear` wherever its Triton kernel
  takes the call (decode-sized rows, CUDA), else ``F.linear``.
* ``skinny:KIND,...``: the skinny kernel for those projections only (``KINDS``: ``qkv``,
  ``o_proj``, ``router``, ``mlp``), cuBLAS for the others, so that each can be measured alone.
* ``auto`` (default): ``cublas``. On the H200 the skinny kernel alone made a Qwen3-30B-A3B
  decode step 3-9% slower, and with programmatic dependent launch and an L2 bulk prefetch
  of its weights before the wait still 5-10% slower than cuBLAS (docs/performance.md
  section 9); it stays selectable for fusions cuBLAS cannot do.

The CPU path (tests, references) is always ``F.linear``: numerics there never change.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

DENSE_GEMM_ENV = "LYNX_DENSE_GEMM"
DENSE_GEMMS = ("auto", "cublas", "skinny")
KINDS = ("qkv", "o_proj", "router", "mlp")  # the dense projections of a decoder layer


def dense_gemm_choice(kind: str | None = None) -> str:
    """``"cublas"`` or ``"skinny"`` for the projection ``kind`` (None: one without a kind)."""
    value = os.environ.get(DENSE_GEMM_ENV, "auto") or "auto"
    choice, sep, kinds = value.partition(":")
    picked = {k.strip() for k in kinds.split(",") if k.strip()}
    if choice not in DENSE_GEMMS or (sep and (choice != "skinny" or not picked or picked - set(KINDS))):
        raise ValueError(f"{DENSE_GEMM_ENV}={value!r}: expected one of {DENSE_GEMMS}, or "
                         f"skinny:KIND,... with kinds among {KINDS}")
    if sep and kind not in picked:
        return "cublas"
    return "cublas" if choice == "auto" else choice


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 kind: str | None = None) -> torch.Tensor:
    """``x @ weight^T + bias`` (``nn.Linear`` layout) through the GEMM :func:`dense_gemm_choice`
    picks for the projection ``kind`` (one of ``KINDS``)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown projection kind {kind!r}; expected one of {KINDS}")
    if x.is_cuda and dense_gemm_choice(kind) == "skinny":
        from lynx.kernels.dispatch import triton_available
        from lynx.kernels.skinny_gemm import skinny_linear_triton, supports

        if supports(x, weight) is None and triton_available():
            return skinny_linear_triton(x, weight, bias)
    return F.linear(x, weight, bias)
