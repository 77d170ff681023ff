"""Triton kernels of paged decode attention (flash-decoding: split-K over the sequence).

One query token per sequence attends over its cached keys, which live in the pages its
block table lists (``k_cache, v_cache [num_blocks, BLOCK_SIZE, Hkv, D]``).

* :func:`paged_decode_partition_kernel`, grid ``(num_parts, Hkv, B)``: program
  ``(p, h, b)`` attends the ``GROUP`` query heads of KV head ``h`` (GQA: each K/V tile is
  read once for the whole group) over the keys of partition ``p``, i.e. positions
  ``[p*PARTITION, (p+1)*PARTITION)`` clipped to the row's valid range
  ``[max(0, ctx - window), ctx)``. The grid is static (sized from the block-table width,
  i.e. ``max_model_len``); partitions past the row's length run an empty loop and store
  nothing, so each row reads only its ``context_lens[b]`` tokens. Each program writes its
  partition's running max, softmax denominator and unnormalised output (all fp32).
  With ``FUSED`` (the default) the same launch also finishes the job: a row whose keys
  fit in one partition writes its output directly, and otherwise the last of the row's
  programs to arrive (an acquire/release counter per ``(b, h)``, left at zero) merges the
  partitions. That saves the second launch, ~2.5 µs per layer at decode sizes on the H200.
* :mod:`lynx.kernels.paged_attention_rope` (default; ``LYNX_FUSED_ROPE_ATTENTION=0`` turns it off):
  the same program, which first applies the per-head q/k RMSNorm and rotary itself (and
  stores the new token's K/V), replacing the separate ``_qk_norm_rope_kernel`` launch; it
  shares :func:`_attend_partition` with the partition kernel.
* :func:`paged_decode_reduce_kernel`, grid ``(Hkv, B)``: the same merge as a second
  launch, for calls without a counter workspace (first call inside a graph capture).

Both merge with :func:`_merge_partitions` in the fixed order of the partitions, so the
result does not depend on which program arrived last, and the fused and two-launch paths
are bit-identical. Scores use base 2 (``qk_scale = scale * log2(e)``, ``exp2``) throughout.
The query-head group is padded to ``BLOCK_G >= 16`` and the head dim to ``BLOCK_D >= 16``
(masked, zero-filled) so both products are ``tl.dot`` tiles; decode is memory-bound, so
the wasted tensor-core work is free while the K/V bytes read are exactly those needed.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.pdl_triton import pdl_enter


@triton.jit
def _merge_partitions(
    part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr, seq, kv_head, num_kv_heads, first_part, end_part,
    num_parts, stride_ob, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
):
    """Merge partitions ``[first_part, end_part)`` of row ``seq``, KV head ``kv_head``; store the output.

    Loads bypass L1 (``.cg``): the partials were just written by other programs.
    """
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    g_ok = offs_g < GROUP
    d_ok = offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g  # [BG]
    row0 = ((seq * num_kv_heads * GROUP + heads) * num_parts).to(tl.int64)  # [BG] first partial of each head
    m = tl.zeros([BLOCK_G], dtype=tl.float32) - float("inf")
    l = tl.zeros([BLOCK_G], dtype=tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], dtype=tl.float32)
    for part in range(first_part, end_part):
        m_p = tl.load(part_max_ptr + row0 + part, mask=g_ok, other=0.0, cache_modifier=".cg")  # [BG]
        l_p = tl.load(part_sum_ptr + row0 + part, mask=g_ok, other=0.0, cache_modifier=".cg")
        o_ptrs = part_out_ptr + (row0 + part)[:, None] * HEAD_DIM + offs_d[None, :]  # [BG, BD]
        o_p = tl.load(o_ptrs, mask=g_ok[:, None] & d_ok[None, :], other=0.0, cache_modifier=".cg")
        m_new = tl.maximum(m, m_p)  # finite: every stored partition had a valid key
        a = tl.exp2(m - m_new)
        b = tl.exp2(m_p - m_new)
        l = l * a + l_p * b
        acc = acc * a[:, None] + o_p * b[:, None]
        m = m_new
    out = tl.where(l[:, None] > 0, acc / l[:, None], 0.0)  # l == 0 only for a (contract-violating) empty row
    out_ptrs = out_ptr + seq.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]  # [BG, BD]
    tl.store(out_ptrs, out.to(out_ptr.dtype.element_ty), mask=g_ok[:, None] & d_ok[None, :])


@triton.jit
def _row_partitions(ctx, window, num_parts, PARTITION: tl.constexpr):
    """``(first, end)``: the partitions holding a key the row attends, i.e. the programs that store.

    Outside the contract the range stays consistent with what the programs do, so an arrival
    counter always reaches its target and is reset: ``end`` is clipped to the grid (a row
    longer than its table), and a row attending no key (``ctx < 1`` or ``window < 1``) gets
    ``first == end`` (its output is 0, as the reference's empty softmax is not defined).
    """
    start = tl.maximum(ctx - window, 0)  # first attended position
    first = start // PARTITION
    end = tl.minimum((ctx + PARTITION - 1) // PARTITION, num_parts)
    end = tl.where(start < ctx, tl.maximum(end, first), first)
    return first, end


@triton.jit
def program_keys(context_lens_ptr, window, PARTITION: tl.constexpr):
    """``(part, kv_head, seq, ctx, lo, hi)`` of a partition program (grid ``(num_parts, Hkv, B)``):
    it attends keys ``[lo, hi)`` of row ``seq`` (``lo >= hi``: none)."""
    part = tl.program_id(0)
    kv_head = tl.program_id(1)
    seq = tl.program_id(2)
    ctx = tl.load(context_lens_ptr + seq)
    lo = tl.maximum(part * PARTITION, tl.maximum(ctx - window, 0))  # first key of this program
    hi = tl.minimum(part * PARTITION + PARTITION, ctx)  # one past its last key
    return part, kv_head, seq, ctx, lo, hi


@triton.jit
def paged_decode_partition_kernel(
    q_ptr,  # [B, Hq, D], unit stride along D
    k_cache_ptr, v_cache_ptr,  # [num_blocks, BLOCK_SIZE, Hkv, D] contiguous
    block_tables_ptr,  # [B, M] int32, unit column stride
    context_lens_ptr,  # [B] int32: cached tokens of the row, current one included
    part_max_ptr, part_sum_ptr,  # [B, Hq, num_parts] float32 out
    part_out_ptr,  # [B, Hq, num_parts, HEAD_DIM] float32 out (unnormalised)
    out_ptr,  # [B, Hq, HEAD_DIM] out, the query dtype (FUSED)
    counter_ptr,  # [>= B * Hkv] int32, zero between calls (FUSED)
    qk_scale,  # softmax scale * log2(e)
    window,  # keys with pos > last - window attend (a huge value for "no window")
    num_parts,
    stride_qb, stride_qh, stride_bt,
    stride_cache_block, stride_cache_tok,  # in elements
    stride_ob, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,  # tokens per cache page
    PARTITION: tl.constexpr, BLOCK_N: tl.constexpr,  # tokens per program / per loop step
    DOT_PRECISION: tl.constexpr,
    FUSED: tl.constexpr,  # merge in the last-arriving program (else paged_decode_reduce_kernel does)
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    part, kv_head, seq, ctx, lo, hi = program_keys(context_lens_ptr, window, PARTITION)

    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    g_ok = offs_g < GROUP
    d_ok = offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g  # [BG] query heads sharing this KV head
    q_ptrs = q_ptr + seq.to(tl.int64) * stride_qb + heads[:, None] * stride_qh + offs_d[None, :]  # [BG, BD]
    q = tl.load(q_ptrs, mask=g_ok[:, None] & d_ok[None, :], other=0.0)
    _attend_partition(
        q, k_cache_ptr, v_cache_ptr, block_tables_ptr, part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr,
        counter_ptr, qk_scale, window, num_parts, stride_bt, stride_cache_block, stride_cache_tok, stride_ob,
        stride_oh, part, kv_head, seq, ctx, lo, hi,
        HEAD_DIM, BLOCK_D, GROUP, BLOCK_G, BLOCK_SIZE, PARTITION, BLOCK_N, DOT_PRECISION, FUSED,
    )


@triton.jit
def _attend_partition(
    q, k_cache_ptr, v_cache_ptr, block_tables_ptr, part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr,
    counter_ptr, qk_scale, window, num_parts, stride_bt, stride_cache_block, stride_cache_tok, stride_ob,
    stride_oh, part, kv_head, seq, ctx, lo, hi,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
    BLOCK_SIZE: tl.constexpr, PARTITION: tl.constexpr, BLOCK_N: tl.constexpr, DOT_PRECISION: tl.constexpr,
    FUSED: tl.constexpr,
):
    """The partition program after its query tile ``q [BLOCK_G, BLOCK_D]`` is loaded: attend keys
    ``[lo, hi)``, then store the output (one partition), or the partials (and merge if last)."""
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    g_ok = offs_g < GROUP
    d_ok = offs_d < HEAD_DIM
    heads = kv_head * GROUP + offs_g  # [BG] query heads sharing this KV head
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

    num_kv_heads = tl.num_programs(1)
    first_part, end_part = _row_partitions(ctx, window, num_parts, PARTITION)
    keep = g_ok & (lo < hi)  # empty partitions store nothing; the merge skips them
    if FUSED:
        direct = end_part - first_part <= 1  # the row's keys are all in one partition (or none)
    else:
        direct = end_part < first_part  # never: the reduce kernel writes every output
    if direct:
        out = tl.where(l_i[:, None] > 0, acc / l_i[:, None], 0.0)  # = the one-partition merge, bit for bit
        o_ptrs = out_ptr + seq.to(tl.int64) * stride_ob + heads[:, None] * stride_oh + offs_d[None, :]  # [BG, BD]
        writer = keep | (g_ok & (end_part == first_part) & (part == 0))  # a row with no key: zeros, once
        tl.store(o_ptrs, out.to(out_ptr.dtype.element_ty), mask=writer[:, None] & d_ok[None, :])
    else:
        row = ((seq * num_kv_heads * GROUP + heads) * num_parts + part).to(tl.int64)  # [BG]
        tl.store(part_max_ptr + row, m_i, mask=keep)
        tl.store(part_sum_ptr + row, l_i, mask=keep)
        p_ptrs = part_out_ptr + row[:, None] * HEAD_DIM + offs_d[None, :]  # [BG, BD]
        tl.store(p_ptrs, acc, mask=keep[:, None] & d_ok[None, :])
        if FUSED:
            if lo < hi:
                slot = counter_ptr + seq * num_kv_heads + kv_head
                tl.debug_barrier()  # every thread's partial stores precede the release below
                done = tl.atomic_add(slot, 1, sem="acq_rel", scope="gpu")
                if done == end_part - first_part - 1:  # last to arrive: every partial is written
                    _merge_partitions(part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr, seq, kv_head,
                                      num_kv_heads, first_part, end_part, num_parts, stride_ob, stride_oh,
                                      HEAD_DIM, BLOCK_D, GROUP, BLOCK_G)
                    tl.store(slot, 0)  # ready for the next call (graph replay)


@triton.jit
def paged_decode_reduce_kernel(
    part_max_ptr, part_sum_ptr,  # [B, Hq, num_parts] float32
    part_out_ptr,  # [B, Hq, num_parts, HEAD_DIM] float32
    out_ptr,  # [B, Hq, HEAD_DIM] out, the query dtype
    context_lens_ptr,  # [B] int32
    window, num_parts,
    stride_ob, stride_oh,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, GROUP: tl.constexpr, BLOCK_G: tl.constexpr,
    PARTITION: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    kv_head = tl.program_id(0)
    seq = tl.program_id(1)
    ctx = tl.load(context_lens_ptr + seq)
    first_part, end_part = _row_partitions(ctx, window, num_parts, PARTITION)  # exactly the partitions that stored
    _merge_partitions(part_max_ptr, part_sum_ptr, part_out_ptr, out_ptr, seq, kv_head, tl.num_programs(0),
                      first_part, end_part, num_parts, stride_ob, stride_oh, HEAD_DIM, BLOCK_D, GROUP, BLOCK_G)
