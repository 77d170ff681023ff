"""LYNX (AffinityBinning): shrink the batch's expert set by voting inside affinity bins.

Steps (docs/method.md), for the ``B`` valid tokens of a batch:

1. ``r = z - max_e z`` on the raw logits; 2. bin ``q = max(ceil(alpha * r), -beta)``;
3. votes ``h = B ** q``, batch score ``s[e] = sum_t h[t, e]``; 4. preference
``m = q + (s - h) / B``; 5. each token takes its top-k of ``m`` (ties -> its own ranking) and
``A`` is the union; 6. each token takes the top-k of its own ranking restricted to ``A``.

Exact arithmetic. In floating point ``B ** -beta`` is tiny next to ``q`` and lost votes
change ties, so the order of ``m`` is computed exactly in int64 by scaling with
``B ** (beta + 1)``::

    h' = B ** (q + beta)          (an integer in [1, B ** beta])
    s' = sum over valid tokens of h'
    m' = q * B ** (beta + 1) + (s' - h')  ==  m * B ** (beta + 1)

Overflow bound: ``|m'| <= beta * B ** (beta + 1)`` and ``s' <= B ** (beta + 1)``, so the
packed key is safe while ``(beta + 1) * B ** (beta + 1) < 2 ** 63``. ``B`` is a tensor
(no host sync), so the check uses the row count ``T >= B`` instead, a static Python int.
Beyond it (e.g. ``beta=12`` at ``T=64``) we use an equivalent exact form without powers:
``s - h = sum_j c_j B ** j`` where ``c_j <= B - 1`` counts the *other* valid tokens that put
the expert in bin ``j``. Digits below the base make this a base-``B`` numeral, so ordering
by ``m`` is ordering lexicographically by ``(q, c_0, c_-1, ..., c_-beta)``; we do that with
``beta + 2`` stable sorts (least significant key first). Both paths give identical results.

Ties in ``m`` (same bin, same votes from the rest of the batch) go to the expert the token
itself ranks higher. That is the token's own preference, not an arbitrary index order, and
it makes a batch of one (``m = q``, monotone in the logit) route exactly as plain top-k,
as method.md requires, without a special case.
"""

from __future__ import annotations

import torch

from lynx.routing.scores import smallest_k
from lynx.routing.stats import active_expert_mask

_INT64_LIMIT = 2**63


def affinity_bins(logits: torch.Tensor, alpha: float, beta: int) -> torch.Tensor:
    """Bin ``q = max(ceil(alpha * (z - max z)), -beta)`` per token and expert, int64 [T, N].

    Computed in float64: float32 logits subtract exactly there and ``alpha * r`` is
    rounded once, so bin edges match the real-number definition (in float32 a rounded
    ``r`` could cross an edge).
    """
    z = logits.to(torch.float64)  # [T, N]
    r = z - z.amax(dim=-1, keepdim=True)  # [T, N], <= 0
    # Clamp both ends: -inf logits land in the lowest bin; 0 is the top bin.
    return torch.ceil(alpha * r).clamp(-beta, 0).to(torch.int64)  # [T, N]


def packed_key_fits(num_rows: int, beta: int) -> bool:
    """Whether the int64 key ``m'`` cannot overflow for any batch of ``num_rows`` rows."""
    return (beta + 1) * num_rows ** (beta + 1) < _INT64_LIMIT


def preference_order_packed(
    q: torch.Tensor, valid: torch.Tensor, batch: torch.Tensor, beta: int, order: torch.Tensor
) -> torch.Tensor:
    """Each token's experts by descending ``m`` (ties -> own ranking), via the int64 key.

    ``q``: [T, N] bins; ``valid``: [T] bool; ``batch``: 0-dim int64, the valid row count B;
    ``order``: [T, N] each token's experts, best first.
    """
    votes = torch.pow(batch, q + beta) * valid.unsqueeze(-1)  # h' [T, N]; padding: 0
    total = votes.sum(dim=0, keepdim=True)  # s' [1, N]
    pref = q * batch.pow(beta + 1) + (total - votes)  # m' [T, N]
    # Stable sort over columns already in the token's own order: ties keep that order.
    idx = torch.sort(pref.gather(-1, order), dim=-1, descending=True, stable=True).indices  # [T, N]
    return order.gather(-1, idx)  # [T, N] expert ids


def preference_order_lexicographic(
    q: torch.Tensor, valid: torch.Tensor, beta: int, order: torch.Tensor
) -> torch.Tensor:
    """Same order as :func:`preference_order_packed`, with no powers of ``B`` (no overflow)."""
    t, n = q.shape
    bins = torch.arange(0, -beta - 1, -1, device=q.device)  # [beta+1]: 0, -1, ..., -beta
    own = (q.unsqueeze(-1) == bins) & valid.view(t, 1, 1)  # [T, N, beta+1]
    own = own.to(torch.int64)
    others = own.sum(dim=0, keepdim=True) - own  # c_j [T, N, beta+1]
    keys = [q] + [others[..., j] for j in range(beta + 1)]  # most significant first
    perm = order  # [T, N]; the token's own ranking breaks ties
    for key in reversed(keys):  # LSD radix: stable sorts, least significant key first
        step = torch.sort(key.gather(-1, perm), dim=-1, descending=True, stable=True)
        perm = perm.gather(-1, step.indices)  # [T, N]
    return perm


def lynx_choose(
    logits: torch.Tensor,
    order: torch.Tensor,
    rank: torch.Tensor,
    valid: torch.Tensor,
    top_k: int,
    alpha: float,
    beta: int,
) -> torch.Tensor:
    """LYNX expert ids [T, k] (slot order not yet normalised).

    ``logits``: [T, N] raw router logits; ``order``/``rank``: each token's ranking (see
    :func:`lynx.routing.scores.rank_experts`); ``valid``: [T] bool.
    """
    t, n = logits.shape
    q = affinity_bins(logits, alpha, beta)  # [T, N]
    batch = valid.sum()  # [] int64: B counts valid rows only, so padding changes nothing
    if packed_key_fits(t, beta):  # static: T and beta are Python ints
        pref_order = preference_order_packed(q, valid, batch, beta, order)  # [T, N]
    else:
        pref_order = preference_order_lexicographic(q, valid, beta, order)  # [T, N]
    picks = pref_order[:, :top_k]  # [T, k]
    active = active_expert_mask(picks, valid, n)  # A: [N] bool
    # Remap: experts in A first, each group in the token's own order; take k.
    key = rank + n * (~active).to(torch.int64)  # [T, N], distinct per row
    return smallest_k(key, top_k)  # [T, k]
