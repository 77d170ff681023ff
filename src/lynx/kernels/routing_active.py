"""Triton helpers for the batch's active set: LYNX's votes and picks, OEA's base set.

Same arithmetic as :mod:`lynx.routing.lynx` and :mod:`lynx.routing.oea`, on register tiles
of ``[R, BN]`` (one row per token). LYNX, with ``B`` the number of valid rows::

    h' = B ** (q + beta)            (0 for padding rows)
    s' = column sums of h'          (over *all* valid rows of the batch)
    m' = q * B ** (beta + 1) + (s' - h')

exact in int64 while ``(beta + 1) * T ** (beta + 1) < 2**63`` (the host checks it). A token
picks its top-k of ``m'``, ties to its own ranking. When ``m' + beta * B ** (beta + 1)``
(``< (beta + 1) * B ** (beta + 1)``) fits in 23 bits it is packed above a 40-bit rank key
and one bitonic top-k does the selection (``PACKED``); otherwise the k-th largest ``m'``
is found first and the ties on it are resolved by rank with a second top-k.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.routing_tiles import (
    affinity_bins,
    int_pow,
    kth_largest,
    load_logits,
    load_row_valid,
    nth_largest,
)

PACKED_M_BITS = 23  # 63 - RANK_BITS: room for m' above the rank key in a non-negative int64


@triton.jit
def batch_size(valid_ptr, T, HAS_VALID: tl.constexpr, CHUNK: tl.constexpr):
    """``B``: number of valid rows of the batch, an int64 scalar (``T`` without a mask)."""
    if HAS_VALID:
        count = tl.zeros([CHUNK], tl.int64)
        for r0 in range(0, T, CHUNK):
            rows = r0 + tl.arange(0, CHUNK)
            count += load_row_valid(valid_ptr, rows, T, True).to(tl.int64)
        return tl.sum(count, axis=0)
    return tl.zeros([], tl.int64) + T


@triton.jit
def first_valid_row(valid_ptr, T, HAS_VALID: tl.constexpr, CHUNK: tl.constexpr):
    """Index of the first valid row, 0 if there is none (torch's ``argmax`` of the mask)."""
    if HAS_VALID:
        first = tl.full([CHUNK], 2147483647, tl.int32)
        for r0 in range(0, T, CHUNK):
            rows = r0 + tl.arange(0, CHUNK)
            ok = load_row_valid(valid_ptr, rows, T, True)
            first = tl.minimum(first, tl.where(ok, rows, 2147483647))
        f = tl.min(first, axis=0)
        return tl.where(f == 2147483647, 0, f)
    return tl.zeros([], tl.int32)


@triton.jit
def lynx_votes(q, row_ok, batch, BETA: tl.constexpr):
    """``h' = B ** (q + beta)`` for valid rows, 0 for the others: int64 ``[R, BN]``."""
    h = int_pow(batch, q + BETA, BETA)
    return tl.where(row_ok[:, None], h, 0)


@triton.jit
def lynx_batch_votes(
    logits_ptr, valid_ptr, T, N, stride_t, stride_n, alpha, batch, cols,
    HAS_VALID: tl.constexpr, BETA: tl.constexpr, CHUNK: tl.constexpr,
):
    """``s'``: ``[BN]`` int64 column sums of the votes of every valid row of the batch.

    Recomputed from the logits by each program of the split path (a few flops per entry)
    instead of being exchanged through memory, which would need one more launch.
    """
    total = tl.zeros([cols.shape[0]], tl.int64)
    for r0 in range(0, T, CHUNK):
        rows = r0 + tl.arange(0, CHUNK)
        z = load_logits(logits_ptr, rows, cols, T, N, stride_t, stride_n)  # [CHUNK, BN]
        ok = load_row_valid(valid_ptr, rows, T, HAS_VALID)  # [CHUNK]
        total += tl.sum(lynx_votes(affinity_bins(z, alpha, BETA), ok, batch, BETA), axis=0)
    return total


@triton.jit
def lynx_picks(
    q, rank_key, votes, total, batch,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, PACKED: tl.constexpr,
):
    """``[R, BN]`` bool: each row's top-``K`` of ``m'``, ties broken by its ranking.

    ``q``/``votes``: the rows' bins and votes; ``total``: ``[BN]`` batch column sums ``s'``;
    ``rank_key``: the rows' rank keys (-1 past N, which must never be picked).
    """
    scale = int_pow(batch, tl.zeros([], tl.int64) + BETA + 1, BETA + 1)  # B ** (beta + 1)
    m = q * scale + (total[None, :] - votes)  # m' [R, BN]
    real = rank_key >= 0
    if PACKED:
        key = ((m + BETA * scale) << 40) | rank_key  # (m', rank) in one int64 >= 0
        key = tl.where(real, key, -1)
        return key >= kth_largest(key, K, KP)[:, None]
    m = tl.where(real, m, -9223372036854775807 - 1)
    cut = kth_largest(m, K, KP)  # [R] the k-th largest m' (with multiplicity)
    above = m > cut[:, None]
    tie = m == cut[:, None]  # at least K - |above| entries
    need = K - tl.sum(above.to(tl.int32), axis=1)  # [R] in [1, K]
    tie_cut = nth_largest(tl.where(tie, rank_key, -1), need, KP)  # best-ranked ties
    return above | (tie & (rank_key >= tie_cut[:, None]))


@triton.jit
def oea_base(rank_key, K0: tl.constexpr, K0P: tl.constexpr):
    """``[R, BN]`` bool: each row's top-``K0`` of its own ranking (OEA phase 1)."""
    return rank_key >= kth_largest(rank_key, K0, K0P)[:, None]


def packed_m_fits(num_rows: int, beta: int) -> bool:
    """Whether ``m' + beta * B ** (beta + 1)`` fits in 23 bits for any ``B <= num_rows``."""
    return (beta + 1) * num_rows ** (beta + 1) <= 2**PACKED_M_BITS
