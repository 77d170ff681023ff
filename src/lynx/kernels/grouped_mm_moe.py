"""``torch._grouped_mm`` backend: sort pairs by expert, two grouped GEMMs, weighted k-sum.

The same algorithm as transformers' ``grouped_mm`` experts integration, made CUDA-graph
safe (group offsets from ``searchsorted`` on the sorted keys instead of a host-side
``bincount``) and made to skip zero-weight pairs: they get the key ``E``, sort to the tail
and fall past the last group offset, so the GEMMs never compute them and no expert is read
on their account. Those tail rows come back uninitialised, hence the ``where`` below.

Fixed cost is about ten small kernels (sort, gathers, SiLU-mul, un-permute, sum) around the
two GEMMs; it is the baseline the Triton backend has to beat at decode sizes and probably
the better choice for large prefill batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lynx.kernels.moe_align import routing_keys
from lynx.kernels.moe_reference import check_expert_args

_grouped_mm = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def fused_experts_grouped_mm(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
) -> torch.Tensor:
    """grouped_mm backend of :func:`lynx.kernels.fused_experts` (same contract)."""
    if _grouped_mm is None:
        raise RuntimeError("this torch has neither torch.nn.functional.grouped_mm nor torch._grouped_mm")
    num_tokens, hidden_size, inter_size, num_experts, top_k = check_expert_args(
        hidden, w13, w2, topk_weights, topk_ids
    )
    if num_tokens == 0 or top_k == 0:
        return torch.zeros_like(hidden)
    keys = routing_keys(topk_ids, topk_weights, num_experts)  # [P], E for dropped pairs
    sorted_keys, perm = torch.sort(keys)  # [P], [P]
    experts = torch.arange(num_experts, device=keys.device, dtype=keys.dtype)  # [E]
    # offsets[e] = number of kept pairs with expert <= e (group ends); dropped pairs excluded
    offsets = torch.searchsorted(sorted_keys, experts, right=True).to(torch.int32)  # [E]

    x = hidden[perm // top_k]  # [P, H] rows in expert order
    gate_up = _grouped_mm(x, w13.transpose(1, 2), offs=offsets)  # [P, H] @ [E, H, 2I] -> [P, 2I]
    inter = F.silu(gate_up[:, :inter_size]) * gate_up[:, inter_size:]  # [P, I]
    y = _grouped_mm(inter, w2.transpose(1, 2), offs=offsets)  # [P, I] @ [E, I, H] -> [P, H]

    route_w = topk_weights.reshape(-1).to(torch.float32)[perm]  # [P] in sorted order
    kept = (sorted_keys < num_experts)[:, None]  # [P, 1]; tail rows are uninitialised memory
    y = torch.where(kept, y.float() * route_w[:, None], 0.0)  # [P, H] fp32
    pair_out = torch.empty_like(y).index_copy_(0, perm, y)  # [P, H] back to pair order t*k + j
    out = pair_out.view(num_tokens, top_k, hidden_size).sum(dim=1)  # [T, k, H] -> [T, H]
    return out.to(hidden.dtype)
