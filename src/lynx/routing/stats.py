"""Batch statistics of a routing decision: which experts the batch touches.

The number of distinct experts is what a memory-bound MoE decode step pays for (one read
of each expert's weights), so it is the quantity every batch-aware policy minimises.
"""

from __future__ import annotations

import torch


def active_expert_mask(
    topk_ids: torch.Tensor, valid: torch.Tensor | None, num_experts: int
) -> torch.Tensor:
    """``[N]`` bool: experts chosen by at least one valid row of ``topk_ids`` ([T, k]).

    Counts hits with an integer ``index_add_`` (order-independent, so deterministic even
    with atomics) instead of a boolean scatter, where padding rows writing ``False`` onto
    an expert a valid row wrote ``True`` to would race.
    """
    ids = topk_ids.to(torch.int64)  # [T, k]
    if valid is None:
        votes = torch.ones_like(ids)  # [T, k]
    else:
        votes = valid.to(torch.int64).unsqueeze(-1).expand_as(ids)  # [T, k]
    hits = torch.zeros(num_experts, dtype=torch.int64, device=ids.device)  # [N]
    hits.index_add_(0, ids.reshape(-1), votes.reshape(-1))  # [N] <- [T*k]
    return hits > 0  # [N]


def count_active_experts(
    topk_ids: torch.Tensor, valid: torch.Tensor | None = None, *, num_experts: int
) -> torch.Tensor:
    """Number of distinct experts used by the valid rows, as a 0-dim int64 tensor.

    ``valid`` ([T] bool) marks real rows; ``None`` means all rows. No host sync: read the
    result with ``.item()`` outside captured code if you need a Python int.
    """
    return active_expert_mask(topk_ids, valid, num_experts).sum()  # []
