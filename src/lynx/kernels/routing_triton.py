"""Host side of the Triton routing backend: launch plan, buffers and launches.

``select_experts_triton`` returns exactly what :func:`lynx.routing.select_experts` returns
(ids identical, weights within a few float32 ulps) for the shapes that
:func:`lynx.kernels.routing_dispatch.triton_unsupported_reason` accepts. Every launch
parameter depends only on Python values (``T``, ``N``, ``k``, the policy's parameters),
nothing reads the device, so the call can be captured in a CUDA graph.

The plan of a call (single program, cooperative, split, top-k) and the launch configuration
come from :mod:`lynx.kernels.routing_plans`.
"""

from __future__ import annotations

import struct

import torch
import triton

from lynx.kernels import routing_kernels as rk
from lynx.kernels.pdl import pdl_launch
from lynx.kernels.routing_coop import coop_route
from lynx.kernels.routing_plans import (
    DEFAULT_CONFIG,
    RoutingKernelConfig,
    _fused_warps,
    _warps,
    cooperative_grid,
    plan_is_fused,
)
from lynx.kernels.routing_tiles import next_pow2
from lynx.routing.tally import LayerTally


def int32_key_fits(num_rows: int, beta: int) -> bool:
    """Whether LYNX's ``m'`` (and votes) fit in int32 for any batch of ``num_rows`` rows."""
    return (beta + 1) * num_rows ** (beta + 1) < 2**31


def _alpha_bits(alpha: float) -> int:
    """float64 bits of ``alpha`` as a signed int64: Triton would round a float arg to fp32."""
    return struct.unpack("<q", struct.pack("<d", float(alpha)))[0]


def tally_launch_args(
    tally: LayerTally | None, t: int, n: int, weights: torch.Tensor, ids: torch.Tensor,
) -> tuple[int, torch.Tensor, torch.Tensor]:
    """``(TALLY, hits, kept)``: the routing kernels' tally mode and buffers for ``tally``.

    ``t`` rows, ``n`` experts; ``weights`` and ``ids`` (the call's outputs) stand in for the
    buffers a mode does not read: ``hits`` without a tally, ``kept`` unless TALLY_LOGITS.
    Raises ValueError for buffers the kernels cannot write: they write through raw pointers,
    with no bounds or stride checks there.
    """
    if tally is None:
        return rk.TALLY_NONE, ids, weights
    if tuple(tally.hits.shape) != (2, n) or not tally.hits.is_contiguous() or tally.hits.dtype != torch.int32:
        raise ValueError(f"tally.hits must be a contiguous int32 [2, {n}] tensor, got {tuple(tally.hits.shape)}")
    kept = tally.logits
    if kept is None:
        return rk.TALLY_MARKS, tally.hits, weights
    if kept.shape[0] < t or kept.shape[1] != n or not kept.is_contiguous() or kept.dtype != torch.float32:
        raise ValueError(f"tally.logits must be a contiguous float32 [>= {t}, {n}] tensor, got {tuple(kept.shape)}")
    return rk.TALLY_LOGITS, tally.hits, kept


def route_constexprs(
    t: int, n: int, dtype: torch.dtype, top_k: int, policy: str, scoring: str, renormalize: bool,
    has_valid: bool, tally_mode: int, params: dict, cfg: RoutingKernelConfig,
) -> tuple[dict, dict]:
    """``(common, route)``: the routing kernels' constexprs that follow from the call, not the plan.

    ``common`` (N, HAS_VALID, KEY16, WIDE, PACK64, K, KP, BETA, K0, K0P, BN) is what
    ``active_kernel`` and ``route_kernel`` both take, ``route`` (SOFTMAX, RENORM, RESORT,
    TALLY) what only ``route_kernel`` (``route_rows``) takes; the plan adds ACTIVE/POLICY, BT
    and CHUNK. ``t`` rows of ``n`` experts in ``dtype``, ``params`` resolved, ``tally_mode``
    from :func:`tally_launch_args`. Also used by the fused router (:mod:`lynx.kernels.router_route`).
    """
    beta, k0 = int(params.get("beta", 1)), int(params.get("k0", 1))
    key16 = dtype in (torch.bfloat16, torch.float16)
    common = dict(
        N=n, HAS_VALID=has_valid, KEY16=key16, WIDE=policy == "lynx" and not int32_key_fits(t, beta),
        # the packed key (m' + beta B^(beta+1)) << 24 | key must stay below 2^63
        PACK64=cfg.lynx_pack64 and key16 and policy == "lynx" and (beta + 1) * t ** (beta + 1) < 2**39,
        K=top_k, KP=next_pow2(top_k), BETA=beta, K0=k0, K0P=next_pow2(k0), BN=next_pow2(n),
    )
    route = dict(SOFTMAX=scoring == "softmax", RENORM=bool(renormalize), RESORT=policy == "oea", TALLY=tally_mode)
    return common, route


