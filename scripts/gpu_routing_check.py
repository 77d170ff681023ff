"""GPU check of the Triton routing kernels: exactness vs the PyTorch path, CUDA-graph timing.

On the GPU machine, from the repo root (~60-90 s on one H200, mostly Triton compiles):
    python scripts/gpu_routing_check.py [--step-ms 9] [--budget 85]   # $OUT/routing.json if OUT is set
On a CPU box, to catch bugs first (Triton interpreter, tiny shapes, wall-clock timing):
    python scripts/gpu_routing_check.py --dry-run

1. exact: fresh random logits (bf16 and fp32, skewed / tied / gaussian), padding rows, at
   T in 1..256, N in 64/128/160, k in 2/6/8, every policy, both scorings and
   renormalisations: ids must be identical, weights within 2e-6 relative; plus both launch
   plans at the same shape, select_experts' own dispatch, determinism and CUDA-graph replay
   on new logits.
2. time: Qwen3-30B-A3B routing (N=128, k=8, bf16 logits, softmax, renormalised, one padding
   row) at T = 1, 16, 32, 64, 128: microseconds per call, 48 calls per captured CUDA graph
   (one decode step's MoE layers), torch vs the default Triton plan and its variants (fused
   vs split plans, rows per program, LYNX's int64 packed picks, warp counts), the share of a
   decode step of ``--step-ms`` with 48 MoE layers, and the fastest variant per row.
Failures are printed and recorded, and the run goes on. The summary table comes last.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = 48  # MoE layers of Qwen3-30B-A3B: routing calls per decode step
RECORDS: list[dict] = []


def record(**rec: object) -> None:
    RECORDS.append(rec)
    print("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()), flush=True)


def guard(what: str, fn, *args, **kwargs):
    """Run ``fn``; on error print and record it and return None (one failure hides nothing)."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        print(f"!! {what}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}", flush=True)
        record(kind="error", what=what, error=f"{type(exc).__name__}: {exc}"[:400])
        return None


def import_lynx(interpret: bool) -> None:
    """``lynx`` as a bare namespace (skips the engine); the interpreter set up first on CPU."""
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are defined
    pkg = types.ModuleType("lynx")
    pkg.__path__ = [str(ROOT / "src" / "lynx")]
    sys.modules["lynx"] = pkg
    if interpret:
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()


def make_inputs(torch, seed: int, t: int, n: int, kind: str, pad: str, device):
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


def compare(torch, got, want) -> tuple[bool, float]:
    (gw, gi), (ww, wi) = got, want
    err = float(((gw.double() - ww.double()).abs() / ww.double().abs().clamp_min(1e-30)).max()) if ww.numel() else 0.0
    ok = torch.equal(gi, wi) and bool(((gw - ww).abs() <= 2e-6 * ww.abs()).all())
    return ok, err


