"""Sparse MoE block: router, batch-aware expert selection, expert computation.

Expert weights are stacked at load time (``w13 [E, 2I, H]`` = gate rows then up rows,
``w2 [E, H, I]``) so one kernel call serves every expert. The routing policy comes from
the forward context; prompt-bearing (prefill) batches always route with plain top-k.

With ``LYNX_FUSED_ROUTER=1`` (read at every call; off by default), where the routing would
run in Triton (:mod:`lynx.kernels.routing_dispatch`) and the fused kernel covers the call
(:func:`lynx.kernels.router_route.fused_router_reason`: top-k up to 64 rows, LYNX/OEA in
their single-program plans; no router bias), the router GEMM and the routing are one
launch (:func:`lynx.kernels.router_route.router_select_triton`). It is off because on the
H200 the one launch was slower than cuBLAS + the routing kernel (10.4 vs 8.4 µs per layer
for top-k at batch 16, docs/performance.md section 8).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lynx.context import get_context
from lynx.kernels import fused_experts
from lynx.kernels.dense import dense_linear
from lynx.kernels.env_flags import env_flag
from lynx.kernels.routing_dispatch import routing_backend
from lynx.kernels.triton_interpret import interpreter_enabled
from lynx.layers.mlp import GatedMLP
from lynx.models.config import ModelConfig
from lynx.routing import select_experts
from lynx.routing.select import checked_params
from lynx.routing.tally import LayerTally

FUSED_ROUTER_ENV = "LYNX_FUSED_ROUTER"  # "1": router GEMM and routing in one launch (opt-in)


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

    def _fused_route(
        self, x: torch.Tensor, policy: str, params: dict[str, Any], valid: torch.Tensor | None,
        tally: LayerTally | None,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(weights, ids)`` of the fused router launch, or None where it does not apply.

        Validates policy and parameters with the functions ``select_experts`` uses (same
        errors); only Python values are read, so the choice is fixed in a CUDA graph.
        """
        if not env_flag(FUSED_ROUTER_ENV, False) or self.gate.bias is not None:
            return None
        if x.dim() != 2 or x.shape[0] == 0 or not (x.is_cuda or interpreter_enabled()):
            return None
        t = x.shape[0]
        p = checked_params((t, self.num_experts), self.top_k, policy, self.scoring, valid, params)
        # [T, E] view of x with the router logits' shape, dtype and device (all that is read)
        if routing_backend(x[:1, :1].expand(t, self.num_experts), self.top_k, policy, p) != "triton":
            return None
        from lynx.kernels.router_route import fused_router_reason, router_select_triton

        if fused_router_reason(x, self.gate.weight, self.top_k, policy, p) is not None:
            return None
        mask = None if valid is None else valid.to(device=x.device, dtype=torch.bool)
        _, weights, ids = router_select_triton(
            x, self.gate.weight, self.top_k, policy, self.scoring, self.renormalize, mask, p, tally,
            reason_checked=True)
        return weights, ids

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ctx = get_context()
        policy, params = ctx.policy_for_batch()
        tally = ctx.expert_tally.layer(self.moe_index) if ctx.expert_tally is not None else None
        routed = self._fused_route(x, policy, params, ctx.valid, tally)
        if routed is None:
            logits = dense_linear(x, self.gate.weight, self.gate.bias, "router")  # [T, E]
            routed = select_experts(
                logits, self.top_k, policy=policy, scoring=self.scoring,
                renormalize=self.renormalize, valid=ctx.valid, tally=tally, **params,
            )
        weights, ids = routed  # [T, k] float32, [T, k] int64
        out = fused_experts(x, self.w13, self.w2, weights, ids)  # [T, H]
        if self.shared_expert is not None and self.shared_expert_gate is not None:
            out = out + torch.sigmoid(self.shared_expert_gate(x)) * self.shared_expert(x)
        return out
