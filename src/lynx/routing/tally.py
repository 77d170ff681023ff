"""Per-step tally of the experts each MoE layer touched, before and after the policy.

Counting distinct experts inside every layer costs ~10 small launches per layer (about a
millisecond per Qwen3-30B-A3B decode step on an H200). Instead each layer does at most two
cheap writes (mark its chosen experts; keep its router logits when the policy is not plain
top-k) and one batched pass per step computes every layer's counts, including the top-k
"before" counts. Padding rows carry the ids of the first valid row (the policies'
convention), so marking them adds no expert; their logits are replaced by row 0's.
"""

from __future__ import annotations

import torch


class ExpertTally:
    """Static buffers for ``num_layers`` MoE layers and up to ``max_tokens`` rows."""

    def __init__(self, num_layers: int, num_experts: int, top_k: int, max_tokens: int,
                 device: torch.device, keep_logits: bool) -> None:
        self.top_k = top_k
        self.hits = torch.zeros(num_layers, 2, num_experts, dtype=torch.int32, device=device)  # [L, 2, N]
        # Router logits are only needed to recount plain top-k when another policy routes.
        self.logits = (torch.zeros(num_layers, max_tokens, num_experts, dtype=torch.float32, device=device)
                       if keep_logits else None)  # [L, Tmax, N]
        self.counts = torch.zeros(num_layers, 2, dtype=torch.int64, device=device)  # [L, 2]

    def reset(self) -> None:
        self.hits.zero_()

    def record(self, layer: int, ids: torch.Tensor, logits: torch.Tensor, policy: str) -> None:
        """Mark ``ids [T, k]`` as layer ``layer``'s choice; keep ``logits [T, N]`` if needed."""
        self.hits[layer, 1].index_fill_(0, ids.reshape(-1), 1)
        if policy != "topk" and self.logits is not None:
            self.logits[layer, : logits.shape[0]].copy_(logits)

    def finalize(self, policy: str, num_rows: int, valid: torch.Tensor | None) -> torch.Tensor:
        """``[L, 2]`` int64 distinct experts per layer (plain top-k, policy) for this step."""
        if policy == "topk" or self.logits is None:
            self.hits[:, 0].copy_(self.hits[:, 1])
        else:
            lg = self.logits[:, :num_rows]  # [L, T, N]
            if valid is not None:
                lg = torch.where(valid[None, :num_rows, None], lg, lg[:, :1])  # padding -> row 0
            ids = lg.topk(self.top_k, dim=-1).indices  # [L, T, k]
            self.hits[:, 0].scatter_(1, ids.flatten(1), 1)  # [L, N] <- [L, T*k]
        torch.sum(self.hits, dim=-1, out=self.counts)
        return self.counts
