"""``select_experts``: the single entry point that applies a routing policy to a batch."""

from __future__ import annotations

from typing import Any

import torch

from lynx.kernels.routing_dispatch import routing_backend
from lynx.routing.config import check_policy, check_scoring, check_shape, resolve_params
from lynx.routing.lynx import lynx_choose
from lynx.routing.oea import oea_choose
from lynx.routing.scores import (
    compute_scores,
    mask_padding,
    order_slots,
    rank_experts,
    routing_weights,
)
from lynx.routing.tally import LayerTally, mark_experts
from lynx.routing.topk import topk_choose


def checked_params(
    shape: tuple[int, ...], top_k: int, policy: str, scoring: str, valid: torch.Tensor | None, params: dict[str, Any],
) -> dict[str, Any]:
    """The policy's resolved parameters for routing logits of ``shape`` ``[T, N]``, after validating the call.

    Raises:
        RoutingConfigError: unknown policy, scoring or parameter, or an invalid value.
        ValueError: ``shape`` is not 2-D, or ``valid`` is not ``[T]``.
    """
    check_policy(policy)
    check_scoring(scoring)
    if len(shape) != 2:
        raise ValueError(f"router_logits must be [T, N], got shape {tuple(shape)}")
    t, n = shape
    check_shape(n, top_k)
    p = resolve_params(policy, params, n, top_k)
    if valid is not None and tuple(valid.shape) != (t,):
        raise ValueError(f"valid must have shape [{t}], got {tuple(valid.shape)}")
    return p


def select_experts(
    router_logits: torch.Tensor,
    top_k: int,
    policy: str = "topk",
    scoring: str = "softmax",
    renormalize: bool = True,
    valid: torch.Tensor | None = None,
    tally: LayerTally | None = None,
    **params: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose ``top_k`` experts per token under ``policy`` and weight them.

    Args:
        router_logits: ``[T, N]`` router logits of one MoE layer, any float dtype
            (pre-sigmoid scores for sigmoid routers); computed in float32.
        top_k: experts per token, ``1 <= top_k <= N``.
        policy: ``"topk"``, ``"lynx"`` (params ``alpha``, ``beta``) or ``"oea"`` (``k0``);
            parameters left out take :func:`default_routing_params` for ``(N, top_k)``.
        scoring: ``"softmax"`` over the experts or ``"sigmoid"`` per expert.
        renormalize: weights sum to 1; otherwise they sum to the token's original
            top-k score mass (plain top-k then returns the raw scores).
        valid: ``[T]`` bool, False for padding rows (CUDA-graph buckets); ``None``: all
            rows valid. Padding rows do not vote, get weight 0 and the first valid row's ids.
        tally: optional per-step expert tally of this layer (see :mod:`lynx.routing.tally`):
            ``tally.hits[1, e]`` is set to 1 for every expert the policy gives a valid row,
            and ``tally.hits[0, e]`` for those plain top-k gives one, unless the tally keeps
            the logits to count plain top-k later; other entries are left as they are.

    Returns:
        ``(topk_weights [T, k] float32, topk_ids [T, k] int64)``; each valid row holds k
        distinct experts, best-ranked first.

    Raises:
        RoutingConfigError: unknown policy, scoring or parameter, or an invalid value.

    Only Python values are checked; the tensor work has static shapes and no host sync,
    so it can be captured in a CUDA graph. Deterministic for the same input.

    On CUDA the work runs in Triton kernels that return the same ids and weights (see
    :mod:`lynx.kernels.routing_dispatch`; ``LYNX_ROUTING_BACKEND=torch|triton`` forces one);
    the code below is the reference and the CPU path.
    """
    p = checked_params(tuple(router_logits.shape), top_k, policy, scoring, valid, params)
    t = router_logits.shape[0]
    device = router_logits.device
    if t > 0 and routing_backend(router_logits, top_k, policy, p) == "triton":
        from lynx.kernels.routing_triton import select_experts_triton  # imports Triton

        mask = None if valid is None else valid.to(device=device, dtype=torch.bool)
        return select_experts_triton(router_logits, top_k, policy, scoring, renormalize, mask, p, tally=tally)
    if valid is None:
        valid = torch.ones(t, dtype=torch.bool, device=device)  # [T]
    valid = valid.to(device=device, dtype=torch.bool)  # [T]
    if t == 0:  # nothing to route; argmax in mask_padding needs a row
        return (
            torch.zeros(0, top_k, dtype=torch.float32, device=device),
            torch.zeros(0, top_k, dtype=torch.int64, device=device),
        )

    logits = router_logits.float()  # [T, N]
    order, rank = rank_experts(logits)  # [T, N], [T, N]
    if policy == "lynx":
        ids = lynx_choose(logits, order, rank, valid, top_k, p["alpha"], p["beta"])
    elif policy == "oea":
        ids = oea_choose(rank, valid, top_k, p["k0"])
    else:
        ids = topk_choose(order, top_k)
    ids = order_slots(ids, rank)  # [T, k], best-ranked first
    scores = compute_scores(logits, scoring)  # [T, N]
    plain = topk_choose(order, top_k)  # [T, k]
    weights = routing_weights(scores, ids, plain, renormalize)  # [T, k]
    if tally is not None:
        mark_experts(tally, plain, ids, valid, logits)
    return mask_padding(weights, ids, valid)
