"""Triton kernel of the fused router: ``logits = x @ W^T`` and the routing of all rows, one launch.

Grid ``(n_tiles, num_splits)``, the skinny GEMM's (:mod:`lynx.kernels.skinny_gemm_triton`):
program ``(n, s)`` multiplies all ``T`` rows of x by columns ``n*BLOCK_N ..`` of W^T over
the ``s``-th K range, accumulating in fp32. Then two arrivals, both on atomic counters
with acquire-release ordering (``gpu`` scope) in a workspace that every call leaves zero:

1. per N tile (``num_splits > 1``): each program stores its fp32 partial and bumps
   ``counter[n]``; the last to arrive sums the partials in the fixed order ``s = 0, 1, ..``
   (deterministic), writes the tile of logits in their dtype (the rounding of a GEMM
   output) and resets ``counter[n]``. With one split the program writes its tile directly.
2. global: every program that finalised a tile bumps ``counter[n_tiles]`` after its
   logits stores; the last one (all ``[T, N]`` logits are written and, by its acquire,
   visible to it) resets that counter and runs
   :func:`lynx.kernels.routing_kernels.route_rows`, the body of ``route_kernel``, as its
   single-program plans do (``pid = 0``, ``BT >= T``): top-k, LYNX or OEA of all rows on
   the logits re-read from memory, weights, ids, padding rows and the tally.

So the routing is exactly ``select_experts`` (Triton backend) on the returned logits. The
extra cost over the GEMM is one atomic per N tile and one program's routing at the end.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.routing_kernels import route_rows
from lynx.kernels.skinny_gemm_triton import _store_out, partial_product, sum_partials


@triton.jit(do_not_specialize=["T", "num_splits", "alpha_bits"])  # one compile across batch sizes
def router_route_kernel(
    x_ptr,  # [T, H], unit stride along H
    w_ptr,  # [N, H] gate weight (nn.Linear layout), unit stride along H
    logits_ptr,  # [T, N] out, contiguous, in x's dtype
    part_ptr,  # [num_splits, T, N] fp32 partials (SPLIT)
    counter_ptr,  # [>= n_tiles + 1] int32, zero between calls: N tiles, then the global arrival
    valid_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr,  # as routing_kernels.route_kernel
    T, H,
    num_splits,  # programs along H (grid dim 1)
    k_per_split,  # multiple of BLOCK_K
    stride_xm, stride_wn, alpha_bits,
    N: tl.constexpr,  # experts
    EVEN_K: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    SPLIT: tl.constexpr, REDUCE_UNROLL: tl.constexpr, DOT_PRECISION: tl.constexpr,
    HAS_VALID: tl.constexpr, ACTIVE: tl.constexpr, TALLY: tl.constexpr,
    KEY16: tl.constexpr, WIDE: tl.constexpr, PACK64: tl.constexpr,
    SOFTMAX: tl.constexpr, RENORM: tl.constexpr, RESORT: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, K0: tl.constexpr, K0P: tl.constexpr,
    BT: tl.constexpr, BN: tl.constexpr, CHUNK: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    offs_m = tl.arange(0, BLOCK_M)  # [BM] rows of x / logits
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN] columns of logits = rows of W
    m_ok = offs_m < T
    n_ok = offs_n < N
    mask = m_ok[:, None] & n_ok[None, :]  # [BM, BN]
    k_start = pid_k * k_per_split
    k_end = tl.minimum(k_start + k_per_split, H)
    offs_k = tl.arange(0, BLOCK_K)  # [BK]
    cols_ld = (offs_n % N).to(tl.int64)  # columns past N wrap onto valid rows of W (never stored)
    acc = partial_product(x_ptr, w_ptr, offs_m, offs_k, cols_ld, m_ok, k_start, k_end, stride_xm, stride_wn,
                          EVEN_K, BLOCK_M, BLOCK_N, BLOCK_K, DOT_PRECISION)

    if SPLIT:
        tile = offs_m[:, None] * N + offs_n[None, :]  # [BM, BN] offsets inside one [T, N] partial
        tl.store(part_ptr + pid_k * T * N + tile, acc, mask=mask)
        tl.debug_barrier()  # every thread's partial stores precede the release below
        done = tl.atomic_add(counter_ptr + pid_n, 1, sem="acq_rel", scope="gpu")
        finalise = done == num_splits - 1  # last program of this N tile: all partials are written
        if finalise:
            total = sum_partials(acc, part_ptr, tile, mask, pid_k, T, N, num_splits,  # fixed order
                                 BLOCK_M, BLOCK_N, REDUCE_UNROLL)
            _store_out(total, logits_ptr, logits_ptr, offs_m, offs_n, mask, n_ok, N, False)
            tl.store(counter_ptr + pid_n, 0)  # ready for the next call (graph replay)
    else:
        _store_out(acc, logits_ptr, logits_ptr, offs_m, offs_n, mask, n_ok, N, False)
        finalise = True

    if finalise:
        tl.debug_barrier()  # every thread's logits stores precede the release below
        n_tiles = tl.num_programs(0)
        arrived = tl.atomic_add(counter_ptr + n_tiles, 1, sem="acq_rel", scope="gpu")
        if arrived == n_tiles - 1:  # all tiles written; the acquire makes them visible here
            tl.store(counter_ptr + n_tiles, 0)
            route_rows(
                logits_ptr, valid_ptr, weights_ptr, weights_ptr, ids_ptr, hits_ptr, kept_ptr, 0,
                T, N, 1, 0, alpha_bits, N,
                HAS_VALID, ACTIVE, TALLY, KEY16, WIDE, PACK64, SOFTMAX, RENORM, RESORT,
                K, KP, BETA, K0, K0P, BT, BN, CHUNK,
            )
