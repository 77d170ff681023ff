"""Tile primitives of the Triton routing kernels: ranking keys, affinity bins, k-th largest.

Every policy orders a token's experts by the token's own ranking (logit descending, equal
logits toward the lower index, as :func:`lynx.routing.scores.rank_experts`). The kernels
encode that order in one non-negative int64 per (token, expert), so that a single integer
max/sort does the work of the stable two-key comparison::

    rank key = orderable_u32(z) << 8 | (255 - e)          (< 2**40; larger = better rank)

``orderable_u32`` maps float32 bits to an unsigned integer with the same order as the
floats (-0.0 is first turned into +0.0: torch's sort treats them as equal, so their order
must come from the index). Policy keys put more significant fields above bit 40 (LYNX's
preference value, OEA's / the remap's "in the active set" flag). Columns past ``N`` get -1,
below every real key, and are never selected. ``N <= 256`` keeps the index in 8 bits.

All helpers work on ``[R, BN]`` register tiles, one row per token, for any ``R``.
"""

from __future__ import annotations

import triton
import triton.language as tl

RANK_BITS = 40  # bits of a rank key; policy fields start here
MAX_EXPERTS = 256  # the expert index field is 8 bits


@triton.jit
def load_logits(ptr, rows, cols, T, N, stride_t, stride_n):
    """``[R, BN]`` float32 logits of ``rows``; entries outside ``[T, N]`` are -inf.

    -0.0 becomes +0.0 so that its rank key equals +0.0's (equal logits rank by index).
    """
    inside = (rows[:, None] < T) & (cols[None, :] < N)
    offs = rows[:, None].to(tl.int64) * stride_t + cols[None, :].to(tl.int64) * stride_n
    z = tl.load(ptr + offs, mask=inside, other=float("-inf")).to(tl.float32)
    return tl.where(z == 0.0, 0.0, z)


@triton.jit
def load_row_valid(valid_ptr, rows, T, HAS_VALID: tl.constexpr):
    """``[R]`` bool: row exists (``< T``) and is not padding."""
    inside = rows < T
    if HAS_VALID:
        return inside & (tl.load(valid_ptr + rows, mask=inside, other=0) != 0)
    return inside


@triton.jit
def rank_keys(z, cols, N):
    """``[R, BN]`` int64 rank keys of logits ``z`` (see the module docstring); -1 past N."""
    b = z.to(tl.int32, bitcast=True).to(tl.int64)  # sign-extended float bits
    # Negative floats order in reverse of their magnitude bits: flip them all; positive
    # ones move above every negative one.
    u = tl.where(b < 0, ~b, b + 2147483648)  # [0, 2**32), same order as the floats
    key = (u << 8) | (255 - cols[None, :]).to(tl.int64)
    return tl.where(cols[None, :] < N, key, -1)


@triton.jit
def rank_key_expert(keys):
    """Expert index of rank keys (any shape)."""
    return 255 - (keys & 255)


@triton.jit
def rank_key_logit(keys):
    """Float32 logit of rank keys (any shape): inverse of the bit mapping in rank_keys."""
    u = keys >> 8
    b = tl.where(u >= 2147483648, u - 2147483648, ~u)  # back to signed float bits
    return b.to(tl.int32).to(tl.float32, bitcast=True)


@triton.jit
def affinity_bins(z, alpha, BETA: tl.constexpr):
    """``q = max(ceil(alpha * (z - max z)), -beta)`` per entry, int64 ``[R, BN]``.

    float64 as in :func:`lynx.routing.lynx.affinity_bins`: the float32 difference is exact
    there and ``alpha * r`` (``alpha`` a float64 scalar) is rounded once, so bin edges are
    the same. ``alpha * r <= 0``, so truncation toward zero after clamping is the ceiling.
    """
    zmax = tl.max(z, axis=1)  # [R]
    zmax = tl.where(zmax > float("-inf"), zmax, 0.0)  # rows past T: no NaN (-inf - -inf)
    r = z.to(tl.float64) - zmax.to(tl.float64)[:, None]  # [R, BN] <= 0
    x = tl.maximum(alpha * r, -BETA)  # -inf logits land in the lowest bin
    return x.to(tl.int64)


@triton.jit
def int_pow(base, e, MAX_E: tl.constexpr):
    """``base ** e`` for an int64 scalar ``base`` and int64 exponents ``e`` in ``[0, MAX_E]``."""
    p = tl.zeros_like(e) + 1
    for j in tl.static_range(MAX_E):  # repeated products: exact in int64 (caller bounds them)
        p = tl.where(e > j, p * base, p)
    return p


@triton.jit
def largest(x, KP: tl.constexpr):
    """``[R, KP]``: the ``KP`` (a power of two) largest entries of each row, largest first."""
    if KP == 1:  # tl.topk cannot reduce a [1, BN] tile to a single element
        return tl.max(x, axis=1, keep_dims=True)
    return tl.topk(x, KP, dim=1)  # bitonic top-k


@triton.jit
def kth_largest(x, K: tl.constexpr, KP: tl.constexpr):
    """``[R]``: the ``K``-th largest entry of each row of ``x`` (duplicates counted).

    ``KP`` = next power of two >= K.
    """
    top = largest(x, KP)  # [R, KP]
    slot = tl.arange(0, KP)[None, :]
    return tl.max(tl.where(slot == K - 1, top, -9223372036854775807 - 1), axis=1)


@triton.jit
def nth_largest(x, n, KP: tl.constexpr):
    """``[R]``: the ``n[r]``-th largest entry of row ``r`` of ``x``, ``1 <= n[r] <= KP``."""
    top = largest(x, KP)  # [R, KP]
    slot = tl.arange(0, KP)[None, :]
    return tl.max(tl.where(slot == n[:, None] - 1, top, -9223372036854775807 - 1), axis=1)


@triton.jit
def union_of_rows(chosen, row_ok):
    """``[BN]`` int32 0/1: experts chosen (``[R, BN]`` bool) by at least one valid row."""
    hit = chosen & row_ok[:, None]
    return tl.max(hit.to(tl.int32), axis=0)


def next_pow2(n: int) -> int:
    """Smallest power of two >= ``n`` (>= 1)."""
    return triton.next_power_of_2(max(1, n))
