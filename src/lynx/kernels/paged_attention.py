"""Decode attention over the paged KV cache: the PyTorch reference and backend dispatch.

Contract (both backends): ``q [B, Hq, D]``; ``k_cache, v_cache [num_blocks, bs, Hkv, D]``;
``block_tables [B, M]`` int32 (row ``b`` lists the pages of sequence ``b``; columns past
its length are padding and may hold anything that indexes the cache); ``context_lens
[B]`` int32, the cached tokens of each row including the current one (>= 1; CUDA-graph
padding rows use 1). The query sits at position ``last = context_lens[b] - 1`` and attends
to keys at ``pos <= last`` and, with a sliding ``window``, ``pos > last - window``.
Returns ``[B, Hq, D]`` in ``q.dtype``. ``Hq`` is a multiple of ``Hkv`` (GQA).

Backends:

* ``torch``: :func:`paged_decode_attention_reference`, gather every row's pages up to the
  table width, mask, SDPA. Exact PyTorch semantics; the CPU path and the tests' reference.
  Reads ``M * bs`` tokens per row whatever the row's length.
* ``triton``: split-K paged kernel (:mod:`lynx.kernels.paged_attention_triton`); reads only
  each row's attended tokens. CUDA (or CPU under ``TRITON_INTERPRET=1``); CUDA-graph safe.
* ``auto`` (default): ``triton`` for CUDA tensors when Triton imports and the shapes are
  supported (bf16/fp16/fp32, any head_dim <= 256, Hq/Hkv <= 64), else ``torch``.

``LYNX_ATTENTION_BACKEND=torch|triton|auto`` (read at import) or :func:`set_attention_backend`
forces the choice process-wide, e.g. to benchmark. A forced ``triton`` raises on inputs
it cannot take rather than silently measuring the other path.

On by default (``LYNX_FUSED_ROPE_ATTENTION=0`` turns it off; read at each call, host side;
a captured CUDA graph keeps the path it was captured with), the decode layer calls
:func:`paged_decode_attention_rope` instead of the q/k-norm + rotary kernel followed by
:func:`paged_decode_attention`: the Triton partition kernel applies the per-head norm
and rotary and stores the new K/V itself, one launch fewer per layer. It applies only
where :func:`fused_rope_attention_applies` says so (Triton backend, per-head or no q/k
norm, full-width rotary on a power-of-two head dim, ``LYNX_ROPE_BACKEND`` not ``torch``);
elsewhere the two-step path runs. In Triton's interpreter both paths are bit-identical. On
the H200 (docs/performance.md section 9) the K/V written equal the two-step path's except,
with the per-head norm, rare elements 1-2 bf16 ulp apart (the fp32 sum of squares is reduced
in another thread layout); the attention output differs in the last bits even without the
norm (relative 1e-5 to 6e-5: the query tile reaches the dot from registers instead of a
load, which changes the fp32 accumulation), with the same error against an fp32 reference.
It saved 1.8-3.0 us per layer at short contexts and 3-7% of a Qwen3-30B-A3B decode step
together with the one-launch MoE.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from lynx.kernels.env_flags import env_flag

ATTENTION_BACKENDS = ("auto", "torch", "triton")

_backend = os.environ.get("LYNX_ATTENTION_BACKEND", "auto") or "auto"


def set_attention_backend(name: str) -> None:
    """Use backend ``name`` for every later decode-attention call of this process."""
    global _backend
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; expected one of {ATTENTION_BACKENDS}")
    _backend = name


def paged_decode_attention_reference(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    window: int | None,
) -> torch.Tensor:
    """Gather + mask + SDPA over the full block-table width (the exact PyTorch path)."""
    b, m = block_tables.shape
    bs, hkv, d = k_cache.shape[1], k_cache.shape[2], k_cache.shape[3]
    k = k_cache[block_tables].view(b, m * bs, hkv, d).transpose(1, 2)  # [B, Hkv, S, D]
    v = v_cache[block_tables].view(b, m * bs, hkv, d).transpose(1, 2)  # [B, Hkv, S, D]
    pos = torch.arange(m * bs, device=q.device)  # [S]
    last = (context_lens.to(torch.int64) - 1)[:, None]  # [B, 1] position of the query
    mask = pos[None, :] <= last  # [B, S]
    if window is not None:
        mask &= pos[None, :] > last - window
    o = F.scaled_dot_product_attention(
        q.unsqueeze(2), k, v, attn_mask=mask[:, None, None, :], scale=scale, enable_gqa=True
    )  # [B, Hq, 1, D]
    return o.squeeze(2)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_attention_backend(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                              backend: str | None = None) -> str:
    """Concrete backend (``torch`` or ``triton``) for these inputs; see the module doc."""
    name = backend or _backend
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; expected one of {ATTENTION_BACKENDS}")
    if name == "torch":
        return name
    from lynx.kernels.dispatch import triton_available  # cached import probe

    if name == "triton":
        if not triton_available():
            raise RuntimeError("attention backend 'triton' requested but triton does not import")
        if not (q.is_cuda or _interpreting()):
            raise RuntimeError("attention backend 'triton' needs CUDA tensors (or TRITON_INTERPRET=1)")
        from lynx.kernels.paged_attention_triton import unsupported_reason

        reason = unsupported_reason(q, k_cache, v_cache)
        if reason is not None:
            raise ValueError(f"attention backend 'triton' does not support {reason}")
        return name
    if not (q.is_cuda and triton_available()):
        return "torch"
    from lynx.kernels.paged_attention_triton import unsupported_reason

    return "torch" if unsupported_reason(q, k_cache, v_cache) is not None else "triton"


def paged_decode_attention(
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    block_tables: torch.Tensor,
    context_lens: torch.Tensor,
    scale: float,
    window: int | None,
    backend: str | None = None,
) -> torch.Tensor:
    """One query per sequence over its cached keys; ``q [B, Hq, D]`` -> ``[B, Hq, D]``."""
    if resolve_attention_backend(q, k_cache, v_cache, backend) == "torch":
        return paged_decode_attention_reference(q, k_cache, v_cache, block_tables, context_lens, scale, window)
    from lynx.kernels.paged_attention_triton import paged_decode_attention_triton

    return paged_decode_attention_triton(q, k_cache, v_cache, block_tables, context_lens, scale, window)


def fused_rope_attention_applies(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                                 v_cache: torch.Tensor, cos_table: torch.Tensor) -> bool:
    """Whether the decode layer should call :func:`paged_decode_attention_rope` (see the module doc)."""
    if not env_flag("LYNX_FUSED_ROPE_ATTENTION", True):
        return False
    from lynx.kernels.rope import torch_rope_forced

    if torch_rope_forced():  # a forced torch rotary stays unfused
        return False
    if resolve_attention_backend(q, k_cache, v_cache) != "triton":
        return False
    from lynx.kernels.paged_attention_rope import rope_unsupported_reason

    return rope_unsupported_reason(q, k, v, k_cache, v_cache, cos_table) is None


def paged_decode_attention_rope(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
    slots: torch.Tensor, block_tables: torch.Tensor, context_lens: torch.Tensor,
    cos_table: torch.Tensor, sin_table: torch.Tensor, q_weight: torch.Tensor | None, k_weight: torch.Tensor | None,
    eps: float, scale: float, window: int | None,
) -> torch.Tensor:
    """Raw ``q [B, Hq, D]``, ``k, v [B, Hkv, D]`` of the new tokens (at ``context_lens - 1``) -> ``[B, Hq, D]``.

    Same result as ``qk_norm_rope(q, k, context_lens - 1, cos, sin, q_weight, k_weight, eps, v,
    k_cache, v_cache, slots)`` then :func:`paged_decode_attention` on the rotated q, in one
    Triton launch (callers check :func:`fused_rope_attention_applies`).
    """
    from lynx.kernels.paged_attention_rope import paged_decode_attention_rope_triton

    return paged_decode_attention_rope_triton(q, k, v, k_cache, v_cache, slots, block_tables, context_lens,
                                              cos_table, sin_table, q_weight, k_weight, eps, scale, window)
