"""Triton helpers for the batch's active set: LYNX's votes and picks, OEA's base set.

Same arithmetic as :mod:`lynx.routing.lynx` and :mod:`lynx.routing.oea`, on register tiles
of ``[R, BN]`` (one row per token). LYNX, with ``B`` the number of valid rows::

    h' = B ** (q + beta)            (0 for padding rows)
    s' = column sums of h'          (over *all* valid rows of the batch)
    m' = q * B ** (beta + 1) + (s' - h')

exact in int64 while ``(beta + 1) * T ** (beta + 1) < 2**63`` (the host checks it), and in
int32 (cheaper reductions, see :mod:`lynx.kernels.routing_select`) while it is below
``2**31``, which the host passes as ``WIDE=False``: T <= 894 for beta=2, T <= 53 for
beta=4. A token picks its top-k of ``m'``, ties to its own ranking (the ranking key as the
second sort key).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.routing_select import select_top
from lynx.kernels.routing_tiles import (
    INT32_MIN,
    affinity_bins,
    int_pow,
    load_logits,
    load_row_valid,
)


@triton.jit
def batch_size(valid_ptr, T, HAS_VALID: tl.constexpr, CHUNK: tl.constexpr):
    """``B``: number of valid rows of the batch, an int32 scalar (``T`` without a mask)."""
    if HAS_VALID:
        count = tl.zeros([CHUNK], tl.int32)
        for r0 in range(0, T, CHUNK):
            count += load_row_valid(valid_ptr, r0 + tl.arange(0, CHUNK), T, True).to(tl.int32)
        return tl.sum(count, axis=0)
    return tl.zeros([], tl.int32) + T


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
    """``h' = B ** (q + beta)`` for valid rows, 0 for the others, in ``batch``'s dtype."""
    h = int_pow(batch, q + BETA, BETA)
    return tl.where(row_ok[:, None], h, 0)


@triton.jit
def lynx_batch_votes(
    logits_ptr, valid_ptr, T, N, stride_t, stride_n, alpha, batch, cols,
    HAS_VALID: tl.constexpr, BETA: tl.constexpr, CHUNK: tl.constexpr,
):
    """``s'``: ``[BN]`` column sums of the votes of every valid row of the batch.

    Recomputed from the logits by each program of the split path (a few operations per
    entry, all rows in one or two chunks) instead of exchanged through memory, which would
    cost one more launch.
    """
    total = tl.zeros([cols.shape[0]], batch.dtype)
    for r0 in range(0, T, CHUNK):
        rows = r0 + tl.arange(0, CHUNK)
        z, _ = load_logits(logits_ptr, rows, cols, T, N, stride_t, stride_n)  # [CHUNK, BN]
        ok = load_row_valid(valid_ptr, rows, T, HAS_VALID)  # [CHUNK]
        total += tl.sum(lynx_votes(affinity_bins(z, alpha, BETA), ok, batch, BETA), axis=0)
    return total


@triton.jit
def lynx_picks(
    q, key, votes, total, batch, cols, N,
    K: tl.constexpr, KP: tl.constexpr, BETA: tl.constexpr, KEY16: tl.constexpr, WIDE: tl.constexpr,
    PACK64: tl.constexpr,
):
    """``[R, BN]`` bool: each row's top-``K`` of ``m'``, ties broken by its ranking ``key``.

    ``q``/``votes``: the rows' bins and votes; ``total``: ``[BN]`` batch column sums ``s'``;
    ``batch``: ``B`` (int64 if ``WIDE`` else int32, the dtype of votes and ``m'``).
    ``PACK64`` (16-bit keys only): one int64 key ``(m' + beta * B**(beta+1)) << 24 | key``
    and one 64-bit reduction per step instead of two 32-bit ones (shorter dependency chain,
    more instructions); which is faster is measured, not assumed.
    """
    scale = int_pow(batch, tl.zeros([], tl.int32) + BETA + 1, BETA + 1)  # B ** (beta + 1)
    m = q.to(batch.dtype) * scale + (total[None, :] - votes)  # m' [R, BN]
    if PACK64:
        packed = ((m + BETA * scale).to(tl.int64) << 24) | key.to(tl.int64)  # >= 0 on valid rows
        packed = tl.where(cols[None, :] < N, packed, -1)
        i64_min = -9223372036854775807 - 1
        retired, _, _ = select_top(packed, packed, cols, i64_min, i64_min, K, KP, False, True)
        return retired == i64_min
    if WIDE:
        m_min = -9223372036854775807 - 1
    else:
        m_min = INT32_MIN
    m = tl.where(cols[None, :] < N, m, m_min + 1)  # past N: below real m', above retired
    retired, _, _ = select_top(m, key, cols, m_min, INT32_MIN, K, KP, True, KEY16)
    return retired == m_min


@triton.jit
def oea_base(key, cols, K0: tl.constexpr, K0P: tl.constexpr, KEY16: tl.constexpr):
    """``[R, BN]`` bool: each row's top-``K0`` of its own ranking (OEA phase 1)."""
    retired, _, _ = select_top(key, key, cols, INT32_MIN, INT32_MIN, K0, K0P, False, KEY16)
    return retired == INT32_MIN
