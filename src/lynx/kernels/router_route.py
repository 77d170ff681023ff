"""Fused MoE router: the router GEMM and the routing of a decode batch in ONE Triton launch.

A decode step's MoE layer otherwise runs the gate GEMM (``x [T, H] @ W [N, H]^T``, ~0.5 MB
of weights, pure latency on an H200) and then the routing kernel on its logits. Here the
skinny split-K GEMM (:mod:`lynx.kernels.skinny_gemm`: its tiles, launch parameters and
counter workspace) writes the logits, and its last program to finalise an N tile routes
all rows with the code of ``route_kernel``'s single-program plans (see
:mod:`lynx.kernels.router_route_kernel`).

Scope (:func:`fused_router_reason` names anything else, the caller then takes the two-step
path): plain top-k for ``T <= 64``; LYNX and OEA where
:func:`lynx.kernels.routing_plans.plan_is_fused` holds (one program); no bias; the
shapes and dtypes both kernels support. The routing equals
``select_experts(logits, ...)`` on the returned logits (same code, same input), and bf16
logits are the fp32 sums rounded once, like a GEMM output. Nothing reads the device on
the host, so calls can be captured in CUDA graphs; like the skinny GEMM's split-K, two
calls must not run concurrently on two streams of one device (shared counters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from lynx.kernels import skinny_gemm as sg
from lynx.routing.tally import LayerTally

if TYPE_CHECKING:  # imports Triton
    from lynx.kernels.routing_plans import RoutingKernelConfig



def fused_router_reason(
    x: torch.Tensor, gate_weight: torch.Tensor, top_k: int, policy: str, params: dict,
    routing_config: RoutingKernelConfig | None = None,
) -> str | None:
    """Why :func:`router_select_triton` cannot serve this call, or None if it can.

    ``x`` ``[T, H]``, ``gate_weight`` ``[N, H]``, ``params`` resolved (as for
    ``select_experts_triton``). Only Python values are read; on first use it allocates the
    skinny GEMM's counter workspace (:func:`lynx.kernels.skinny_gemm.split_k_counters`),
    which cannot happen during CUDA-graph capture (a reason then).
    """
    if x.dim() != 2:
        return f"x must be [T, H], got shape {tuple(x.shape)}"
    reason = sg.supports(x, gate_weight)  # device, dtypes, unit strides, T <= 64
    if reason is not None:
        return reason
    t, n = x.shape[0], gate_weight.shape[0]
    if t == 0:
        return "no rows"
    from lynx.kernels.routing_dispatch import triton_unsupported_reason

    # [T, N] view of x: the shape, dtype and device of the logits (all that is inspected)
    reason = triton_unsupported_reason(x[:1, :1].expand(t, n), top_k, policy, params)
    if reason is not None:
        return reason
    from lynx.kernels.routing_plans import DEFAULT_CONFIG, plan_is_fused  # imports Triton

    if policy != "topk" and not plan_is_fused(t, n, policy, routing_config or DEFAULT_CONFIG):
        return f"{policy} at T={t}, N={n} routes with the split (two-launch) plan"
    if sg.split_k_counters(x.device) is None:
        return "counter workspace missing during graph capture (call once eagerly first)"
    return None


def launch_meta(
    t: int, n: int, h: int, dtype: torch.dtype, top_k: int, policy: str, scoring: str, renormalize: bool,
    has_valid: bool, tally_mode: int, params: dict, gemm_config: sg.SkinnyGemmConfig,
    routing_config: RoutingKernelConfig,
) -> tuple[tuple[int, int], int, dict]:
    """``(grid, k_per_split, meta)`` of a launch: meta = the kernel's constexprs and launch options.

    The routing constexprs are those ``select_experts_triton`` gives ``route_kernel`` in its
    single-program plans (``BT >= T``; :func:`lynx.kernels.routing_triton.route_constexprs`);
    the GEMM's come from the skinny GEMM's config, with at least the warps the routing
    program needs. Also used by the sm_90 compile test.
    """
    from lynx.kernels import routing_kernels as rk
    from lynx.kernels.routing_tiles import next_pow2
    from lynx.kernels.routing_plans import _fused_warps
    from lynx.kernels.routing_triton import route_constexprs

    common, route = route_constexprs(t, n, dtype, top_k, policy, scoring, renormalize, has_valid, tally_mode, params,
                                     routing_config)
    bt, bn = next_pow2(t), common["BN"]
    n_tiles, split_k, k_per_split = sg._launch_params(t, n, h, gemm_config)
    block_m = sg.block_m_for(t)
    warps = max(gemm_config.num_warps, routing_config.fused_warps or _fused_warps(bt, bn, routing_config))
    meta = dict(  # N (the GEMM's and the routing's) is in common
        EVEN_K=h % gemm_config.block_k == 0, BLOCK_M=block_m, BLOCK_N=gemm_config.block_n,
        BLOCK_K=gemm_config.block_k, SPLIT=split_k > 1,
        REDUCE_UNROLL=sg.reduce_unroll(block_m, gemm_config.with_(num_warps=warps)),
        DOT_PRECISION="ieee" if dtype == torch.float32 else "tf32",  # fp32 models: no silent TF32
        ACTIVE={"topk": rk.NONE, "lynx": rk.LYNX_HERE, "oea": rk.OEA_HERE}[policy],
        **common, **route, BT=bt, CHUNK=max(1, 4096 // bn),
        num_warps=warps, num_stages=gemm_config.num_stages,
    )
    return (n_tiles, split_k), k_per_split, meta


def router_select_triton(
    x: torch.Tensor,
    gate_weight: torch.Tensor,
    top_k: int,
    policy: str,
    scoring: str,
    renormalize: bool,
    valid: torch.Tensor | None,
    params: dict,
    tally: LayerTally | None = None,
    *,
    gemm_config: sg.SkinnyGemmConfig | None = None,
    routing_config: RoutingKernelConfig | None = None,
    reason_checked: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(logits [T, N] x.dtype, weights [T, k] float32, ids [T, k] int64)`` in one launch.

    Arguments as :func:`lynx.kernels.routing_triton.select_experts_triton` after validation,
    with ``x [T, H]`` and the bias-free ``gate_weight [N, H]`` in place of the logits.
    ``gemm_config``: the GEMM's tiles (default :func:`lynx.kernels.skinny_gemm.default_config`);
    ``routing_config``: a ``RoutingKernelConfig`` (the fused plan's rows and warps).
    Raises ValueError where :func:`fused_router_reason` gives a reason (not asked again with
    ``reason_checked``: the caller just got None for the same arguments; ~10 us of host time).
    """
    from lynx.kernels.router_route_kernel import router_route_kernel
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.routing_triton import _alpha_bits, tally_launch_args

    rcfg = routing_config or DEFAULT_CONFIG
    reason = None if reason_checked else fused_router_reason(x, gate_weight, top_k, policy, params, rcfg)
    if reason is not None:
        raise ValueError(f"router_select_triton: {reason}")
    (t, h), n, dev = x.shape, gate_weight.shape[0], x.device
    logits = torch.empty(t, n, dtype=x.dtype, device=dev)  # [T, N]
    weights = torch.empty(t, top_k, dtype=torch.float32, device=dev)  # [T, k]
    ids = torch.empty(t, top_k, dtype=torch.int64, device=dev)  # [T, k]
    valid_arg = valid.contiguous().view(torch.uint8) if valid is not None else logits  # unread without a mask
    tally_mode, hits, kept = tally_launch_args(tally, t, n, weights, ids)

    gcfg = gemm_config or sg.default_config(t, n, h, x.dtype, sg.num_sms(dev))
    grid, k_per_split, meta = launch_meta(t, n, h, x.dtype, top_k, policy, scoring, renormalize, valid is not None,
                                          tally_mode, params, gcfg, rcfg)
    counters = sg.split_k_counters(dev)  # [n_tiles] per-tile counters, then the global one
    if counters is None:
        raise ValueError("router_select_triton: counter workspace missing during graph capture")
    # fp32 partials [split_k, T, N]: only written when split_k > 1 (a plain allocation, no launch)
    partials = torch.empty(grid[1], t, n, dtype=torch.float32, device=dev) if meta["SPLIT"] else logits
    alpha_bits = _alpha_bits(params["alpha"]) if policy == "lynx" else 0
    router_route_kernel[grid](
        x, gate_weight, logits, partials, counters, valid_arg, weights, ids, hits, kept,
        t, h, grid[1], k_per_split, x.stride(0), gate_weight.stride(0), alpha_bits, **meta,
    )
    return logits, weights, ids