def part_exact(args, torch, device, deadline: float) -> None:
    from lynx.kernels.routing_triton import RoutingKernelConfig, select_experts_triton
    from lynx.routing import select_experts
    from lynx.routing.config import resolve_params

    def torch_ref(z, k, policy, scoring, renorm, valid, params):
        os.environ["LYNX_ROUTING_BACKEND"] = "torch"
        try:
            return select_experts(z, k, policy, scoring, renorm, valid, **params)
        finally:
            os.environ.pop("LYNX_ROUTING_BACKEND")

    rng = random.Random(args.seed)
    rows = (1, 2, 5, 16) if args.dry_run else (1, 2, 3, 7, 16, 33, 64, 100, 128, 256)
    shapes = [(64, 6), (128, 8), (160, 6), (128, 2)] if not args.dry_run else [(16, 4), (24, 2)]
    plans = {"default": None, "fused": RoutingKernelConfig(fused_max_rows=256, fused_max_elems=1 << 16),
             "split": RoutingKernelConfig(fused_max_rows=0)}
    # Each new shape costs a Triton compile (~0.5-1 s): shuffled, so that a budget stop
    # still leaves every batch size, shape and policy covered by some case.
    cases = [(t, s, p) for t in rows for s in shapes for p in ("topk", "lynx", "oea")]
    rng.shuffle(cases)
    for i, (t, (n, k), policy) in enumerate(cases):
        if time.time() > deadline:
            return record(kind="note", what=f"exact stopped after {i} of {len(cases)} cases: budget")
        params = {"lynx": {"alpha": rng.choice([1.1, 3.0]), "beta": rng.choice([1, 2, 4])},
                  "oea": {"k0": rng.randint(1, k)}, "topk": {}}[policy]
        scoring, renorm = rng.choice(["softmax", "sigmoid"]), rng.random() < 0.6
        kind, pad = rng.choice(["skewed", "ties", "gauss"]), rng.choice(["none", "tail", "random"])
        z, valid = make_inputs(torch, 1000 * i + t, t, n, kind, pad, device)
        p = resolve_params(policy, params, n, k)
        want = torch_ref(z, k, policy, scoring, renorm, valid, params)
        plan_names = ["default"] if policy == "topk" or t > 128 else list(plans)
        for name in plan_names if i % 3 == 0 else ["default"]:
            got = guard(f"exact {policy} T={t} N={n} k={k} {name}", select_experts_triton,
                        z, k, policy, scoring, renorm, valid, p, plans[name])
            if got is not None:
                ok, err = compare(torch, got, want)
                record(kind="exact", policy=policy, T=t, N=n, k=k, plan=name, scoring=scoring, renorm=renorm,
                       logits=kind, dtype=str(z.dtype).split(".")[-1], pad=pad, ok=ok, w_rel_err=err, **params)
    # select_experts' own dispatch on the device, determinism, and graph replay on new logits
    t, n, k = (5, 16, 4) if args.dry_run else (64, 128, 8)
    z, valid = make_inputs(torch, 7, t, n, "skewed", "tail", device)
    for policy in ("lynx", "oea"):
        want = torch_ref(z, k, policy, "softmax", True, valid, {})
        got = select_experts(z, k, policy, "softmax", True, valid)
        ok, err = compare(torch, got, want)
        again = select_experts(z, k, policy, "softmax", True, valid)
        same = torch.equal(got[0], again[0]) and torch.equal(got[1], again[1])
        record(kind="dispatch", policy=policy, T=t, ok=ok and same, deterministic=same, w_rel_err=err)
        if device.type == "cuda":
            guard(f"graph replay {policy}", graph_replay, torch, z, valid, k, policy, torch_ref)


def graph_replay(torch, z, valid, k: int, policy: str, torch_ref) -> None:
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
    record(kind="graph_replay", policy=policy, T=z.shape[0], ok=all(oks))


def time_per_call(torch, fn, device, calls: int, replays: int) -> float:
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


def part_time(args, torch, device, deadline: float) -> None:
    from lynx.kernels.routing_triton import DEFAULT_CONFIG, select_experts_triton
    from lynx.routing import select_experts
    from lynx.routing.config import resolve_params

    n, k = (16, 4) if args.dry_run else (128, 8)
    rows = (1, 4) if args.dry_run else (1, 16, 32, 64, 128)
    calls, replays = (2, 2) if args.dry_run else (LAYERS, 20)
    fused, split4 = dict(fused_max_rows=256, fused_max_elems=1 << 16), dict(fused_max_rows=0, block_rows=4)
    # most informative first (each new shape costs a compile): the plan crossover, then knobs
    variants = {"default": {}, "fused": fused, "split4": split4, "split1": dict(split4, block_rows=1),
                "split4-p64": dict(split4, lynx_pack64=True), "fused-p64": dict(fused, lynx_pack64=True),
                "split4-aw4": dict(split4, active_warps=4), "fused-w4": dict(fused, fused_warps=4)}
    inputs = {}
    for t in rows:
        z, valid = make_inputs(torch, 3, t, n, "skewed", "tail", device)
        inputs[t] = (z.to(torch.bfloat16), valid)
    # torch and the default plan everywhere first, then the variants (budget permitting)
    jobs = [(t, policy, name) for name in variants for t in rows for policy in ("topk", "lynx", "oea")
            if not (policy == "topk" and name.startswith("fused"))
            and not (policy != "lynx" and ("aw4" in name or "p64" in name))
            and not (name.startswith("fused") and t > 64) and not (t == 1 and "w4" in name)
            and not (t == 32 and name not in ("default", "fused", "split4"))]
    jobs = [(t, policy, "torch") for t in rows for policy in ("topk", "lynx", "oea")] + jobs
    for t, policy, name in jobs:
        if time.time() > deadline:
            return record(kind="note", what=f"time stopped at T={t} {policy} {name}: budget")
        z, valid = inputs[t]
        p = resolve_params(policy, {}, n, k)
        if name == "torch":
            os.environ["LYNX_ROUTING_BACKEND"] = "torch"
            fn = functools.partial(select_experts, z, k, policy, "softmax", True, valid)
        else:
            cfg = DEFAULT_CONFIG.with_(**variants[name])
            fn = functools.partial(select_experts_triton, z, k, policy, "softmax", True, valid, p, cfg)
        us = guard(f"time {name} {policy} T={t}", time_per_call, torch, fn, device, calls, replays)
        os.environ.pop("LYNX_ROUTING_BACKEND", None)
        impl = {"torch": "torch", "default": "triton"}.get(name, f"triton-{name}")
        record(kind="time", policy=policy, T=t, impl=impl, us=us,
               step_share_pct=None if us is None else us * LAYERS / (args.step_ms * 10))


