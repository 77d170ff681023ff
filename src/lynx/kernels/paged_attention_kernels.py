"""Triton kernels of paged decode attention (flash-decoding: split-K over the sequence).

One query token per sequence attends over its cached keys, which live in the pages its
block table lists (``k_cache, v_cache [num_blocks, BLOCK_SIZE, Hkv, D]``).

* :func:`paged_decode_partition_kernel`, grid ``(num_parts, Hkv, B)``: program
  ``(p, h, b)`` attends the ``GROUP`` query heads of KV head ``h`` (GQA: each K/V tile is
  read once for the whole group) over the keys of partition ``p``, i.e. positions
  ``[p*PARTITION, (p+1)*PARTITION)`` clipped to the row's valid range
  ``[max(0, ctx - window), ctx)``. It writes the partition's running max, softmax
  denominator and unnormalised output (all fp32). The grid is static (sized from the
  block-table width, i.e. ``max_model_len``); partitions past the row's length run an
  empty loop and store nothing, so each row reads only its ``context_lens[b]`` tokens.
* :func:`paged_decode_reduce_kernel`, grid ``(Hq, B)``: combines a row's valid
  partitions (the same ones, recomputed from ``context_lens``) into the output.

Scores use base 2 (``qk_scale = scale * log2(e)``, ``exp2``) throughout, in both kernels.
The query-head group is padded to ``BLOCK_G >= 16`` and the head dim to ``BLOCK_D >= 16``
(masked, zero-filled) so both products are ``tl.dot`` tiles; decode is memory-bound, so
the wasted tensor-core work is free while the K/V bytes read are exactly those needed.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def paged_decode_partition_kernel(
    q_ptr,  # [B, Hq, D], unit stride along D
    k_cache_ptr, v_cache_ptr,  # [num_blocks, BLOCK_SIZE, Hkv, D] contiguous
    block_tables_ptr,  # [B, M] int32, unit column stride
    context_lens_ptr,  # [B] int32: cached tokens of the row, current one included
    part_max_ptr, part_sum_ptr,  # [B, Hq, num_parts] float32 out
    part_out_ptr,  # [B, Hq, num_parts, HEAD_DIM] float32 out (unnormalised)
    qk_scale,  # softmax scale * log2(e)
    window,  # keys with pos > last - window attend (a huge value for "no window")
    num_parts,
    stride_qb, stride_qh, stride_bt,
    stride_cache_block, stride_cache_tok,  # in elements
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,  # tokens per cache page
    PARTITION: tl.constexpr, BLOCK_N: tl.constexpr,  # tokens per program / per loop step
    DOT_PRECISION: tl.constexpr,
):
    part = tl.program_id(0)
    kv_head = tl.program_id(1)
    seq = tl.program_id(2)
    ctx = tl.load(context_lens_ptr + seq)
    lo = tl.maximum(part * PARTITION, tl.maximum(ctx - window, 0))  # first key of this program
    hi = tl.minimum(part * PARTITION + PARTITION, ctx)  # one past its last key; lo >= hi: none

    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    g_ok = offs_g < GROUP
    d_ok = offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g  # [BG] query heads sharing this KV head
    q_ptrs = q_ptr + seq.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :]  # [BG, BD]
    q = tl.load(q_ptrs, mask=g_ok[:, None] & d_ok[None, :], other=0.0)

    m_i = tl.zeros([BLOCK_G], dtype=tl.float32) - float("inf")  # running max (base-2 logits)
    l_i = tl.zeros([BLOCK_G], dtype=tl.float32)  # running softmax denominator
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)  # running sum of p * v
    bt_row = block_tables_ptr + seq.to(tl.int64) * stride_bt
    head_off = kv_head * HEAD_DIM
    # Steps start BLOCK_N-aligned so a step covers whole pages; every step then holds at
    # least one valid key (lo is in the first, each later start is < hi), so m_i stays
    # finite and no (-inf) - (-inf) NaN appears.
    for start in range(lo - lo % BLOCK_N, hi, BLOCK_N):
        pos = start + tl.arange(0, BLOCK_N)  # [BN] token positions
        ok = (pos >= lo) & (pos < hi)
        page = tl.load(bt_row + pos // BLOCK_SIZE, mask=ok, other=0).to(tl.int64)  # [BN]
        tok = page * stride_cache_block + (pos % BLOCK_SIZE) * stride_cache_tok + head_off  # [BN]
        k = tl.load(k_cache_ptr + tok[None, :] + offs_d[:, None],
                    mask=ok[None, :] & d_ok[:, None], other=0.0)  # [BD, BN] = K^T
        s = tl.dot(q, k, input_precision=DOT_PRECISION) * qk_scale  # [BG, BN] fp32
        s = tl.where(ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))  # [BG]
        alpha = tl.exp2(m_i - m_new)  # rescales what was accumulated under the old max
        p = tl.exp2(s - m_new[:, None])  # [BG, BN]
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_cache_ptr + tok[:, None] + offs_d[None, :],
                    mask=ok[:, None] & d_ok[None, :], other=0.0)  # [BN, BD]
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new

    keep = g_ok & (lo < hi)  # empty partitions store nothing; the reduction skips them
    row = ((seq * tl.num_programs(1) * GROUP + heads) * num_parts + part).to(tl.int64)  # [BG]
    tl.store(part_max_ptr + row, m_i, mask=keep)
    tl.store(part_sum_ptr + row, l_i, mask=keep)
    out_ptrs = part_out_ptr + row[:, None] * HEAD_DIM + offs_d[None, :]  # [BG, BD]
    tl.store(out_ptrs, acc, mask=keep[:, None] & d_ok[None, :])


@triton.jit
def paged_decode_reduce_kernel(
    part_max_ptr, part_sum_ptr,  # [B, Hq, num_parts] float32
    part_out_ptr,  # [B, Hq, num_parts, HEAD_DIM] float32
    out_ptr,  # [B, Hq, HEAD_DIM] out, the query dtype
    context_lens_ptr,  # [B] int32
    window, num_parts,
    stride_ob, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, PARTITION: tl.constexpr,
):
    head = tl.program_id(0)
    seq = tl.program_id(1)
    ctx = tl.load(context_lens_ptr + seq)
    # exactly the partitions the first kernel stored: those holding a valid key
    first_part = tl.maximum(ctx - window, 0) // PARTITION
    end_part = (ctx + PARTITION - 1) // PARTITION
    row0 = ((seq * tl.num_programs(0) + head) * num_parts).to(tl.int64)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    # vectors (all lanes equal) rather than scalars: loop-carried values keep one type
    m = tl.zeros([BLOCK_D], dtype=tl.float32) - float("inf")
    l = tl.zeros([BLOCK_D], dtype=tl.float32)
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    for part in range(first_part, end_part):
        m_p = tl.load(part_max_ptr + row0 + part)
        l_p = tl.load(part_sum_ptr + row0 + part)
        o_p = tl.load(part_out_ptr + (row0 + part) * HEAD_DIM + offs_d, mask=d_ok, other=0.0)  # [BD]
        m_new = tl.maximum(m, m_p)  # finite: every stored partition had a valid key
        a = tl.exp2(m - m_new)
        b = tl.exp2(m_p - m_new)
        l = l * a + l_p * b
        acc = acc * a + o_p * b
        m = m_new
    out = tl.where(l > 0, acc / l, 0.0)  # l == 0 only for a (contract-violating) empty row
    out_ptrs = out_ptr + seq.to(tl.int64) * stride_ob + head * stride_oh + offs_d
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=d_ok)
