"""Choose the expert-computation backend for one call of :func:`fused_experts`.

Backends:

* ``reference``: plain PyTorch loop over active experts (exact; the CPU path; host-syncs).
* ``triton``: fused-MoE Triton kernels (GPU; CUDA-graph safe; reads each active expert's
  weights once, inactive experts never). Also runs on CPU tensors under
  ``TRITON_INTERPRET=1``, which is how the tests exercise it without a GPU.
* ``grouped_mm``: two ``torch._grouped_mm`` calls (CUDA-graph safe; bf16 on CUDA).
* ``auto``: CPU -> reference; CUDA -> triton for decode-sized batches (the memory-bound
  regime it is built for), grouped_mm for large bf16 batches, reference if neither works.

The default for ``backend="auto"`` can be forced process-wide with the environment
variable ``LYNX_MOE_BACKEND`` or :func:`set_default_backend` (benchmarks, debugging).
Backend modules are imported lazily so that CPU-only users never import Triton.
"""

from __future__ import annotations

import functools
import os

import torch

from lynx.kernels.moe_reference import fused_experts_reference

BACKENDS = ("auto", "triton", "grouped_mm", "reference")

# Above this many (token, slot) pairs "auto" prefers grouped_mm. Measured on the H200
# (docs/performance.md section 6, Qwen3-30B-A3B shape, all experts active): Triton won every
# prefill row up to T=4096 (32768 pairs) by 1.6-2.1x, so the switch sits at the largest
# size measured; larger prefills are untested and keep grouped_mm.
AUTO_TRITON_MAX_PAIRS = 32768

_default_backend = os.environ.get("LYNX_MOE_BACKEND", "auto")


def set_default_backend(name: str) -> None:
    """Make ``backend="auto"`` mean ``name`` for the rest of the process."""
    global _default_backend
    if name not in BACKENDS:
        raise ValueError(f"unknown MoE backend {name!r}; expected one of {BACKENDS}")
    _default_backend = name


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True if Triton imports (its absence is normal on CPU-only installs)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install raising something else
        return False
    return True


def grouped_mm_available() -> bool:
    """True if this torch has a grouped GEMM op."""
    return hasattr(torch.nn.functional, "grouped_mm") or hasattr(torch, "_grouped_mm")


def resolve_backend(backend: str, hidden: torch.Tensor, num_pairs: int) -> str:
    """Map ``backend`` (possibly ``"auto"``) to a concrete backend name for these inputs."""
    if backend == "auto":
        backend = _default_backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown MoE backend {backend!r}; expected one of {BACKENDS}")
    if backend != "auto":
        return backend
    if not hidden.is_cuda:
        return "reference"
    bf16_grouped = hidden.dtype == torch.bfloat16 and grouped_mm_available()
    if triton_available() and (num_pairs <= AUTO_TRITON_MAX_PAIRS or not bf16_grouped):
        return "triton"
    return "grouped_mm" if bf16_grouped else "reference"


def fused_experts(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    backend: str = "auto",
) -> torch.Tensor:
    """Routed-expert FFN: ``out[t] = sum_j w[t,j] * down_e(silu(gate_e x_t) * up_e x_t)``.

    Args:
        hidden: ``[T, H]`` in the model dtype.
        w13: ``[E, 2I, H]``, rows ``0..I-1`` gate_proj, rows ``I..2I-1`` up_proj.
        w2: ``[E, H, I]`` down_proj.
        topk_weights: ``[T, k]`` float32; an all-zero row (padding token) yields a zero row
            and pairs with weight 0 are skipped (no weight reads on their account).
        topk_ids: ``[T, k]`` int64 in ``[0, E)``.
        backend: ``"auto" | "triton" | "grouped_mm" | "reference"``.

    Returns:
        ``[T, H]`` in ``hidden.dtype``.
    """
    name = resolve_backend(backend, hidden, topk_ids.numel())
    if name == "triton":
        from lynx.kernels.triton_moe import fused_experts_triton

        return fused_experts_triton(hidden, w13, w2, topk_weights, topk_ids)
    if name == "grouped_mm":
        from lynx.kernels.grouped_mm_moe import fused_experts_grouped_mm

        return fused_experts_grouped_mm(hidden, w13, w2, topk_weights, topk_ids)
    return fused_experts_reference(hidden, w13, w2, topk_weights, topk_ids)