def summary_table(step_ms: float) -> str:
    ex = [r for r in RECORDS if r["kind"] in ("exact", "dispatch", "graph_replay")]
    bad = [r for r in ex if not r["ok"]]
    errs = [r["w_rel_err"] for r in ex if "w_rel_err" in r]
    lines = [f"exactness: {len(ex) - len(bad)}/{len(ex)} ok, max weight rel err {max(errs, default=0):.2e}, "
             f"errors {sum(r['kind'] == 'error' for r in RECORDS)}"]
    lines += [f"  FAIL {r}" for r in bad[:10]]
    times = {(r["policy"], r["T"], r["impl"]): r["us"] for r in RECORDS if r["kind"] == "time"}
    impls = sorted({i for _, _, i in times}, key=lambda s: (s != "torch", s != "triton", s))
    lines.append(f"us per call (CUDA graph of {LAYERS} calls); share = {LAYERS} layers / {step_ms} ms step")
    lines.append(f"{'policy':6} {'T':>4} " + " ".join(f"{i:>14}" for i in impls) + "   triton share  fastest")
    for policy, t in sorted({(p, t) for p, t, _ in times}, key=lambda x: (x[0], x[1])):
        cells = [times.get((policy, t, i)) for i in impls]
        tri = times.get((policy, t, "triton"))
        share = f"{tri * LAYERS / (step_ms * 10):.2f}%" if tri else "-"
        timed = [(c, i) for c, i in zip(cells, impls) if c]
        best = min(timed)[1] if timed else "-"
        lines.append(f"{policy:6} {t:>4} " + " ".join(f"{c:14.2f}" if c else f"{'-':>14}" for c in cells)
                     + f"   {share:>11}  {best}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, Triton interpreter, tiny shapes")
    ap.add_argument("--step-ms", type=float, default=9.0, help="decode step time for the share column")
    ap.add_argument("--budget", type=float, default=85.0, help="seconds for both parts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    start = time.time()
    import_lynx(interpret=args.dry_run)
    import torch

    device = torch.device("cpu" if args.dry_run else "cuda")
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    guard("env", lambda: env.update(triton=__import__("triton").__version__))
    from dataclasses import asdict

    from lynx.kernels.routing_triton import DEFAULT_CONFIG

    env["config"] = asdict(DEFAULT_CONFIG)
    print(f"##### exact ({env})", flush=True)
    guard("exact", part_exact, args, torch, device, start + args.budget * 0.35)
    print("##### time", flush=True)
    guard("time", part_time, args, torch, device, start + args.budget)
    env["wall_s"] = round(time.time() - start, 1)
    table = summary_table(args.step_ms)
    if os.environ.get("OUT"):
        path = Path(os.environ["OUT"]) / "routing.json"
        path.write_text(json.dumps({"env": env, "args": vars(args), "records": RECORDS, "table": table}, indent=1))
        print(f"wrote {path}")
    print(f"\n##### summary (wall {env['wall_s']} s)\n{table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
