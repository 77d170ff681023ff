"""Per-head q/k RMSNorm (Qwen3) and rotary embedding, fused into one kernel on the GPU.

Unfused, rotating q and k costs about ten small launches per layer (table gathers,
halves, negation, concatenation, products) and the per-head norms six more; in a decode
step that is pure launch overhead. The reference below is the exact Hugging Face
arithmetic and the CPU path.
"""

from __future__ import annotations

import os

import torch

from lynx.kernels.rmsnorm import rms_norm_reference


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    rot_dim = cos.shape[-1]
    rot, rest = x[..., :rot_dim], x[..., rot_dim:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = rot * cos + rotate_half(rot) * sin
    return torch.cat((out, rest), dim=-1) if rest.numel() else out


def qk_norm_rope_reference(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_table: torch.Tensor, sin_table: torch.Tensor,
    q_weight: torch.Tensor | None = None, k_weight: torch.Tensor | None = None, eps: float = 1e-6,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q [T, Hq, D]``, ``k [T, Hkv, D]``: optional per-head RMSNorm, then rotary at ``positions [T]``.

    ``cos_table``/``sin_table`` are ``[P, R]`` float32 (``R <= D`` rotated dims).
    """
    if q_weight is not None and k_weight is not None:
        q = rms_norm_reference(q, q_weight, eps)[0]
        k = rms_norm_reference(k, k_weight, eps)[0]
    cos = cos_table[positions].unsqueeze(1)  # [T, 1, R]
    sin = sin_table[positions].unsqueeze(1)  # [T, 1, R]
    return _rotate(q, cos, sin), _rotate(k, cos, sin)


def torch_rope_forced() -> bool:
    """``LYNX_ROPE_BACKEND=torch`` (read at each call): the PyTorch rotary everywhere, nothing fused."""
    return os.environ.get("LYNX_ROPE_BACKEND", "auto") == "torch"


def _use_triton(q: torch.Tensor, rot_dim: int) -> bool:
    if not q.is_cuda or torch_rope_forced():
        return False
    d = q.shape[-1]
    if rot_dim != d or d < 16 or d & (d - 1):  # the kernel handles full-width power-of-two heads
        return False
    from lynx.kernels.dispatch import triton_available

    return triton_available()


def store_kv(
    k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, slots: torch.Tensor
) -> None:
    """Write ``k, v [T, Hkv, D]`` into the cache slots ``slots [T]`` (flat block*bs+offset)."""
    hkv, d = k.shape[1], k.shape[2]
    k_cache.view(-1, hkv, d).index_copy_(0, slots, k)  # [num_blocks*bs, Hkv, D]
    v_cache.view(-1, hkv, d).index_copy_(0, slots, v)


def qk_norm_rope(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_table: torch.Tensor, sin_table: torch.Tensor,
    q_weight: torch.Tensor | None = None, k_weight: torch.Tensor | None = None, eps: float = 1e-6,
    v: torch.Tensor | None = None, k_cache: torch.Tensor | None = None, v_cache: torch.Tensor | None = None,
    slots: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`qk_norm_rope_reference`; one Triton launch on CUDA.

    Given ``v``, the paged caches and ``slots``, also stores the rotated K and V there
    (fused into the same launch on CUDA).
    """
    if _use_triton(q, cos_table.shape[-1]):
        from lynx.kernels.rope_triton import qk_norm_rope_triton

        return qk_norm_rope_triton(q, k, positions, cos_table, sin_table, q_weight, k_weight, eps,
                                   v, k_cache, v_cache, slots)
    q, k = qk_norm_rope_reference(q, k, positions, cos_table, sin_table, q_weight, k_weight, eps)
    if v is not None and k_cache is not None and v_cache is not None and slots is not None:
        store_kv(k, v, k_cache, v_cache, slots)
    return q, k
