"""The two parts of ``lynx bench routing``: ``exact`` (Triton vs torch) and ``time`` (see :mod:`lynx.bench.routing`)."""

from __future__ import annotations

import argparse
import functools
import os
import random
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from lynx.bench.gpu_check import RunContext

LAYERS = 48  # MoE layers of Qwen3-30B-A3B: routing calls per decode step


def make_inputs(torch: ModuleType, seed: int, t: int, n: int, kind: str, pad: str, device: Any) -> tuple[Any, Any]:
    """``(logits [t, n], valid [t] or None)``: ``kind`` skewed/ties/gauss, ``pad`` none/tail/random."""
    g = torch.Generator().manual_seed(seed)
    if kind == "ties":
        z = torch.randint(-4, 3, (t, n), generator=g).float() / 2
    elif kind == "skewed":
        pop, topics = torch.randn(n, generator=g) * 0.5, torch.randn(4, n, generator=g) * 1.5
        z = pop + topics[torch.randint(0, 4, (t,), generator=g)] + torch.randn(t, n, generator=g)
    else:
        z = torch.randn(t, n, generator=g) * 2.5
    z = z.to(torch.bfloat16) if kind != "ties" and seed % 2 == 0 else z
    valid = None
    if pad == "tail" and t > 1:  # a CUDA-graph bucket: real rows first
        valid = torch.arange(t) < max(1, t - 1 - seed % 3)
    elif pad == "random":
        valid = torch.rand(t, generator=g) < 0.7
    return z.to(device), None if valid is None else valid.to(device)


def compare(torch: ModuleType, got: Any, want: Any) -> tuple[bool, float]:
    """``(ids identical and weights within 2e-6 relative, max weight rel err)``."""
    (gw, gi), (ww, wi) = got, want
    err = float(((gw.double() - ww.double()).abs() / ww.double().abs().clamp_min(1e-30)).max()) if ww.numel() else 0.0
    ok = torch.equal(gi, wi) and bool(((gw - ww).abs() <= 2e-6 * ww.abs()).all())
    return ok, err


