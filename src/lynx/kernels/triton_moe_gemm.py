"""Triton kernels of the fused-MoE expert FFN.

Both grouped GEMMs walk row blocks: a block is ``BLOCK_M`` (token, slot) pairs of one
expert, so a program loads that expert's weight tile once and multiplies every pair of the
block with it. Grid = ``(grid_m, n_tiles)`` (static); program ``(m, n)`` handles blocks
``m, m + grid_m, ...`` below the block count, so unused blocks cost nothing and inactive
experts are never read. Where a block's expert and pairs come from (``FUSED_ALIGN``):

* ``True`` (decode): each program first derives the blocks it will process from the routing
  ids and weights (:func:`~lynx.kernels.triton_moe_align.program_blocks`: one small read, a
  histogram, a scan over E, a sort, a scatter into a scratch table private to the program), then
  reads each block's expert and rows from that table -- no metadata kernel;
* ``False``: from an :class:`~lynx.kernels.moe_align.AlignedRouting` computed beforehand.

Kernels:

* :func:`gate_up_silu_kernel`: ``inter[p] = silu(x_t @ Wg_e^T) * (x_t @ Wu_e^T)`` with gate
  and up tiles of the same columns in two fp32 accumulators (SiLU-and-mul fused, so the
  ``[P, 2I]`` pre-activation never touches memory). Program ``(0, 0)`` also zeroes the
  down kernel's tile counters when the k-sum is fused (``NUM_COUNTERS > 0``).
* :func:`down_weighted_kernel`: ``pair_out[p] = w_p * (inter[p] @ W2_e^T)`` in fp32. With
  ``FUSE_SUM`` the last program to finish an N tile (a per-tile atomic counter, acquire /
  release ordered) also sums that tile of every token's k rows into ``out`` in the fixed
  order ``j = 0..k-1``: bit-identical to :func:`sum_topk_kernel`, deterministic, and no
  third launch. The counter is reset by that program, so the kernel also replays alone.
* :func:`sum_topk_kernel`: ``out[t] = sum_j pair_out[t*k + j]`` in a fixed order, skipping
  dropped pairs whose rows were never written (used when the sum is not fused).

The tile bodies (:func:`gate_up_tile`, :func:`down_tile`: one row block times one N tile)
are separate ``@triton.jit`` helpers, inlined at compile time, so that the
one-launch kernel (:mod:`lynx.kernels.triton_moe_persistent`) runs the very same code; the
two kernels compile to the same PTX as with the bodies written inline.

Rows are pair ids ``p = t*k + j``; padding rows (``p == P``) are masked on load and store.
Inner dimensions ``H``/``I`` are constexpr: shapes are fixed per model, and it removes the
K-loop masks when ``BLOCK_K`` divides them.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.pdl_triton import pdl_enter
from lynx.kernels.triton_moe_align import program_blocks


@triton.jit
def _setup(ids_ptr, weights_ptr, table_ptr, num_slots_ptr, num_pairs, pid_m, grid_m,
           FUSED_ALIGN: tl.constexpr, NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, BLOCK_M: tl.constexpr,
           P_POW2: tl.constexpr, LOCAL_BLOCKS: tl.constexpr):
    """Number of row blocks; when fused, also fills this program's block table first."""
    if FUSED_ALIGN:
        num_blocks = program_blocks(ids_ptr, weights_ptr, table_ptr, num_pairs, pid_m, grid_m, NUM_EXPERTS,
                                    E_POW2, BLOCK_M, P_POW2, LOCAL_BLOCKS)
    else:
        num_blocks = tl.load(num_slots_ptr) // BLOCK_M
    return num_blocks


@triton.jit
def _block(table_ptr, sorted_ptr, block_expert_ptr, block, grid_m,
           FUSED_ALIGN: tl.constexpr, BLOCK_M: tl.constexpr, LOCAL_BLOCKS: tl.constexpr):
    """``(expert, pairs [BLOCK_M])`` of row block ``block`` (padding rows hold ``num_pairs``)."""
    if FUSED_ALIGN:
        local = block // grid_m  # this program's blocks are pid_m + i * grid_m
        expert = tl.load(table_ptr + local)
        pair = tl.load(table_ptr + LOCAL_BLOCKS + local * BLOCK_M + tl.arange(0, BLOCK_M))
    else:
        expert = tl.load(block_expert_ptr + block)
        pair = tl.load(sorted_ptr + block * BLOCK_M + tl.arange(0, BLOCK_M))
    return expert, pair


