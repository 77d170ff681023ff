"""Triton kernel of the skinny (decode) GEMM ``out[T, N] = x[T, K] @ W[N, K]^T (+ bias)``.

Grid ``(n_tiles, num_splits)``: program ``(n, s)`` multiplies all ``T`` rows of x (one
``BLOCK_M`` tile) by columns ``n*BLOCK_N ..`` of W^T over the K range
``[s*k_per_split, min(K, (s+1)*k_per_split))``, so each weight byte is loaded by exactly
one program. With ``num_splits > 1`` the partials are combined by the last program of each N
tile to arrive (atomic counter, acquire/release ordered), in a fixed order -- see
:mod:`lynx.kernels.skinny_gemm`. Shapes, strides and the split count are runtime arguments
(T is not even specialised): batch sizes sharing a ``BLOCK_M`` share one compile, and so
do all split counts above one. The main loop (:func:`partial_product`) and the split-K
reduction (:func:`sum_partials`) also serve the fused router
(:mod:`lynx.kernels.router_route_kernel`).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.pdl_triton import pdl_enter, prefetch_l2


@triton.jit
def _store_out(acc, b_ptr, out_ptr, offs_m, offs_n, mask, n_ok, stride_om, HAS_BIAS: tl.constexpr):
    """``out[offs_m, offs_n] = acc (+ bias)`` in the output dtype (bias added in fp32)."""
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    o_ptrs = out_ptr + offs_m[:, None] * stride_om + offs_n[None, :]  # [BM, BN]
    tl.store(o_ptrs, acc.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def partial_product(
    x_ptr, w_ptr, offs_m, offs_k, cols_ld, m_ok, k_start, k_end, stride_xm, stride_wn,
    EVEN_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """``[BLOCK_M, BLOCK_N]`` fp32 ``x[offs_m, k_start:k_end] @ W[cols_ld, k_start:k_end]^T``.

    The skinny GEMM's main loop. ``offs_k = tl.arange(0, BLOCK_K)``; ``cols_ld`` the int64
    rows of W, ``offs_n % N``: columns past N wrap onto valid rows of W (no N mask in the hot
    loop; never stored). Rows past T are masked instead (``m_ok``): for T=1 wrapping would
    fetch the same x row 16 times. ``k_end - k_start`` is a multiple of BLOCK_K unless it is
    the last range; ``EVEN_K`` (compile-time): every step is a full BLOCK_K. The callers
    compute ``offs_k`` and ``cols_ld`` where they did before this helper existed, which
    keeps their generated code unchanged (the instruction order follows the source).
    """
    x_ptrs = x_ptr + offs_m[:, None] * stride_xm + (k_start + offs_k)[None, :]  # [BM, BK]
    w_ptrs = w_ptr + cols_ld[None, :] * stride_wn + (k_start + offs_k)[:, None]  # [BK, BN] = W^T tile
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):  # pipelined over num_stages (launch option)
        if EVEN_K:
            a = tl.load(x_ptrs, mask=m_ok[:, None], other=0.0)
            w = tl.load(w_ptrs)
        else:
            k_ok = offs_k < k_end - k0  # [BK]
            a = tl.load(x_ptrs, mask=m_ok[:, None] & k_ok[None, :], other=0.0)
            w = tl.load(w_ptrs, mask=k_ok[:, None], other=0.0)
        acc = tl.dot(a, w, acc, input_precision=DOT_PRECISION)  # [BM, BN] fp32
        x_ptrs += BLOCK_K
        w_ptrs += BLOCK_K
    return acc


@triton.jit
def sum_partials(
    acc, part_ptr, tile, mask, pid_k, T, N, num_splits,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, REDUCE_UNROLL: tl.constexpr,
):
    """Sum of the ``[num_splits, T, N]`` fp32 partials at ``tile`` (``[BLOCK_M, BLOCK_N]``
    offsets inside one ``[T, N]`` partial), split ``pid_k``'s own partial ``acc`` taken from
    registers (bit-equal to the stored one).

    Run by the last program of an N tile to arrive, once all partials are written.
    REDUCE_UNROLL tiles in flight at once (fully unrolled, big tiles spill); fixed order
    s = 0, 1, ..: the result does not depend on which program came last.
    """
    total = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for s0 in range(0, num_splits, REDUCE_UNROLL):
        for j in tl.static_range(REDUCE_UNROLL):
            s = s0 + j
            # .cg: straight from L2, where the other programs' partials are (never a stale L1 line)
            part = tl.load(part_ptr + s * T * N + tile, mask=mask & (s != pid_k) & (s < num_splits),
                           other=0.0, cache_modifier=".cg")
            total += tl.where(s == pid_k, acc, part)
    return total


@triton.jit(do_not_specialize=["T", "num_splits"])  # one compile across batch sizes and splits
def skinny_gemm_kernel(
    x_ptr,  # [T, K], unit stride along K
    w_ptr,  # [N, K], unit stride along K (nn.Linear.weight layout)
    b_ptr,  # [N] bias (read when HAS_BIAS)
    out_ptr,  # [T, N] output in its dtype
    part_ptr,  # [num_splits, T, N] fp32 partials (SPLIT)
    counter_ptr,  # [>= n_tiles] int32, zero between calls (SPLIT)
    T, N, K,
    num_splits,  # programs along K (grid dim 1)
    k_per_split,  # multiple of BLOCK_K
    stride_xm, stride_wn, stride_om,
    HAS_BIAS: tl.constexpr, EVEN_K: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT: tl.constexpr,  # num_splits > 1: partials + counter; else a direct store
    REDUCE_UNROLL: tl.constexpr,  # partial tiles loaded at once by the reducing program (registers)
    DOT_PRECISION: tl.constexpr,
    PDL: tl.constexpr = False,  # programmatic dependent launch (lynx.kernels.pdl)
    PREFETCH_BYTES: tl.constexpr = 0,  # with PDL: W's element size if its rows can be bulk-prefetched, else 0
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)  # [BM] rows of x / out
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of out = rows of W
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    m_ok = offs_m < T
    cols_ld = (offs_n % N).to(tl.int64)  # W can exceed 2^31 elements (LM heads)
    k_start = pid_k * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    if PREFETCH_BYTES == 2 or PREFETCH_BYTES == 4:  # W never depends on earlier kernels: warm L2 with it first
        nbytes = tl.zeros([BLOCK_N], tl.int32) + (k_end - k_start) * PREFETCH_BYTES
        prefetch_l2(w_ptr + cols_ld * stride_wn + k_start, nbytes)
    pdl_enter(PDL)  # x, partials and counters belong to earlier kernels' time
    acc = partial_product(x_ptr, w_ptr, offs_m, offs_k, cols_ld, m_ok, k_start, k_end, stride_xm, stride_wn,
                          EVEN_K, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION)

    n_ok = offs_n < N
    mask = m_ok[:, None] & n_ok[None, :]  # [BM, BN]
    if not SPLIT:
        _store_out(acc, b_ptr, out_ptr, offs_m, offs_n, mask, n_ok, stride_om, HAS_BIAS)
    else:
        tile = offs_m[:, None] * N + offs_n[None, :]  # [BM, BN] offsets inside one [T, N] partial
        tl.store(part_ptr + pid_k * T * N + tile, acc, mask=mask)
        # every thread's partial stores precede the release below (CTA barrier first)
        tl.debug_barrier()
        done = tl.atomic_add(counter_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        if done == num_splits - 1:  # last program of this N tile: all partials are written
            total = sum_partials(acc, part_ptr, tile, mask, pid_k, T, N, num_splits,
                                 BLOCK_M, BLOCK_N, REDUCE_UNROLL)
            _store_out(total, b_ptr, out_ptr, offs_m, offs_n, mask, n_ok, stride_om, HAS_BIAS)
            tl.store(counter_ptr + pid_n, 0)  # ready for the next call (graph replay)
