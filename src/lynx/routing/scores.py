"""What all policies share: router scores, each token's ranking, slot order and weights.

Conventions (the same for every policy):

* Ranking: a token ranks experts by its logits, highest first, ties toward the lower
  expert index. Softmax and sigmoid are monotone, so the first ``k`` of this ranking are
  the ``k`` highest scores ("original top-k"); where float32 scores tie but the logits
  differ, the logits (the more precise information) decide before the index does.
* Slots: a token's ``k`` chosen experts are returned best-ranked first.
* Weights: renormalised to sum 1 when the model renormalises its top-k weights;
  otherwise scaled to the token's original top-k score mass, so plain top-k returns the
  raw scores bit for bit (``x * (m / m) == x``).
* Padding rows: weight 0 and the ids of the first valid row, so they never add an
  expert to the batch's active set (row 0 if no row is valid).

Everything is a fixed sequence of tensor ops with static shapes: no host sync.
"""

from __future__ import annotations

import torch


def compute_scores(logits: torch.Tensor, scoring: str) -> torch.Tensor:
    """Router probabilities in float32: softmax over experts, or a sigmoid per expert."""
    z = logits.float()  # [T, N]
    if scoring == "softmax":
        return torch.softmax(z, dim=-1)  # [T, N]
    return torch.sigmoid(z)  # [T, N]


def expert_order(logits: torch.Tensor) -> torch.Tensor:
    """``[..., N]`` int64: each token's experts, best first. A stable descending sort keeps
    equal logits in index order (ties -> lower index): the ranking every policy uses."""
    return torch.sort(logits.float(), dim=-1, descending=True, stable=True).indices


def rank_experts(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each token's ranking of the experts.

    Returns ``(order, rank)``, both ``[T, N]`` int64: ``order[t, i]`` is the expert in
    position ``i`` of token ``t``'s ranking (:func:`expert_order`) and ``rank[t, e]`` the
    position of expert ``e``.
    """
    z = logits.float()  # [T, N]
    order = expert_order(z)  # [T, N]
    positions = torch.arange(z.shape[-1], device=z.device).expand_as(order)  # [T, N]
    rank = torch.empty_like(order).scatter_(-1, order, positions)  # [T, N]
    return order, rank


def smallest_k(keys: torch.Tensor, k: int) -> torch.Tensor:
    """Column indices of the ``k`` smallest entries of each row, smallest first.

    Callers build ``keys`` with distinct values in every row (they embed the rank), so
    the result is unique and plain ``topk`` is deterministic here.
    """
    return torch.topk(keys, k, dim=-1, largest=False, sorted=True).indices  # [T, k]


def order_slots(ids: torch.Tensor, rank: torch.Tensor) -> torch.Tensor:
    """Reorder each row of ``ids`` ([T, k]) best-ranked first (ranks in a row are distinct)."""
    slot_rank = rank.gather(-1, ids)  # [T, k]
    perm = torch.sort(slot_rank, dim=-1, stable=True).indices  # [T, k]
    return ids.gather(-1, perm)  # [T, k]


def routing_weights(
    scores: torch.Tensor, ids: torch.Tensor, top_ids: torch.Tensor, renormalize: bool
) -> torch.Tensor:
    """Weights of the chosen experts ``ids`` ([T, k]) under the model's convention.

    ``top_ids`` ([T, k]) is the original top-k; its score mass is the target sum when the
    model does not renormalise.
    """
    chosen = scores.gather(-1, ids)  # [T, k]
    chosen_mass = chosen.sum(-1, keepdim=True)  # [T, 1]
    # All chosen scores can underflow to 0 (sigmoid of very negative logits): divide by 1
    # there instead of producing 0/0; any nonzero mass is used as is.
    chosen_mass = torch.where(chosen_mass > 0, chosen_mass, torch.ones_like(chosen_mass))
    if renormalize:
        return chosen / chosen_mass  # [T, k]
    # Same gather and summation order as for ``chosen``: when ids == top_ids the ratio is
    # exactly 1 and plain top-k returns its raw scores unchanged.
    top_mass = scores.gather(-1, top_ids).sum(-1, keepdim=True)  # [T, 1]
    return chosen * (top_mass / chosen_mass)  # [T, k]


def mask_padding(
    weights: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the weights of padding rows and give them the ids of the first valid row."""
    # argmax returns the first maximum: the first valid row, or row 0 if none is valid.
    first = valid.to(torch.int64).argmax().view(1)  # [1]
    ref_ids = ids.index_select(0, first)  # [1, k]
    keep = valid.unsqueeze(-1)  # [T, 1]
    ids = torch.where(keep, ids, ref_ids)  # [T, k]
    weights = torch.where(keep, weights, torch.zeros_like(weights))  # [T, k]
    return weights, ids