@triton.jit
def gate_up_tile(x_ptr, w13_ptr, inter_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k,
                 stride_x, stride_we, stride_wn, stride_inter,
                 H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """One (row block, N tile) of gate_up: ``inter[pair, offs_n] = silu(x @ Wg^T) * (x @ Wu^T)``."""
    expert = expert.to(tl.int64)
    row_ok = pair < num_pairs
    token = (pair // TOP_K).to(tl.int64)  # [BM]
    a_ptrs = x_ptr + token[:, None] * stride_x + offs_k[None, :]  # [BM, BK]
    # weight tiles loaded as [BK, BN] (W^T) so that tl.dot(a, w) = x @ W^T
    g_ptrs = w13_ptr + expert * stride_we + offs_n[None, :] * stride_wn + offs_k[:, None]  # [BK, BN]
    u_ptrs = g_ptrs + I * stride_wn  # [BK, BN] same columns of the up half
    acc_g = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    acc_u = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, H, BLOCK_K):
        if H % BLOCK_K == 0:  # compile-time: no K mask, so loads stay 16-byte vectors
            a = tl.load(a_ptrs, mask=row_ok[:, None], other=0.0)
            wg = tl.load(g_ptrs, mask=n_ok[None, :], other=0.0)
            wu = tl.load(u_ptrs, mask=n_ok[None, :], other=0.0)
        else:
            k_ok = offs_k < H - k0  # [BK]
            a = tl.load(a_ptrs, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            wg = tl.load(g_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
            wu = tl.load(u_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc_g = tl.dot(a, wg, acc_g, input_precision=DOT_PRECISION)
        acc_u = tl.dot(a, wu, acc_u, input_precision=DOT_PRECISION)
        a_ptrs += BLOCK_K
        g_ptrs += BLOCK_K
        u_ptrs += BLOCK_K
    h = acc_g * tl.sigmoid(acc_g) * acc_u  # [BM, BN] silu(gate) * up, fp32
    out_ptrs = inter_ptr + pair.to(tl.int64)[:, None] * stride_inter + offs_n[None, :]  # [BM, BN]
    tl.store(out_ptrs, h.to(inter_ptr.dtype.element_ty), mask=row_ok[:, None] & n_ok[None, :])


@triton.jit(do_not_specialize=["num_pairs", "grid_m", "num_counters"])  # fewer recompiles across batches
def gate_up_silu_kernel(
    x_ptr,  # [T, H] model dtype, row stride stride_x, unit column stride
    w13_ptr,  # [E, 2I, H]: rows 0..I-1 gate, I..2I-1 up; unit stride along H
    inter_ptr,  # [P, I] out, model dtype
    ids_ptr, weights_ptr,  # [P] routing ids / float32 weights (read when FUSED_ALIGN)
    table_ptr,  # FUSED_ALIGN: [grid_m * n_tiles, LOCAL_BLOCKS * (1 + BLOCK_M)] int32 scratch
    sorted_ptr, block_expert_ptr, num_slots_ptr,  # AlignedRouting (read unless FUSED_ALIGN)
    counter_ptr, num_counters,  # down kernel's tile counters, zeroed here (NUM_COUNTERS > 0)
    num_pairs,
    stride_x, stride_we, stride_wn, stride_inter,
    H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
    grid_m,  # programs along M (loop stride); runtime so batch sizes share one compile
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    FUSED_ALIGN: tl.constexpr, NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr,
    P_POW2: tl.constexpr, LOCAL_BLOCKS: tl.constexpr,
    NUM_COUNTERS: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid_m = tl.program_id(0)
    table_ptr += (pid_m * tl.num_programs(1) + tl.program_id(1)) * (LOCAL_BLOCKS * (1 + BLOCK_M))
    if NUM_COUNTERS > 0:
        if pid_m == 0 and tl.program_id(1) == 0:
            c = tl.arange(0, NUM_COUNTERS)
            tl.store(counter_ptr + c, tl.zeros([NUM_COUNTERS], tl.int32), mask=c < num_counters)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of I
    n_ok = offs_n < I
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    num_blocks = _setup(ids_ptr, weights_ptr, table_ptr, num_slots_ptr, num_pairs, pid_m, grid_m, FUSED_ALIGN,
                        NUM_EXPERTS, E_POW2, BLOCK_M, P_POW2, LOCAL_BLOCKS)
    for block in range(pid_m, num_blocks, grid_m):
        expert, pair = _block(table_ptr, sorted_ptr, block_expert_ptr, block, grid_m, FUSED_ALIGN, BLOCK_M,
                              LOCAL_BLOCKS)
        gate_up_tile(x_ptr, w13_ptr, inter_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k,
                     stride_x, stride_we, stride_wn, stride_inter, H, I, TOP_K, BLOCK_M, BLOCK_N, BLOCK_K,
                     DOT_PRECISION)


@triton.jit
def down_tile(inter_ptr, w2_ptr, weights_ptr, pair_out_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k,
              stride_inter, stride_we, stride_wn, stride_out,
              I: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
              DOT_PRECISION: tl.constexpr, A_CACHE: tl.constexpr):
    """One (row block, N tile) of down: ``pair_out[pair, offs_n] = w_pair * (inter[pair] @ W2^T)`` (fp32).

    ``A_CACHE``: cache modifier of the ``inter`` loads (``".cg"`` when other CTAs of the same
    launch wrote those rows, so that they come from L2, never a stale L1 line).
    """
    acc = down_acc(inter_ptr, w2_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k, stride_inter, stride_we,
                   stride_wn, I, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION, A_CACHE)
    store_weighted(acc, weights_ptr, pair_out_ptr, pair, num_pairs, offs_n, n_ok, stride_out)


@triton.jit
def down_acc(inter_ptr, w2_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k, stride_inter, stride_we, stride_wn,
             I: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
             DOT_PRECISION: tl.constexpr, A_CACHE: tl.constexpr):
    """``[BM, BN]`` fp32 ``inter[pair] @ W2[expert, offs_n]^T`` (rows past ``num_pairs``: zeros)."""
    expert = expert.to(tl.int64)
    row_ok = pair < num_pairs
    pair64 = pair.to(tl.int64)
    a_ptrs = inter_ptr + pair64[:, None] * stride_inter + offs_k[None, :]  # [BM, BK]
    w_ptrs = w2_ptr + expert * stride_we + offs_n[None, :] * stride_wn + offs_k[:, None]  # [BK, BN]
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, I, BLOCK_K):
        if I % BLOCK_K == 0:  # compile-time, as in gate_up_tile
            a = tl.load(a_ptrs, mask=row_ok[:, None], other=0.0, cache_modifier=A_CACHE)
            w = tl.load(w_ptrs, mask=n_ok[None, :], other=0.0)
        else:
            k_ok = offs_k < I - k0  # [BK]
            a = tl.load(a_ptrs, mask=row_ok[:, None] & k_ok[None, :], other=0.0, cache_modifier=A_CACHE)
            w = tl.load(w_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
        acc = tl.dot(a, w, acc, input_precision=DOT_PRECISION)
        a_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    return acc


@triton.jit
def store_weighted(acc, weights_ptr, pair_out_ptr, pair, num_pairs, offs_n, n_ok, stride_out):
    """``pair_out[pair, offs_n] = w_pair * acc`` for the rows with ``pair < num_pairs``."""
    row_ok = pair < num_pairs
    route_w = tl.load(weights_ptr + pair, mask=row_ok, other=0.0)  # [BM] fp32
    out_ptrs = pair_out_ptr + pair.to(tl.int64)[:, None] * stride_out + offs_n[None, :]  # [BM, BN]
    tl.store(out_ptrs, acc * route_w[:, None], mask=row_ok[:, None] & n_ok[None, :])


@triton.jit(do_not_specialize=["num_pairs", "grid_m", "num_tokens"])
def down_weighted_kernel(
    inter_ptr,  # [P, I] model dtype
    w2_ptr,  # [E, H, I]; unit stride along I
    weights_ptr,  # [P] float32 routing weights
    pair_out_ptr,  # [P, H] float32 out
    ids_ptr,  # [P] routing ids (read when FUSED_ALIGN)
    table_ptr,  # FUSED_ALIGN: [grid_m * n_tiles, LOCAL_BLOCKS * (1 + BLOCK_M)] int32 scratch
    sorted_ptr, block_expert_ptr, num_slots_ptr,  # AlignedRouting (read unless FUSED_ALIGN)
    out_ptr, counter_ptr,  # FUSE_SUM: [T, H] model-dtype output, [n_tiles] int32 counters (zero)
    num_pairs, num_tokens,
    stride_inter, stride_we, stride_wn, stride_out,
    H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
    grid_m,  # programs along M (loop stride); runtime so batch sizes share one compile
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
    FUSED_ALIGN: tl.constexpr, NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr,
    P_POW2: tl.constexpr, LOCAL_BLOCKS: tl.constexpr,
    FUSE_SUM: tl.constexpr, BLOCK_T: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    table_ptr += (pid_m * tl.num_programs(1) + pid_n) * (LOCAL_BLOCKS * (1 + BLOCK_M))
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of H
    n_ok = offs_n < H
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    num_blocks = _setup(ids_ptr, weights_ptr, table_ptr, num_slots_ptr, num_pairs, pid_m, grid_m, FUSED_ALIGN,
                        NUM_EXPERTS, E_POW2, BLOCK_M, P_POW2, LOCAL_BLOCKS)
    for block in range(pid_m, num_blocks, grid_m):
        expert, pair = _block(table_ptr, sorted_ptr, block_expert_ptr, block, grid_m, FUSED_ALIGN, BLOCK_M,
                              LOCAL_BLOCKS)
        down_tile(inter_ptr, w2_ptr, weights_ptr, pair_out_ptr, expert, pair, num_pairs, offs_n, n_ok, offs_k,
                  stride_inter, stride_we, stride_wn, stride_out, I, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION, "")
    if FUSE_SUM:
        # every thread's pair_out stores precede the release below (CTA barrier first)
        tl.debug_barrier()
        done = tl.atomic_add(counter_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        if done == grid_m - 1:  # last program of this N tile: all its pair rows are written
            _sum_tile(pair_out_ptr, weights_ptr, out_ptr, num_tokens, offs_n, n_ok, stride_out,
                      H, TOP_K, BLOCK_T, BLOCK_N)
            tl.store(counter_ptr + pid_n, 0)  # ready for the next call (graph replay)


@triton.jit
def _sum_tile(pair_out_ptr, weights_ptr, out_ptr, num_tokens, offs_n, n_ok, stride_out,
              H: tl.constexpr, TOP_K: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_N: tl.constexpr):
    """``out[t, offs_n] = sum_j pair_out[t*k + j, offs_n]`` over kept pairs, j ascending."""
    for t0 in range(0, num_tokens, BLOCK_T):
        token = t0 + tl.arange(0, BLOCK_T)  # [BT]
        t_ok = token < num_tokens
        acc = tl.zeros((BLOCK_T, BLOCK_N), dtype=tl.float32)
        for j in tl.static_range(TOP_K):
            pair = token.to(tl.int64) * TOP_K + j  # [BT]
            # rows of dropped pairs (weight 0) were never written: select, don't multiply (NaN * 0)
            kept = tl.load(weights_ptr + pair, mask=t_ok, other=0.0) != 0  # [BT]
            # .cg: straight from L2, where the other programs' rows are (never a stale L1 line)
            val = tl.load(pair_out_ptr + pair[:, None] * stride_out + offs_n[None, :],
                          mask=kept[:, None] & n_ok[None, :], other=0.0, cache_modifier=".cg")
            acc += val
        o_ptrs = out_ptr + token.to(tl.int64)[:, None] * H + offs_n[None, :]
        tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=t_ok[:, None] & n_ok[None, :])


@triton.jit
def sum_topk_kernel(
    pair_out_ptr,  # [T*k, H] float32 (rows of dropped pairs are garbage, never read)
    weights_ptr,  # [T*k] float32
    out_ptr,  # [T, H] model dtype
    H: tl.constexpr, TOP_K: tl.constexpr, BLOCK_H: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
):
    pdl_enter(PDL)  # before any read of what earlier kernels write
    token = tl.program_id(0).to(tl.int64)
    offs = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)  # [BH]
    ok = offs < H
    acc = tl.zeros((BLOCK_H,), dtype=tl.float32)
    for j in tl.static_range(TOP_K):
        pair = token * TOP_K + j
        # rows of dropped pairs (weight 0) were never written: select, don't multiply (NaN * 0)
        kept = tl.load(weights_ptr + pair) != 0
        val = tl.load(pair_out_ptr + pair * H + offs, mask=ok, other=0.0)  # [BH]
        acc += tl.where(kept, val, 0.0)
    tl.store(out_ptr + token * H + offs, acc.to(out_ptr.dtype.element_ty), mask=ok)
