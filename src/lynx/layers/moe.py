"""Sparse MoE block: router, batch-aware expert selection, expert computation.

Expert weights are stacked at load time (``w13 [E, 2I, H]`` = gate rows then up rows,
``w2 [E, H, I]``) so one kernel call serves every expert. The routing policy comes from
the forward context; prompt-bearing (prefill) batches always route with plain top-k.
"""

from __future__ import annotations

import torch
from torch import nn

from lynx.context import get_context
from lynx.kernels import fused_experts
from lynx.layers.mlp import GatedMLP
from lynx.models.config import ModelConfig
from lynx.routing import select_experts


class SparseMoE(nn.Module):
    """Routed experts (+ an optional always-on shared expert with a sigmoid gate)."""

    def __init__(self, cfg: ModelConfig, moe_index: int) -> None:
        super().__init__()
        assert cfg.moe is not None
        moe = cfg.moe
        self.moe_index = moe_index  # position among the model's MoE layers (for stats)
        self.num_experts, self.top_k = moe.num_experts, moe.top_k
        self.scoring, self.renormalize = moe.scoring, moe.renormalize
        h, i = cfg.hidden_size, moe.intermediate_size
        self.gate = nn.Linear(h, moe.num_experts, bias=False)
        self.w13 = nn.Parameter(torch.empty(moe.num_experts, 2 * i, h))  # [E, 2I, H]
        self.w2 = nn.Parameter(torch.empty(moe.num_experts, h, i))  # [E, H, I]
        self.shared_expert: GatedMLP | None = None
        self.shared_expert_gate: nn.Linear | None = None
        if moe.shared_expert_intermediate_size:
            self.shared_expert = GatedMLP(h, moe.shared_expert_intermediate_size, cfg.hidden_act)
            self.shared_expert_gate = nn.Linear(h, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = get_context()
        logits = self.gate(x)  # [T, E]
        policy, params = ctx.policy_for_batch()
        tally = ctx.expert_tally.layer(self.moe_index) if ctx.expert_tally is not None else None
        weights, ids = select_experts(
            logits, self.top_k, policy=policy, scoring=self.scoring,
            renormalize=self.renormalize, valid=ctx.valid, tally=tally, **params,
        )  # [T, k] float32, [T, k] int64
        out = fused_experts(x, self.w13, self.w2, weights, ids)  # [T, H]
        if self.shared_expert is not None and self.shared_expert_gate is not None:
            out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out
