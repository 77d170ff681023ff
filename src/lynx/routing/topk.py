"""Plain top-k: every token takes the ``k`` best experts of its own ranking."""

from __future__ import annotations

import torch


def topk_choose(order: torch.Tensor, top_k: int) -> torch.Tensor:
    """The first ``top_k`` experts of each token's ranking ``order`` ([T, N]) -> [T, k]."""
    return order[:, :top_k]  # [T, k]
