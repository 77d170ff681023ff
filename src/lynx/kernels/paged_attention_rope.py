"""Decode attention that also does the q/k norm, rotary and K/V store (one launch).

By default (``LYNX_FUSED_ROPE_ATTENTION=0`` turns it off; see :mod:`lynx.layers.attention`) it replaces the decode step's
``_qk_norm_rope_kernel`` launch (:mod:`lynx.kernels.rope_triton`) + the paged attention
launch (:mod:`lynx.kernels.paged_attention_triton`) by :func:`paged_decode_rope_partition_kernel`:
every program normalises and rotates its query heads at position ``ctx - 1`` in registers;
the program whose partition holds that position also normalises and rotates the new key,
stores K and V at the token's cache slot (``slot_mapping``, as the two-launch path does) and
passes a CTA barrier before its K/V loop reads them. The rest is
:func:`lynx.kernels.paged_attention_kernels._attend_partition`, shared with the default kernel.
Checked on an H200 by ``scripts/gpu_fused_rope_attention_check.py`` (docs/performance.md section 9).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from lynx.kernels.paged_attention_kernels import _attend_partition, program_keys
from lynx.kernels.paged_attention_triton import (
    LOG2E,
    PagedAttentionConfig,
    _prepare,
    _reduce,
    unsupported_reason,
)
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.pdl_triton import pdl_enter
from lynx.kernels.rope_triton import head_rms_norm, rope_halves


@triton.jit
def paged_decode_rope_partition_kernel(
    q_ptr,  # [B, Hq, D] raw query projection (before norm and rotary), unit stride along D
    k_ptr, v_ptr,  # [B, Hkv, D] the new token's raw key and value projections, unit stride along D
    cos_ptr, sin_ptr,  # [P, D] float32 rotary tables
    qw_ptr, kw_ptr,  # [D] per-head RMSNorm weights (NORM)
    slot_ptr,  # [B] int64: the cache slot (page * BLOCK_SIZE + offset) of the new token
    k_cache_ptr, v_cache_ptr, block_tables_ptr, context_lens_ptr, part_max_ptr, part_sum_ptr, part_out_ptr,
    out_ptr, counter_ptr,  # as paged_decode_partition_kernel
    qk_scale, window, num_parts, eps,
    stride_qb, stride_qh, stride_kb, stride_kh, stride_vb, stride_vh, table_stride, stride_bt,
    stride_cache_block, stride_cache_tok, stride_ob, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,  # BLOCK_D == HEAD_DIM (a power of two >= 16)
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_SIZE: tl.constexpr,
    PARTITION: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr, FUSED: tl.constexpr,
    NORM: tl.constexpr,  # per-head q/k RMSNorm before the rotary (Qwen3)
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    """:func:`paged_decode_partition_kernel` with the q/k norm + rotary (and K/V store) of
    ``_qk_norm_rope_kernel`` done in the same launch (decode only).

    The new token sits at position ``ctx - 1``. Every program normalises and rotates its
    ``GROUP`` query heads in registers. The program whose partition holds ``ctx - 1`` first
    normalises and rotates the new key of its KV head, stores it and the raw value in the
    cache slot ``slot_ptr[seq]`` (the engine's slot mapping: ``table[(ctx-1) // BLOCK_SIZE] *
    BLOCK_SIZE + (ctx-1) % BLOCK_SIZE`` for real rows, the trash slot for CUDA-graph padding
    rows), and passes a CTA barrier before its K/V loop reads them back; no other program
    reads that position. Norm and rotary use the same helpers (same arithmetic and casts)
    as ``_qk_norm_rope_kernel``.
    """
    pdl_enter(PDL)  # before any read of what earlier kernels write
    part, kv_head, seq, ctx, lo, hi = program_keys(context_lens_ptr, window, PARTITION)
    pos = tl.maximum(ctx - 1, 0).to(tl.int64)  # the new token's position: the rotary angle of q and k
    half = tl.arange(0, HEAD_DIM // 2)
    offs_g = tl.arange(0, BLOCK_G)
    heads = kv_head * GROUP + offs_g  # [BG] query heads sharing this KV head
    q_row = q_ptr + seq.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + half[None, :]  # [BG, D/2]
    q_ok = (offs_g < GROUP)[:, None] & (lo < hi)  # an empty program reads nothing
    x1 = tl.load(q_row, mask=q_ok, other=0.0)
    x2 = tl.load(q_row + HEAD_DIM // 2, mask=q_ok, other=0.0)
    if NORM:
        x1, x2 = head_rms_norm(x1, x2, qw_ptr, eps, HEAD_DIM)
    x1, x2 = rope_halves(x1, x2, cos_ptr, sin_ptr, pos, table_stride, HEAD_DIM)
    q = tl.reshape(tl.permute(tl.join(x1, x2), (0, 2, 1)), (BLOCK_G, BLOCK_D))  # [BG, D]: halves side by side
    if (ctx > 0) & (part == (ctx - 1) // PARTITION):  # this program owns the new token's position
        k_src = k_ptr + seq.to(tl.int64) * stride_kb + kv_head * stride_kh
        k1 = tl.load(k_src + half)
        k2 = tl.load(k_src + HEAD_DIM // 2 + half)
        if NORM:
            k1, k2 = head_rms_norm(k1, k2, kw_ptr, eps, HEAD_DIM)
        k1, k2 = rope_halves(k1, k2, cos_ptr, sin_ptr, pos, table_stride, HEAD_DIM)
        slot = tl.load(slot_ptr + seq).to(tl.int64)
        cache_row = slot * stride_cache_tok + kv_head * HEAD_DIM  # contiguous cache: slot = page * bs + offset
        v_src = v_ptr + seq.to(tl.int64) * stride_vb + kv_head * stride_vh
        tl.store(k_cache_ptr + cache_row + half, k1)
        tl.store(k_cache_ptr + cache_row + HEAD_DIM // 2 + half, k2)
        tl.store(v_cache_ptr + cache_row + half, tl.load(v_src + half))
        tl.store(v_cache_ptr + cache_row + HEAD_DIM // 2 + half, tl.load(v_src + HEAD_DIM // 2 + half))
        tl.debug_barrier()  # every thread's K/V stores precede the loop's loads of that position
    _attend_partition(
        q, k_cache_ptr, v_cache_ptr, block_tables_ptr, part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr,
        counter_ptr, qk_scale, window, num_parts, stride_bt, stride_cache_block, stride_cache_tok, stride_ob,
        stride_oh, part, kv_head, seq, ctx, lo, hi,
        HEAD_DIM, BLOCK_D, GROUP, BLOCK_G, BLOCK_SIZE, PARTITION, BLOCK_N, DOT_PRECISION, FUSED,
    )


def rope_unsupported_reason(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor,
                            v_cache: torch.Tensor, cos_table: torch.Tensor) -> str | None:
    """Why :func:`paged_decode_attention_rope_triton` cannot take these tensors (None if it can)."""
    reason = unsupported_reason(q, k_cache, v_cache)
    if reason is not None:
        return reason
    d = q.shape[-1]
    if d < 16 or d & (d - 1):
        return f"head_dim {d} is not a power of two >= 16"
    if cos_table.shape[-1] != d or cos_table.dtype != torch.float32 or cos_table.stride(-1) != 1:
        return "rotary tables must be float32 over the whole head dim (no partial rotary)"
    if k.dtype != q.dtype or v.dtype != q.dtype or k.shape != v.shape or k.shape[1:] != k_cache.shape[2:]:
        return "k, v must be [B, Hkv, D] in the query dtype"
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        return "q, k, v need unit stride along the head dim"
    return None


def paged_decode_attention_rope_triton(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
    k_cache: torch.Tensor, v_cache: torch.Tensor, slots: torch.Tensor,
    block_tables: torch.Tensor, context_lens: torch.Tensor,
    cos_table: torch.Tensor, sin_table: torch.Tensor,
    q_weight: torch.Tensor | None, k_weight: torch.Tensor | None, eps: float,
    scale: float, window: int | None, config: PagedAttentionConfig | None = None,
) -> torch.Tensor:
    """Decode attention on the raw ``q [B, Hq, D]``, ``k, v [B, Hkv, D]`` of the new tokens (decode).

    One launch does what ``qk_norm_rope_triton(..., v, k_cache, v_cache, slots)`` followed by
    :func:`paged_decode_attention_triton` do: optional per-head RMSNorm (``q_weight``,
    ``k_weight``) and rotary at position ``context_lens - 1`` (the engine's decode positions),
    the new K/V stored at ``slots [B]`` (int64, ``page * block_size + offset``), attention.
    """
    reason = rope_unsupported_reason(q, k, v, k_cache, v_cache, cos_table)
    if reason is not None:
        raise ValueError(f"fused rope + paged attention does not support {reason}")
    run = _prepare(q, k_cache, v_cache, block_tables, context_lens, window, config)
    b, _, d = q.shape
    _, page, hkv, _ = k_cache.shape
    if b == 0:
        return run.out
    norm = q_weight is not None and k_weight is not None
    slots = slots.to(torch.int64).contiguous()
    fused, cfg = run.counters is not None, run.cfg
    paged_decode_rope_partition_kernel[(run.num_parts, hkv, b)](
        q, k, v, cos_table, sin_table, q_weight if norm else cos_table, k_weight if norm else cos_table, slots,
        k_cache, v_cache, run.block_tables, run.context_lens, run.part_max, run.part_sum, run.part_out, run.out,
        run.counters if fused else run.context_lens, scale * LOG2E, run.win, run.num_parts, eps,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1), cos_table.stride(0),
        run.block_tables.stride(0), k_cache.stride(0), k_cache.stride(1), run.out.stride(0), run.out.stride(1),
        HEAD_DIM=d, BLOCK_D=run.block_d, GROUP=run.group, BLOCK_G=run.block_g,
        BLOCK_SIZE=page, PARTITION=cfg.partition_size, BLOCK_N=cfg.block_n,
        DOT_PRECISION="ieee" if q.dtype == torch.float32 else "tf32", FUSED=fused, NORM=norm,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, **pdl_launch(q.device, "attention"),
    )
    if not fused:
        _reduce(run, hkv, b, d)
    return run.out