def part_exact(ctx: RunContext, args: argparse.Namespace, torch: ModuleType, device: Any) -> None:
    """Triton vs the torch path on random cases until ``ctx``'s deadline, then dispatch and graph replay."""
    from lynx.kernels.routing_plans import RoutingKernelConfig
    from lynx.kernels.routing_triton import select_experts_triton
    from lynx.routing import select_experts
    from lynx.routing.config import resolve_params

    def torch_ref(z: Any, k: int, policy: str, scoring: str, renorm: bool, valid: Any, params: dict) -> Any:
        os.environ["LYNX_ROUTING_BACKEND"] = "torch"
        try:
            return select_experts(z, k, policy, scoring, renorm, valid, **params)
        finally:
            os.environ.pop("LYNX_ROUTING_BACKEND")

    rng = random.Random(args.seed)
    rows = (1, 2, 5, 16) if args.dry_run else (1, 2, 3, 7, 16, 33, 64, 100, 128, 256)
    shapes = [(64, 6), (128, 8), (160, 6), (128, 2)] if not args.dry_run else [(16, 4), (24, 2)]
    plans = {"default": None,
             "fused": RoutingKernelConfig(fused_max_rows=256, oea_fused_max_rows=256, fused_max_elems=1 << 16),
             "split": RoutingKernelConfig(fused_max_rows=0, oea_fused_max_rows=0),
             "fused-w16": RoutingKernelConfig(fused_max_rows=64, oea_fused_max_rows=64, fused_warps=16),
             "coop": RoutingKernelConfig(coop_min_rows=1), "coop-bt4": RoutingKernelConfig(coop_min_rows=1, coop_block_rows=4),
             "no-coop": RoutingKernelConfig(coop_min_rows=0),
             "coop-local": RoutingKernelConfig(coop_min_rows=1, coop_local_sums_max_rows=1024)}
    # Each new shape costs a Triton compile (~0.5-1 s): shuffled, so that a budget stop
    # still leaves every batch size, shape and policy covered by some case.
    cases = [(t, s, p) for t in rows for s in shapes for p in ("topk", "lynx", "oea")]
    rng.shuffle(cases)
    for i, (t, (n, k), policy) in enumerate(cases):
        if ctx.left() < 0:  # the dispatch and graph-replay checks below still run
            ctx.record(kind="note", what=f"exact stopped after {i} of {len(cases)} cases: budget")
            break
        params = {"lynx": {"alpha": rng.choice([1.1, 3.0]), "beta": rng.choice([1, 2, 4])},
                  "oea": {"k0": rng.randint(1, k)}, "topk": {}}[policy]
        scoring, renorm = rng.choice(["softmax", "sigmoid"]), rng.random() < 0.6
        kind, pad = rng.choice(["skewed", "ties", "gauss"]), rng.choice(["none", "tail", "random"])
        z, valid = make_inputs(torch, 1000 * i + t, t, n, kind, pad, device)
        p = resolve_params(policy, params, n, k)
        want = torch_ref(z, k, policy, scoring, renorm, valid, params)
        plan_names = ["default"] if policy == "topk" or t > 128 else list(plans)
        for name in plan_names if i % 3 == 0 else ["default"]:
            got = ctx.guard(f"exact {policy} T={t} N={n} k={k} {name}", select_experts_triton,
                        z, k, policy, scoring, renorm, valid, p, plans[name])
            if got is not None:
                ok, err = compare(torch, got, want)
                ctx.record(kind="exact", policy=policy, T=t, N=n, k=k, plan=name, scoring=scoring, renorm=renorm,
                       logits=kind, dtype=str(z.dtype).split(".")[-1], pad=pad, ok=ok, w_rel_err=err, **params)
    # select_experts' own dispatch on the device, determinism, and graph replay on new logits
    # (T=64 and 16: the cooperative plan, whose grid barriers must also hold inside a graph)
    checks = [(9, "lynx"), (9, "oea"), (5, "lynx")] if args.dry_run else [(64, "lynx"), (64, "oea"), (16, "lynx")]
    for t, policy in checks:
        n, k = (16, 4) if args.dry_run else (128, 8)
        z, valid = make_inputs(torch, 7, t, n, "skewed", "tail", device)
        want = torch_ref(z, k, policy, "softmax", True, valid, {})
        got = select_experts(z, k, policy, "softmax", True, valid)
        ok, err = compare(torch, got, want)
        again = select_experts(z, k, policy, "softmax", True, valid)
        same = torch.equal(got[0], again[0]) and torch.equal(got[1], again[1])
        ctx.record(kind="dispatch", policy=policy, T=t, ok=ok and same, deterministic=same, w_rel_err=err)
        if device.type == "cuda":
            ctx.guard(f"graph replay {policy}", graph_replay, ctx, torch, z, valid, k, policy, torch_ref)


def graph_replay(ctx: RunContext, torch: ModuleType, z: Any, valid: Any, k: int, policy: str,
                 torch_ref: Callable[..., Any]) -> None:
    """Capture ``select_experts`` once, write new logits in place, replay: must match the torch path."""
    from lynx.routing import select_experts

    static = z.clone()
    select_experts(static, k, policy, "softmax", True, valid)  # compile outside capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = select_experts(static, k, policy, "softmax", True, valid)
    oks = []
    for seed in range(3):
        g = torch.Generator(device=z.device).manual_seed(seed)
        static.copy_(torch.randn(z.shape, device=z.device, generator=g) * 2)
        graph.replay()
        oks.append(compare(torch, out, torch_ref(static, k, policy, "softmax", True, valid, {}))[0])
    ctx.record(kind="graph_replay", policy=policy, T=z.shape[0], ok=all(oks))


