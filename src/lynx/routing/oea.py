"""OEA (opportunistic expert activation), the peer method LYNX is compared against.

Phase 1: every valid token takes its top-``k0``; ``S`` is their union. Phase 2: each token
walks its own ranking from position ``k0 + 1`` and adds experts that are already in ``S``
until it holds ``k``.

Deviation (ours): OEA lets a token that runs out of experts in ``S`` keep fewer than ``k``.
We fill its remaining slots with its own next-best experts outside ``S``, so every token
always has exactly ``k`` experts and a batch of one routes exactly as plain top-k (its
``S`` is its own top-``k0``, so it fills with ranks ``k0 .. k-1``).
"""

from __future__ import annotations

import torch

from lynx.routing.scores import smallest_k


def oea_choose(rank: torch.Tensor, valid: torch.Tensor, top_k: int, k0: int) -> torch.Tensor:
    """OEA expert ids [T, k] (slot order not yet normalised).

    ``rank``: [T, N] position of each expert in its token's ranking; ``valid``: [T] bool.
    Both phases are one sort key: phase-1 experts first, then experts in ``S``, then the
    rest, each group in the token's own order; a token takes the first ``k``.
    """
    n = rank.shape[-1]
    base = rank < k0  # [T, N]: each token's top-k0 (phase 1)
    in_s = (base & valid.unsqueeze(-1)).any(dim=0)  # S: [N], padding rows don't contribute
    group = torch.where(base, 0, torch.where(in_s, 1, 2))  # [T, N]: 0 own, 1 in S, 2 fill
    key = group * n + rank  # [T, N], distinct per row
    return smallest_k(key, top_k)  # [T, k]
