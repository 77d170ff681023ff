"""Token-row blocks of the one-launch MoE kernel (``TritonMoEConfig.token_rows``, opt-in).

With at most ``BLOCK_M`` tokens a block can hold every token: block ``b`` is the ``b``-th
active expert (ranked by id) and its row ``t`` is token ``t``'s pair with that expert, or
padding. Each program derives this from the routing with one histogram and one scan (no
sort, no block table); a block's rows come from comparing each token's ``k`` ids with its
expert. Used by :mod:`lynx.kernels.triton_moe_persistent`.
"""

from __future__ import annotations

import triton
import triton.language as tl

from lynx.kernels.triton_moe_align import pair_keys


@triton.jit
def active_experts(
    ids_ptr, weights_ptr, num_pairs, NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, P_POW2: tl.constexpr,
):
    """Token-row blocks (see :func:`token_row_hits`): ``(rank [EP], active [EP] int32, count)``
    of the experts holding a kept pair, ranked by id. One histogram and one scan, no sort."""
    p = tl.arange(0, P_POW2)
    key, kept = pair_keys(ids_ptr, weights_ptr, p, p < num_pairs, NUM_EXPERTS)
    active = (tl.histogram(key, E_POW2, mask=kept) > 0).to(tl.int32)  # [EP]
    return tl.cumsum(active, axis=0) - active, active, tl.sum(active, axis=0)


@triton.jit
def token_row_hits(
    ids_ptr, weights_ptr, rank, active, block, num_tokens,
    NUM_EXPERTS: tl.constexpr, E_POW2: tl.constexpr, TOP_K: tl.constexpr, KP: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    """Token-row block ``block`` (``T <= BLOCK_M``): the ``block``-th active expert, whose row
    ``t`` holds token ``t``'s pair with it, if any. Returns ``(expert, hit [BM, KP], pair
    [BM, KP], rounds)``: ``hit`` marks token t's kept slots j routed to the expert, ``pair``
    is ``t * TOP_K + j``, ``rounds`` the most hits of one token (1 for routing ids distinct
    per token, as every policy gives; a repeated id takes one more round per repeat)."""
    e = tl.arange(0, E_POW2)
    expert = tl.sum(tl.where((active > 0) & (rank == block), e, 0), axis=0)
    t = tl.arange(0, BLOCK_M)[:, None]  # [BM, 1]
    j = tl.arange(0, KP)[None, :]  # [1, KP]
    pair = t * TOP_K + j  # [BM, KP]
    key, kept = pair_keys(ids_ptr, weights_ptr, pair, (t < num_tokens) & (j < TOP_K), NUM_EXPERTS)
    hit = kept & (key == expert)  # [BM, KP]
    rounds = tl.max(tl.sum(hit.to(tl.int32), axis=1), axis=0)
    return expert, hit, pair, rounds


@triton.jit
def token_row_first(hit, pair, num_pairs):
    """``[BM]`` each row's first pair with the block's expert (``pair`` grows with the slot),
    ``num_pairs`` (padding) where the token has none: :func:`token_row_pairs` of round 0."""
    return tl.min(tl.where(hit, pair, num_pairs), axis=1)


@triton.jit
def token_row_pairs(hit, pair, rnd, num_pairs):
    """``[BM]`` pair of each row in round ``rnd`` (its ``rnd``-th hit), ``num_pairs`` (padding) if none."""
    j = tl.arange(0, hit.shape[1])  # [KP]
    # hits before slot j in the row, by pairwise comparison ([BM, KP] tl.cumsum along the
    # slots hits an assertion of Triton 3.6's scan lowering for KP = 2, e.g. Mixtral's k)
    before = hit[:, None, :] & (j[None, None, :] < j[None, :, None])  # [BM, KP(j), KP(j')]
    nth = tl.sum(before.to(tl.int32), axis=2)  # [BM, KP]
    return tl.min(tl.where(hit & (nth == rnd), pair, num_pairs), axis=1)