def time_per_call(torch: ModuleType, fn: Callable[[], Any], device: Any, calls: int, replays: int) -> float:
    """Microseconds per call: ``calls`` calls captured in one CUDA graph (wall clock on CPU)."""
    fn()
    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(replays):
            fn()
        return (time.perf_counter() - t0) / replays * 1e6
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(calls):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / (replays * calls)


def part_time(ctx: RunContext, args: argparse.Namespace, torch: ModuleType, device: Any) -> None:
    """Microseconds per routing call (torch, the default Triton plan, its variants) until the deadline."""
    from lynx.kernels.routing_plans import DEFAULT_CONFIG
    from lynx.kernels.routing_triton import select_experts_triton
    from lynx.routing import select_experts
    from lynx.routing.config import resolve_params

    n, k = (16, 4) if args.dry_run else (128, 8)
    rows = (1, 4) if args.dry_run else (1, 4, 8, 16, 32, 64, 128)
    calls, replays = (2, 2) if args.dry_run else (LAYERS, 20)
    fused = dict(fused_max_rows=256, oea_fused_max_rows=256, fused_max_elems=1 << 16)
    split4 = dict(fused_max_rows=0, oea_fused_max_rows=0, block_rows=4)
    # most informative first (each new shape costs a compile): the plan crossovers (cooperative,
    # single program, split), then the cooperative plan's rows and warps per program. The single
    # program's warps, pack64 and the active kernel's warps were measured in earlier runs
    # (docs/performance.md sections 5 and 8).
    no_coop = dict(coop_min_rows=0)
    variants = {"default": {}, "coop": dict(coop_min_rows=2), "coop-local": dict(coop_min_rows=2, coop_local_sums_max_rows=1024),
                "fused": dict(fused, **no_coop),
                "split1": dict(split4, block_rows=1, **no_coop), "coop-w2": dict(coop_min_rows=2, coop_warps=2),
                "coop-bt2": dict(coop_min_rows=2, coop_block_rows=2), "coop-pack64": dict(coop_min_rows=2, lynx_pack64=True),
                "split4": dict(split4, **no_coop)}
    inputs = {}
    for t in rows:
        z, valid = make_inputs(torch, 3, t, n, "skewed", "tail", device)
        inputs[t] = (z.to(torch.bfloat16), valid)
    # torch and the default plan everywhere first, then the variants (budget permitting)
    jobs = [(t, policy, name) for name in variants for t in rows for policy in ("topk", "lynx", "oea")
            if not (policy == "topk" and name not in ("default", "split1", "split4"))
            and not (name.startswith("fused") and t > 64) and not (t == 1 and "-" in name)
            and not (name.startswith("coop") and (t == 1 or (policy == "oea" and name in ("coop-pack64", "coop-local"))))]
    jobs = [(t, policy, "torch") for t in rows for policy in ("topk", "lynx", "oea")] + jobs
    for t, policy, name in jobs:
        if ctx.left() < 0:
            return ctx.record(kind="note", what=f"time stopped at T={t} {policy} {name}: budget")
        z, valid = inputs[t]
        p = resolve_params(policy, {}, n, k)
        if name == "torch":
            os.environ["LYNX_ROUTING_BACKEND"] = "torch"
            fn = functools.partial(select_experts, z, k, policy, "softmax", True, valid)
        else:
            cfg = DEFAULT_CONFIG.with_(**variants[name])
            fn = functools.partial(select_experts_triton, z, k, policy, "softmax", True, valid, p, cfg)
        us = ctx.guard(f"time {name} {policy} T={t}", time_per_call, torch, fn, device, calls, replays)
        os.environ.pop("LYNX_ROUTING_BACKEND", None)
        impl = {"torch": "torch", "default": "triton"}.get(name, f"triton-{name}")
        ctx.record(kind="time", policy=policy, T=t, impl=impl, us=us,
               step_share_pct=None if us is None else us * LAYERS / (args.step_ms * 10))
