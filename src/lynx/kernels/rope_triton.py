"""Triton kernel: optional per-head RMSNorm then rotary embedding, q and k in one launch."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lynx.kernels.pdl import pdl_launch
from lynx.kernels.pdl_triton import pdl_enter


@triton.jit
def head_rms_norm(x1, x2, w_ptr, eps, D: tl.constexpr):
    """Per-head RMSNorm of heads given as halves ``x1, x2 [..., D/2]`` (one head, or a tile of heads).

    As the unfused model: normalise in fp32, cast to the input dtype, scale by the weight
    ``[D]`` in fp32, cast. Shared by :func:`_qk_norm_rope_kernel` and the paged attention
    kernel that applies the norm and rotary itself, so the arithmetic exists once.
    """
    half = tl.arange(0, D // 2)
    dtype = x1.dtype
    a = x1.to(tl.float32)
    b = x2.to(tl.float32)
    inv = tl.rsqrt((tl.sum(a * a, axis=-1, keep_dims=True) + tl.sum(b * b, axis=-1, keep_dims=True)) / D + eps)
    w1 = tl.load(w_ptr + half).to(tl.float32)
    w2 = tl.load(w_ptr + D // 2 + half).to(tl.float32)
    x1 = (w1 * (a * inv).to(dtype).to(tl.float32)).to(dtype)
    x2 = (w2 * (b * inv).to(dtype).to(tl.float32)).to(dtype)
    return x1, x2


@triton.jit
def rope_halves(x1, x2, cos_ptr, sin_ptr, pos, table_stride, D: tl.constexpr):
    """Rotary at position ``pos`` (scalar) of halves ``x1, x2 [..., D/2]``; fp32 tables ``[P, D]``."""
    half = tl.arange(0, D // 2)
    dtype = x1.dtype
    c1 = tl.load(cos_ptr + pos * table_stride + half)
    c2 = tl.load(cos_ptr + pos * table_stride + D // 2 + half)
    s1 = tl.load(sin_ptr + pos * table_stride + half)
    s2 = tl.load(sin_ptr + pos * table_stride + D // 2 + half)
    a = x1.to(tl.float32)
    b = x2.to(tl.float32)
    o1 = (a * c1 - b * s1).to(dtype)
    o2 = (b * c2 + a * s2).to(dtype)
    return o1, o2


@triton.jit
def _qk_norm_rope_kernel(
    q_ptr, k_ptr, qo_ptr, ko_ptr, pos_ptr, cos_ptr, sin_ptr, qw_ptr, kw_ptr,
    v_ptr, kc_ptr, vc_ptr, slot_ptr,
    q_stride_t, q_stride_h, k_stride_t, k_stride_h, qo_stride_t, ko_stride_t, table_stride,
    v_stride_t, v_stride_h,
    HQ: tl.constexpr, HKV: tl.constexpr, D: tl.constexpr, eps, NORM: tl.constexpr, STORE_KV: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    t = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1)  # 0..HQ-1: a query head; HQ..: a key head
    half = tl.arange(0, D // 2)
    is_q = h < HQ
    if is_q:
        src = q_ptr + t * q_stride_t + h * q_stride_h
        dst = qo_ptr + t * qo_stride_t + h * D
        w_ptr = qw_ptr
    else:
        src = k_ptr + t * k_stride_t + (h - HQ) * k_stride_h
        dst = ko_ptr + t * ko_stride_t + (h - HQ) * D
        w_ptr = kw_ptr
    x1 = tl.load(src + half)
    x2 = tl.load(src + D // 2 + half)
    if NORM:
        x1, x2 = head_rms_norm(x1, x2, w_ptr, eps, D)
    pos = tl.load(pos_ptr + t).to(tl.int64)
    o1, o2 = rope_halves(x1, x2, cos_ptr, sin_ptr, pos, table_stride, D)
    tl.store(dst + half, o1)
    tl.store(dst + D // 2 + half, o2)
    if STORE_KV:  # key heads also write K (rotated) and V into the paged cache slot
        if not is_q:
            kv_h = h - HQ
            slot = tl.load(slot_ptr + t).to(tl.int64)
            cache_row = slot * (HKV * D) + kv_h * D
            tl.store(kc_ptr + cache_row + half, o1)
            tl.store(kc_ptr + cache_row + D // 2 + half, o2)
            v_src = v_ptr + t * v_stride_t + kv_h * v_stride_h
            tl.store(vc_ptr + cache_row + half, tl.load(v_src + half))
            tl.store(vc_ptr + cache_row + D // 2 + half, tl.load(v_src + D // 2 + half))


def qk_norm_rope_triton(
    q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, cos_table: torch.Tensor, sin_table: torch.Tensor,
    q_weight: torch.Tensor | None = None, k_weight: torch.Tensor | None = None, eps: float = 1e-6,
    v: torch.Tensor | None = None, k_cache: torch.Tensor | None = None, v_cache: torch.Tensor | None = None,
    slots: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``q [T, Hq, D]``, ``k [T, Hkv, D]`` (strided views are fine) -> new contiguous q, k.

    With ``v``, the caches (``[blocks, block_size, Hkv, D]``, contiguous) and ``slots [T]``,
    the rotated K and V are also written to the cache in the same launch.
    """
    t, hq, d = q.shape
    hkv = k.shape[1]
    assert q.stride(-1) == 1 and k.stride(-1) == 1 and cos_table.stride(-1) == 1
    q_out = torch.empty((t, hq, d), dtype=q.dtype, device=q.device)
    k_out = torch.empty((t, hkv, d), dtype=k.dtype, device=k.device)
    norm = q_weight is not None and k_weight is not None
    store = v is not None and k_cache is not None and v_cache is not None and slots is not None
    if store:
        assert k_cache.is_contiguous() and v_cache.is_contiguous() and v.stride(-1) == 1
    if t:
        _qk_norm_rope_kernel[(t, hq + hkv)](
            q, k, q_out, k_out, positions, cos_table, sin_table,
            q_weight if norm else q, k_weight if norm else k,
            v if store else q, k_cache if store else q, v_cache if store else q, slots if store else positions,
            q.stride(0), q.stride(1), k.stride(0), k.stride(1), q_out.stride(0), k_out.stride(0),
            cos_table.stride(0), v.stride(0) if store else 0, v.stride(1) if store else 0,
            HQ=hq, HKV=hkv, D=d, eps=eps, NORM=norm, STORE_KV=store, num_warps=1, **pdl_launch(q.device, "rope"),
        )
    return q_out, k_out
