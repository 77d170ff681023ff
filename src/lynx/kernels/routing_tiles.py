"""Tile primitives of the Triton routing kernels: logits, int32 ranking keys, bins, powers.

Every policy orders a token's experts by the token's own ranking (logit descending, equal
logits toward the lower index, as :func:`lynx.routing.scores.rank_experts`). The kernels
encode it in int32 keys (32-bit max-reductions cost about half of 64-bit ones):

* 16-bit logits (bf16/fp16, what a router GEMM produces): ``key = u16(z) << 8 | (255 - e)``,
  ``u16`` the float's bits mapped to an unsigned integer of the same order. Keys are
  distinct within a row (``< 2**24``), so one max finds the best-ranked expert, and an
  "active" flag fits above them at bit 24 (``KEY16``).
* float32 logits: ``key`` = the signed int32 of the same order as the floats; equal
  logits share a key and the expert index breaks the tie in a second reduction.

-0.0 is mapped to +0.0 first (torch's sort treats them as equal, so their order must come
from the index). Columns past ``N`` get keys below every real key (-1, or INT32_MIN + 1
for float32) but above :data:`INT32_MIN`, the mark of a retired key in
:func:`lynx.kernels.routing_select.select_top`. All helpers work on ``[R, BN]`` register
tiles, one row per token, for any ``R``.
"""

from __future__ import annotations

import triton
import triton.language as tl

MAX_EXPERTS = 256  # the expert index field of a 16-bit key is 8 bits
INT32_MIN = tl.constexpr(-2147483648)  # sentinel of retired keys (no real key has it)


@triton.jit
def load_logits(ptr, rows, cols, T, N: tl.constexpr, stride_t, stride_n):
    """``(z, raw)``: ``[R, BN]`` float32 logits and the loaded values in the input dtype.

    Entries outside ``[T, N]`` are -inf. -0.0 stays (only ranking keys must map it to +0.0).
    """
    if cols.shape[0] == N:  # N constexpr: no column mask, so rows load as wide vectors
        inside = rows[:, None] < T  # [R, 1], broadcast by the load
    else:
        inside = (rows[:, None] < T) & (cols[None, :] < N)
    offs = rows[:, None].to(tl.int64) * stride_t + cols[None, :].to(tl.int64) * stride_n
    raw = tl.load(ptr + offs, mask=inside, other=float("-inf"))
    return raw.to(tl.float32), raw


@triton.jit
def load_row_valid(valid_ptr, rows, T, HAS_VALID: tl.constexpr):
    """``[R]`` bool: row exists (``< T``) and is not padding."""
    inside = rows < T
    if HAS_VALID:
        return inside & (tl.load(valid_ptr + rows, mask=inside, other=0) != 0)
    return inside


@triton.jit
def rank_keys(z, raw, cols, N, KEY16: tl.constexpr):
    """``[R, BN]`` int32 ranking keys (module docstring); past ``N``: -1 (KEY16) or MIN+1."""
    real = cols[None, :] < N
    if KEY16:
        b = raw.to(tl.int16, bitcast=True).to(tl.int32)  # sign-extended 16-bit float bits
        b = tl.where(z == 0.0, 0, b)  # -0.0 -> +0.0
        s = tl.where(b < 0, b ^ 32767, b)  # signed, ordered like the floats
        key = ((s + 32768) << 8) | (255 - cols[None, :])  # [0, 2**24), distinct per row
        return tl.where(real, key, -1)
    b = tl.where(z == 0.0, 0.0, z).to(tl.int32, bitcast=True)  # -0.0 -> +0.0
    s = tl.where(b < 0, b ^ 2147483647, b)  # signed, ordered like the floats (> MIN + 1)
    return tl.where(real, s, INT32_MIN + 1)


@triton.jit
def key_logit(keys, dtype: tl.constexpr, KEY16: tl.constexpr):
    """Float32 logit of ranking keys (any shape; a KEY16 "active" bit must be cleared)."""
    if KEY16:
        s = (keys >> 8) - 32768
        b = tl.where(s < 0, s ^ 32767, s)
        return b.to(tl.int16).to(dtype, bitcast=True).to(tl.float32)
    b = tl.where(keys < 0, keys ^ 2147483647, keys)
    return b.to(tl.float32, bitcast=True)


@triton.jit
def _affinity_bins_f64(z, zmax, alpha, BETA: tl.constexpr):
    """Exact bins as :func:`lynx.routing.lynx.affinity_bins` computes them (float64).

    The float32 difference is exact in float64 and ``alpha * r`` (``alpha`` a float64
    scalar) is rounded once; ``alpha * r <= 0``, so truncation after clamping is the ceiling.
    """
    r = z.to(tl.float64) - zmax.to(tl.float64)[:, None]  # [R, BN] <= 0
    x = tl.maximum(alpha * r, -BETA)  # -inf logits land in the lowest bin
    return x.to(tl.int32)


@triton.jit
def affinity_bins(z, alpha, BETA: tl.constexpr):
    """``q = max(ceil(alpha * (z - max z)), -beta)`` per entry, int32 ``[R, BN]``, exactly.

    float32 first: ``x = fl32(alpha) * fl32(z - max)`` is within 3.2 float32 ulps of the
    float64 value the PyTorch path rounds, so ``q >= -j  <=>  x > -(j + 1)`` is decided the
    same way whenever ``x`` is more than 8 ulps from every bin edge ``-1 .. -beta``. Only if
    some entry of the tile is that close (an exact edge like ``alpha * r == -1``) is the
    tile recomputed in float64 (quarter-rate conversions and half-rate arithmetic).
    """
    zmax = tl.max(z, axis=1)  # [R]
    zmax = tl.where(zmax > float("-inf"), zmax, 0.0)  # rows past T: no NaN (-inf - -inf)
    x = alpha.to(tl.float32) * (z - zmax[:, None])  # [R, BN] <= 0, -inf for -inf logits
    q = tl.zeros(z.shape, tl.int32) - BETA
    near = tl.zeros(z.shape, tl.int1)
    for j in tl.static_range(BETA):
        edge = -1.0 - j
        q += (x > edge).to(tl.int32)
        near = near | (tl.abs(x - edge) <= 4.8e-7 * (j + 1))  # 8 * 2**-24 * |edge|
    if tl.max(near.to(tl.int32)) > 0:  # rare; uniform over the program
        q = _affinity_bins_f64(z, zmax, alpha, BETA)
    return q


@triton.jit
def int_pow(base, e, MAX_E: tl.constexpr):
    """``base ** e`` (in ``base``'s dtype) for integer exponents ``e`` in ``[0, MAX_E]``.

    The powers are scalars; each entry only selects one (no per-entry multiply).
    """
    p = tl.zeros([], base.dtype) + 1  # base ** j
    out = tl.zeros_like(e).to(base.dtype) + 1
    for j in tl.static_range(MAX_E):  # exact: the host bounds base ** MAX_E
        p = p * base
        out = tl.where(e > j, p, out)
    return out


@triton.jit
def union_of_rows(chosen, row_ok):
    """``[BN]`` int32 0/1: experts chosen (``[R, BN]`` bool) by at least one valid row."""
    hit = chosen & row_ok[:, None]
    return tl.max(hit.to(tl.int32), axis=0)


def next_pow2(n: int) -> int:
    """Smallest power of two >= ``n`` (>= 1)."""
    return triton.next_power_of_2(max(1, n))
