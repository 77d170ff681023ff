"""Triton kernels of the fused-MoE expert FFN (metadata from ``triton_moe_align``).

Both grouped GEMMs walk the row blocks of :class:`~lynx.kernels.moe_align.AlignedRouting`:
a block is ``BLOCK_M`` (token, slot) pairs of one expert, so a program loads that expert's
weight tile once and multiplies every pair of the block with it. Grid = ``(grid_m, n_tiles)``
(static); program ``(m, n)`` handles blocks ``m, m + grid_m, ...`` below the device-side
block count, so unused blocks cost nothing and inactive experts are never read.

* :func:`gate_up_silu_kernel`: ``inter[p] = silu(x_t @ Wg_e^T) * (x_t @ Wu_e^T)`` with gate
  and up tiles of the same columns in two fp32 accumulators (SiLU-and-mul fused, so the
  ``[P, 2I]`` pre-activation never touches memory).
* :func:`down_weighted_kernel`: ``pair_out[p] = w_p * (inter[p] @ W2_e^T)`` in fp32.
* :func:`sum_topk_kernel`: ``out[t] = sum_j pair_out[t*k + j]`` in a fixed order
  (deterministic, unlike atomics), skipping dropped pairs whose rows were never written.

Rows are pair ids ``p = t*k + j``; padding rows (``p == P``) are masked on load and store.
Inner dimensions ``H``/``I`` are constexpr: shapes are fixed per model, and it removes the
K-loop masks when ``BLOCK_K`` divides them.
"""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit(do_not_specialize=["num_pairs", "grid_m"])  # fewer recompiles across batch sizes
def gate_up_silu_kernel(
    x_ptr,  # [T, H] model dtype, row stride stride_x, unit column stride
    w13_ptr,  # [E, 2I, H]: rows 0..I-1 gate, I..2I-1 up; unit stride along H
    inter_ptr,  # [P, I] out, model dtype
    sorted_ptr, block_expert_ptr, num_slots_ptr,  # AlignedRouting
    num_pairs,
    stride_x, stride_we, stride_wn, stride_inter,
    H: tl.constexpr, I: tl.constexpr, TOP_K: tl.constexpr,
    grid_m,  # programs along M (loop stride); runtime so batch sizes share one compile
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of I
    n_ok = offs_n < I
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    num_blocks = tl.load(num_slots_ptr) // BLOCK_M
    for block in range(pid_m, num_blocks, grid_m):
        expert = tl.load(block_expert_ptr + block).to(tl.int64)
        pair = tl.load(sorted_ptr + block * BLOCK_M + tl.arange(0, BLOCK_M))  # [BM]
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


@triton.jit(do_not_specialize=["num_pairs", "grid_m"])
def down_weighted_kernel(
    inter_ptr,  # [P, I] model dtype
    w2_ptr,  # [E, H, I]; unit stride along I
    weights_ptr,  # [P] float32 routing weights
    pair_out_ptr,  # [P, H] float32 out
    sorted_ptr, block_expert_ptr, num_slots_ptr,  # AlignedRouting
    num_pairs,
    stride_inter, stride_we, stride_wn, stride_out,
    H: tl.constexpr, I: tl.constexpr,
    grid_m,  # programs along M (loop stride); runtime so batch sizes share one compile
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    pid_m = tl.program_id(0)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of H
    n_ok = offs_n < H
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    num_blocks = tl.load(num_slots_ptr) // BLOCK_M
    for block in range(pid_m, num_blocks, grid_m):
        expert = tl.load(block_expert_ptr + block).to(tl.int64)
        pair = tl.load(sorted_ptr + block * BLOCK_M + tl.arange(0, BLOCK_M))  # [BM]
        row_ok = pair < num_pairs
        pair64 = pair.to(tl.int64)
        a_ptrs = inter_ptr + pair64[:, None] * stride_inter + offs_k[None, :]  # [BM, BK]
        w_ptrs = w2_ptr + expert * stride_we + offs_n[None, :] * stride_wn + offs_k[:, None]  # [BK, BN]
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, I, BLOCK_K):
            if I % BLOCK_K == 0:  # compile-time, as in gate_up_silu_kernel
                a = tl.load(a_ptrs, mask=row_ok[:, None], other=0.0)
                w = tl.load(w_ptrs, mask=n_ok[None, :], other=0.0)
            else:
                k_ok = offs_k < I - k0  # [BK]
                a = tl.load(a_ptrs, mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                w = tl.load(w_ptrs, mask=k_ok[:, None] & n_ok[None, :], other=0.0)
            acc = tl.dot(a, w, acc, input_precision=DOT_PRECISION)
            a_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
        route_w = tl.load(weights_ptr + pair, mask=row_ok, other=0.0)  # [BM] fp32
        acc = acc * route_w[:, None]  # [BM, BN]
        out_ptrs = pair_out_ptr + pair64[:, None] * stride_out + offs_n[None, :]  # [BM, BN]
        tl.store(out_ptrs, acc, mask=row_ok[:, None] & n_ok[None, :])


@triton.jit
def sum_topk_kernel(
    pair_out_ptr,  # [T*k, H] float32 (rows of dropped pairs are garbage, never read)
    weights_ptr,  # [T*k] float32
    out_ptr,  # [T, H] model dtype
    H: tl.constexpr, TOP_K: tl.constexpr, BLOCK_H: tl.constexpr,
):
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
