"""Triton helpers for the last routing phase: final expert choice per token, and weights.

Every policy ends the same way (:mod:`lynx.routing.lynx` step 6, :mod:`lynx.routing.oea`,
:mod:`lynx.routing.topk`): a token takes the first ``k`` experts of its own ranking, experts
in the batch's active set first. With the rank key below an "active" bit at bit 40 that is
one bitonic top-k per row, which also yields the slots best first whenever every chosen
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

from lynx.kernels.routing_tiles import largest, rank_key_logit


@triton.jit
def remap_slots(rank_key, active, K: tl.constexpr, KP: tl.constexpr, RESORT: tl.constexpr):
    """``[R, KP]`` rank keys of each row's chosen experts, best-ranked first; -1 past ``K``.

    ``rank_key``: ``[R, BN]``; ``active``: ``[BN]`` int32 0/1 (all 0 = plain top-k).
    """
    key = rank_key | (active.to(tl.int64)[None, :] << 40)  # -1 (past N) stays -1
    top = largest(key, KP)  # [R, KP]: active experts first, each group by rank
    slot = tl.arange(0, KP)[None, :]
    top = tl.where(slot < K, top & 1099511627775, -1)  # drop the active bit; -1 sorts last
    if RESORT and KP > 1:
        top = tl.sort(top, dim=1, descending=True)  # fill experts interleave by rank
    return top


@triton.jit
def slot_scores(slots, zmax, denom, SOFTMAX: tl.constexpr):
    """``[R, KP]`` float32 router scores of the experts in ``slots`` (rank keys)."""
    z = rank_key_logit(slots)
    if SOFTMAX:
        e = tl.exp((z - zmax[:, None]).to(tl.float64)).to(tl.float32)  # torch: exp(z - max)
        return e / denom[:, None]
    t = tl.exp((-z).to(tl.float64)).to(tl.float32)  # overflows to inf exactly where torch's does
    return 1.0 / (1.0 + t)


@triton.jit
def slot_weights(
    z, rank_key, slots,
    K: tl.constexpr, KP: tl.constexpr, SOFTMAX: tl.constexpr, RENORM: tl.constexpr,
    CHOSEN_IS_TOPK: tl.constexpr,
):
    """``[R, KP]`` float32 weights of ``slots`` under the model's convention (0 past ``K``).

    ``z``: the rows' logits ``[R, BN]`` (-inf past N); ``rank_key``: their rank keys;
    ``CHOSEN_IS_TOPK``: the slots are the plain top-k (their mass is the target mass).
    """
    zmax = tl.max(z, axis=1)  # [R]
    zmax = tl.where(zmax > float("-inf"), zmax, 0.0)  # rows past T: no NaN (-inf - -inf)
    if SOFTMAX and not RENORM:
        denom = tl.sum(tl.exp(z - zmax[:, None]), axis=1)  # [R] softmax denominator
    else:
        denom = tl.full([z.shape[0]], 1.0, tl.float32)  # cancels in the renormalisation
    in_k = tl.arange(0, KP)[None, :] < K
    chosen = tl.where(in_k, slot_scores(slots, zmax, denom, SOFTMAX), 0.0)  # [R, KP]
    raw_mass = tl.sum(chosen, axis=1)  # [R]
    # All chosen scores can underflow to 0: divide by 1 there, as the PyTorch path does.
    mass = tl.where(raw_mass > 0, raw_mass, 1.0)
    if RENORM:
        return chosen / mass[:, None]
    if CHOSEN_IS_TOPK:
        top_mass = raw_mass  # same values, same order: the ratio is exactly 1 (or 0)
    else:
        top = largest(rank_key, KP)  # [R, KP] the plain top-k, best first
        top_mass = tl.sum(tl.where(in_k, slot_scores(top, zmax, denom, SOFTMAX), 0.0), axis=1)
    return chosen * (top_mass / mass)[:, None]
