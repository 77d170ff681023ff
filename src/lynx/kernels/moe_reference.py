"""Plain-PyTorch expert computation: the exact CPU path and the oracle for every GPU backend.

It reproduces transformers' eager ``Qwen3MoeExperts.forward`` operation for operation:
experts are visited in ascending id order, each expert's rows are gathered in the same
(top-k slot, token) order, the routing weight is cast to the model dtype and multiplies
the down-projection output in the model dtype, and the result is ``index_add_``-ed into a
model-dtype accumulator. In float32 this makes the output bit-identical to transformers'
loop (the only freedom left, the order of a token's k additions, follows the expert order
there too), which the model-level tests rely on.

The single deliberate difference: (token, slot) pairs whose routing weight is exactly zero
are skipped. Their contribution is ``y * 0 == 0`` anyway, so the sum is unchanged, but a
padding token (all-zero weights) then costs nothing and yields an exact zero even when its
hidden state holds garbage. Every GPU backend drops those pairs the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def check_expert_args(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
) -> tuple[int, int, int, int, int]:
    """Validate shapes shared by every backend; return ``(T, H, I, E, k)``.

    Only cheap metadata checks (no device reads), so it is safe inside CUDA-graph capture.
    """
    if hidden.dim() != 2 or w13.dim() != 3 or w2.dim() != 3:
        raise ValueError("expected hidden [T, H], w13 [E, 2I, H], w2 [E, H, I]")
    num_tokens, hidden_size = hidden.shape
    num_experts, two_i, h13 = w13.shape
    inter = two_i // 2
    if h13 != hidden_size or two_i % 2 or tuple(w2.shape) != (num_experts, hidden_size, inter):
        raise ValueError(
            f"inconsistent expert shapes: hidden {tuple(hidden.shape)}, w13 {tuple(w13.shape)}, "
            f"w2 {tuple(w2.shape)}"
        )
    if topk_ids.shape != topk_weights.shape or topk_ids.dim() != 2 or topk_ids.shape[0] != num_tokens:
        raise ValueError(
            f"topk_ids {tuple(topk_ids.shape)} / topk_weights {tuple(topk_weights.shape)} "
            f"must both be [T={num_tokens}, k]"
        )
    return num_tokens, hidden_size, inter, num_experts, topk_ids.shape[1]


def fused_experts_reference(
    hidden: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
) -> torch.Tensor:
    """``out[t] = sum_j w[t, j] * down_e(silu(gate_e(x_t)) * up_e(x_t))``, ``e = ids[t, j]``.

    Args:
        hidden: ``[T, H]`` token activations in the model dtype.
        w13: ``[E, 2I, H]`` stacked gate_proj (rows ``0..I-1``) and up_proj (rows ``I..2I-1``).
        w2: ``[E, H, I]`` down_proj.
        topk_weights: ``[T, k]`` routing weights (any float dtype, usually float32).
        topk_ids: ``[T, k]`` expert ids in ``[0, E)``.

    Returns:
        ``[T, H]`` in ``hidden.dtype``.

    Loops over the experts that received tokens; it host-syncs once (the per-expert
    counts), so it is not CUDA-graph safe. That is fine: it is the CPU path and the oracle.
    """
    num_tokens, _, _, num_experts, top_k = check_expert_args(hidden, w13, w2, topk_weights, topk_ids)
    out = torch.zeros_like(hidden)  # [T, H] accumulator in the model dtype, as transformers
    if num_tokens == 0 or top_k == 0:
        return out
    # transformers enumerates an expert's rows with torch.where(mask[e]) over a [k, T] mask,
    # i.e. slot-major; flattening ids.T and sorting stably reproduces that order.
    ids_sk = topk_ids.t().reshape(-1)  # [k*T], index = slot * T + token
    w_sk = topk_weights.t().reshape(-1)  # [k*T]
    keep = w_sk != 0  # zero-weight pairs contribute exactly nothing: skip them
    ids_sk = torch.where(keep, ids_sk, num_experts)  # dropped pairs -> sentinel expert E
    order = torch.sort(ids_sk, stable=True).indices  # [k*T] pair positions grouped by expert
    counts = torch.bincount(ids_sk, minlength=num_experts + 1)[:num_experts].tolist()  # host sync
    w_model = w_sk.to(hidden.dtype)  # transformers' router hands the experts model-dtype weights

    start = 0
    for expert, count in enumerate(counts):
        if count == 0:
            continue
        pos = order[start : start + count]  # [n] positions in the slot-major flattening
        start += count
        token = pos % num_tokens  # [n]
        gate, up = F.linear(hidden[token], w13[expert]).chunk(2, dim=-1)  # [n, I] each
        y = F.linear(F.silu(gate) * up, w2[expert])  # [n, H]
        y = y * w_model[pos, None]  # [n, H] * [n, 1]
        out.index_add_(0, token, y.to(out.dtype))
    return out