def select_experts_triton(
    logits: torch.Tensor,
    top_k: int,
    policy: str,
    scoring: str,
    renormalize: bool,
    valid: torch.Tensor | None,
    params: dict,
    config: RoutingKernelConfig | None = None,
    tally: LayerTally | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights [T, k] float32, ids [T, k] int64)`` of ``policy`` via Triton kernels.

    Arguments as :func:`lynx.routing.select_experts` after validation: ``params`` resolved
    (``alpha``/``beta`` for LYNX, ``k0`` for OEA); ``valid`` ``[T]`` bool on the logits'
    device or ``None`` (all rows valid, no mask read). ``T >= 1``. ``tally`` (contiguous
    buffers, see :mod:`lynx.routing.tally`) is filled inside the last launch: the policy's
    experts, and either plain top-k's or (if it keeps them) the logits as float32.
    """
    cfg = config or DEFAULT_CONFIG
    t, n = logits.shape
    dev = logits.device
    alpha_bits = _alpha_bits(params["alpha"]) if policy == "lynx" else 0
    valid_arg = valid.contiguous().view(torch.uint8) if valid is not None else logits  # unread without a mask

    weights = torch.empty(t, top_k, dtype=torch.float32, device=dev)
    ids = torch.empty(t, top_k, dtype=torch.int64, device=dev)
    tally_mode, hits, kept = tally_launch_args(tally, t, n, weights, ids)
    common, route = route_constexprs(t, n, logits.dtype, top_k, policy, scoring, renormalize, valid is not None,
                                     tally_mode, params, cfg)
    bn = common["BN"]
    # active_kernel sweeps the whole batch in chunks of rows (one chunk up to T=64 at N=128);
    # route_kernel only scans the mask / partial sets: a fixed chunk, so T needs no compile.
    chunk = max(1, min(next_pow2(t), cfg.chunk_elems // bn))
    scan = max(1, 4096 // bn)  # route_kernel scans 32 partial sets / mask rows per step at N=128
    strides = (logits.stride(0), logits.stride(1))

    grid = cooperative_grid(t, n, policy, cfg, dev)
    if grid is not None and coop_route(  # False: no workspace yet (graph capture), another plan below
            logits, valid_arg, weights, ids, hits, kept, alpha_bits, rk.LYNX if policy == "lynx" else rk.OEA,
            common, route, grid, cfg.coop_warps or _warps(grid[0] * bn, cfg), chunk,
            local_sums=t <= cfg.coop_local_sums_max_rows):
        return weights, ids
    if plan_is_fused(t, n, policy, cfg):
        bt = next_pow2(t)
        mode = rk.LYNX_HERE if policy == "lynx" else rk.OEA_HERE
        rk.route_kernel[(1,)](
            logits, valid_arg, weights, weights, ids, hits, kept, t, *strides, 0, alpha_bits,
            ACTIVE=mode, BT=bt, CHUNK=scan, **route, **common, num_warps=cfg.fused_warps or _fused_warps(bt, bn, cfg),
            **pdl_launch(logits.device, "routing"),
        )
        return weights, ids

    bt = min(next_pow2(t), cfg.block_rows if t <= 128 else cfg.block_rows_large)
    blocks = triton.cdiv(t, bt)
    warps = _warps(bt * bn, cfg)
    if policy == "topk":
        mode, parts = rk.NONE, weights  # parts unused
    else:
        parts = torch.empty(blocks, bn, dtype=torch.int8, device=dev)  # every row written
        rk.active_kernel[(blocks,)](
            logits, valid_arg, parts, t, *strides, alpha_bits,
            POLICY=rk.LYNX if policy == "lynx" else rk.OEA, BT=bt, CHUNK=chunk, **common,
            num_warps=(cfg.active_warps or max(warps, _warps(chunk * bn, cfg))) if policy == "lynx" else warps,
            **pdl_launch(logits.device, "routing"),
        )
        mode = rk.FROM_PARTS
    rk.route_kernel[(blocks,)](
        logits, valid_arg, parts, weights, ids, hits, kept, t, *strides, blocks, alpha_bits,
        ACTIVE=mode, BT=bt, CHUNK=scan, **route, **common, num_warps=warps, **pdl_launch(logits.device, "routing"),
    )
    return weights, ids
