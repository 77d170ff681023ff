"""Per-step tally of the experts each MoE layer touched, before and after the policy.

Counting distinct experts inside every layer would cost several small launches per layer
(about a millisecond per Qwen3-30B-A3B decode step on an H200). Instead the routing call
itself marks, in a static ``[layers, 2, N]`` buffer, the experts that plain top-k
(row 0, what the batch would have read) and the policy (row 1) give a valid row: the
Triton routing kernel does it with a few stores in its last launch, the PyTorch path with
two scatters (:func:`mark_experts`). One reduction per step then yields every layer's counts.
"""

from __future__ import annotations

import torch


def mark_experts(hits: torch.Tensor, before: torch.Tensor, after: torch.Tensor, valid: torch.Tensor) -> None:
    """Set ``hits[0, e]`` / ``hits[1, e]`` to 1 for experts in valid rows of ``before`` /
    ``after`` (``[T, k]`` ids each; ``valid [T]`` bool). No host sync: padding rows write
    0 through a max, so they never mark anything."""
    k = before.shape[1]
    live = valid.to(hits.dtype).repeat_interleave(k)  # [T*k] 1 on valid rows
    hits[0].scatter_reduce_(0, before.reshape(-1), live, reduce="amax")  # [N] <- [T*k]
    hits[1].scatter_reduce_(0, after.reshape(-1), live, reduce="amax")


class ExpertTally:
    """Static buffers for ``num_layers`` MoE layers of ``num_experts`` experts."""

    def __init__(self, num_layers: int, num_experts: int, device: torch.device) -> None:
        self.hits = torch.zeros(num_layers, 2, num_experts, dtype=torch.int32, device=device)  # [L, 2, N]
        self.counts = torch.zeros(num_layers, 2, dtype=torch.int64, device=device)  # [L, 2]

    def layer(self, index: int) -> torch.Tensor:
        """``[2, N]`` marks of MoE layer ``index``, for :func:`lynx.routing.select_experts`."""
        return self.hits[index]

    def reset(self) -> None:
        self.hits.zero_()

    def finalize(self) -> torch.Tensor:
        """``[L, 2]`` int64 distinct experts per layer (plain top-k, policy) for this step."""
        torch.sum(self.hits, dim=-1, out=self.counts)
        return self.counts
