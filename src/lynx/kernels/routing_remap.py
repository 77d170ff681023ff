"""Triton helpers for the last routing phase: final expert choice per token, and weights.

Every policy ends the same way (:mod:`lynx.routing.lynx` step 6, :mod:`lynx.routing.oea`,
:mod:`lynx.routing.topk`): a token takes the first ``k`` experts of its own ranking, experts
in the batch's active set first. That is one :func:`select_top` per row (the active flag
above the ranking key), and its winners come out best-ranked first whenever every chosen
expert is active (LYNX: a token's own picks are in the set; top-k: the set is empty). OEA
may fill with experts outside ``S``, so its slots are re-sorted by rank (``RESORT``).

Weights follow :func:`lynx.routing.scores.routing_weights`: softmax or sigmoid scores of
the chosen experts, renormalised to sum 1 or scaled to the original top-k score mass. The
``exp`` of the chosen slots is evaluated in float64 and rounded (``tl.exp`` on float32 is
an approximation on the GPU; torch's is accurate to about an ulp), so weights agree with
the PyTorch path to a few float32 ulps; the softmax denominator is only needed without
renormalisation (it cancels otherwise) and uses float32 ``exp`` (a sum, errors average).
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.routing_select import select_top, sort_slots
from lynx.kernels.routing_tiles import INT32_MIN, key_logit


@triton.jit
def remap_slots(
    key, active, cols, N,
    K: tl.constexpr, KP: tl.constexpr, KEY16: tl.constexpr, RESORT: tl.constexpr,
):
    """``([R, KP] ranking keys, [R, KP] expert ids)`` of each row's final experts, best first.

    ``key``: ``[R, BN]`` ranking keys; ``active``: ``[BN]`` int32 0/1 (all 0 = plain top-k).
    Slots past ``K`` hold ``INT32_MIN`` and id 0.
    """
    if KEY16:  # one key: active flag at bit 24 above the 24-bit ranking key
        flagged = key | (active[None, :] << 24)  # -1 (past N) stays -1
        _, lo, idx = select_top(flagged, flagged, cols, INT32_MIN, INT32_MIN, K, KP, False, True)
        lo = tl.where(lo == INT32_MIN, lo, lo & 16777215)  # drop the flag
    else:  # float32 logits: the flag as the primary key
        flag = tl.where(cols[None, :] < N, active[None, :], -1)  # past N: below inactive
        _, lo, idx = select_top(flag, key, cols, INT32_MIN, INT32_MIN, K, KP, True, False)
    if RESORT:
        lo, idx = sort_slots(lo, idx, K, KP)
    return lo, idx


@triton.jit
def slot_scores(lo, zmax, denom, dtype: tl.constexpr, KEY16: tl.constexpr, SOFTMAX: tl.constexpr):
    """``[R, KP]`` float32 router scores of the experts with ranking keys ``lo``."""
    z = key_logit(lo, dtype, KEY16)
    if SOFTMAX:
        e = tl.exp((z - zmax[:, None]).to(tl.float64)).to(tl.float32)  # torch: exp(z - max)
        return e / denom[:, None]
    t = tl.exp((-z).to(tl.float64)).to(tl.float32)  # overflows to inf exactly where torch's does
    return 1.0 / (1.0 + t)


@triton.jit
def slot_weights(
    z, key, lo, cols, dtype: tl.constexpr,
    K: tl.constexpr, KP: tl.constexpr, KEY16: tl.constexpr, SOFTMAX: tl.constexpr,
    RENORM: tl.constexpr, CHOSEN_IS_TOPK: tl.constexpr,
):
    """``[R, KP]`` float32 weights of the slots ``lo`` (ranking keys) under the model's rule.

    ``z``: the rows' logits ``[R, BN]`` (-inf past N); ``key``: their ranking keys;
    ``CHOSEN_IS_TOPK``: the slots are the plain top-k (their mass is the target mass).
    """
    zmax = tl.max(z, axis=1)  # [R]
    zmax = tl.where(zmax > float("-inf"), zmax, 0.0)  # rows past T: no NaN (-inf - -inf)
    if SOFTMAX and not RENORM:
        denom = tl.sum(tl.exp(z - zmax[:, None]), axis=1)  # [R] softmax denominator
    else:
        denom = tl.full([z.shape[0]], 1.0, tl.float32)  # cancels in the renormalisation
    in_k = tl.arange(0, KP)[None, :] < K
    chosen = tl.where(in_k, slot_scores(lo, zmax, denom, dtype, KEY16, SOFTMAX), 0.0)  # [R, KP]
    raw_mass = tl.sum(chosen, axis=1)  # [R]
    # All chosen scores can underflow to 0: divide by 1 there, as the PyTorch path does.
    mass = tl.where(raw_mass > 0, raw_mass, 1.0)
    if RENORM:
        return chosen / mass[:, None]
    if CHOSEN_IS_TOPK:
        top_mass = raw_mass  # same values, same order: the ratio is exactly 1 (or 0)
    else:
        _, top, _ = select_top(key, key, cols, INT32_MIN, INT32_MIN, K, KP, False, KEY16)  # plain top-k
        top_mass = tl.sum(tl.where(in_k, slot_scores(top, zmax, denom, dtype, KEY16, SOFTMAX), 0.0), axis=1)
    return chosen * (top_mass / mass)[:, None]
