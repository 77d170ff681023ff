"""GPU check of the fused router (``lynx.kernels.router_route``: gate GEMM + routing, one launch).

On the GPU machine, from the repo root (one H200, < 60 s, compiles included):
    PYTHONPATH=src python scripts/gpu_router_route_check.py     # + $OUT/router_route.json when OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall clock, no graphs):
    python scripts/gpu_router_route_check.py --dry-run

Shapes: Qwen3-30B-A3B's router (H 2048, N 128, k 8, renormalised) and OLMoE's (H 2048, N 64,
k 8, not renormalised), bf16, softmax; T in 1, 16, 32, 64; policies topk, lynx, oea (model
defaults). LYNX/OEA at T=64 use the split routing plan, which the fused kernel does not
cover (the engine keeps two steps there): timed two-step only.

Phases (records go to the JSON; failures are recorded, not fatal; exit 1 if a check fails):
  check   in worker processes (one per few cases; their launches also fill Triton's on-disk
          cache, so the timing phase does not compile): fresh random x, W, a valid mask with
          padding rows and the engine's tally. Routing vs the two-step Triton path
          (``select_experts_triton``) and the torch reference, both on the kernel's logits:
          ids equal, weights within 2e-6 relative, tallies equal; logits vs fp64 F.linear
          (relative error), vs fp32 F.linear rounded to bf16 (round to nearest even: equal
          but for rare summation-order flips, at most 1 ulp) and vs cuBLAS bf16 (<= 1 ulp);
          split-K counters zero after the call; a CUDA graph of one call replayed on new
          inputs equals eager calls.
  time    per (shape, T, policy): a CUDA graph of C calls, each on its own gate weight
          (``--layers`` = 48 distinct weights per stack, stacks rotated until the weights are
          >= 3 x L2, at least 4), replayed; median us per call (``kernel_bench.time_per_call``)
          of cuBLAS gate alone, cuBLAS gate + ``select_experts_triton`` (two-step), and fused.
The table (us per call, fused / two-step) is printed last.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing as mp
import os
import sys
import time
import types
import warnings
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lynx from this checkout as a bare namespace package: its __init__ would import the engine
sys.modules["lynx"] = types.ModuleType("lynx")
sys.modules["lynx"].__path__ = [str(ROOT / "src" / "lynx")]

SHAPES = {"q30b": (2048, 128, 8, True), "olmoe": (2048, 64, 8, False)}  # H, N, k, renormalize
DRY_SHAPES = {"q30b": (64, 32, 4, True), "olmoe": (48, 16, 4, False)}
POLICIES = ("topk", "lynx", "oea")
WEIGHT_TOL = 2e-6


def rel_err(out, ref) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


# ----------------------------------------------------------------------------- check (worker processes)
def check_case(torch, dev, dry: bool, seed: int, name: str, h: int, n: int, k: int, renorm: bool, t: int,
               policy: str) -> dict:
    import torch.nn.functional as F

    from lynx.kernels import skinny_gemm as sg
    from lynx.kernels.kernel_bench import ulp_order
    from lynx.kernels.router_route import fused_router_reason, router_select_triton
    from lynx.kernels.routing_triton import select_experts_triton
    from lynx.routing import select_experts
    from lynx.routing.config import resolve_params
    from lynx.routing.tally import ExpertTally

    gen = torch.Generator(dev).manual_seed(seed + zlib.crc32(f"{name} {t} {policy}".encode()))
    x = torch.randn(t, h, device=dev, generator=gen).bfloat16()  # [T, H]
    w = (torch.randn(n, h, device=dev, generator=gen) * (3 / h**0.5)).bfloat16()  # [N, H]: logits std ~3
    valid = torch.ones(t, dtype=torch.bool, device=dev)
    valid[t - t // 8:] = False  # padding rows of a graph bucket (none at T < 8)
    p = resolve_params(policy, {}, n, k)
    args = (k, policy, "softmax", renorm, valid, p)

    def tally():
        return ExpertTally(1, n, k, dev, max_tokens=t if policy != "topk" else 0).layer(0)

    reason = fused_router_reason(x, w, k, policy, p)
    if reason is not None:  # still compile the two-step kernels for the timing phase
        select_experts_triton(F.linear(x, w), *args, tally=tally())
        return dict(kind="note", shape=name, T=t, policy=policy, what=f"fused n/a: {reason}")
    fused_tally, two_tally = tally(), tally()
    logits, weights, ids = router_select_triton(x, w, *args, fused_tally)
    counters_zero = not bool(sg._counters[x.device].any())
    two_w, two_ids = select_experts_triton(logits, *args, tally=two_tally)
    os.environ["LYNX_ROUTING_BACKEND"] = "torch"
    try:
        ref_w, ref_ids = select_experts(logits, k, policy, "softmax", renorm, valid, **p)
    finally:
        del os.environ["LYNX_ROUTING_BACKEND"]

    exact = F.linear(x.double(), w.double())
    rounded = F.linear(x.float(), w.float()).bfloat16()  # fp32 sums rounded to nearest even
    cublas = F.linear(x, w)
    ulp_rounded = (ulp_order(logits) - ulp_order(rounded)).abs()
    ulp_cublas = int((ulp_order(logits) - ulp_order(cublas)).abs().max())
    rec = dict(
        kind="check", shape=name, T=t, policy=policy,
        ids_eq_two_step=bool(torch.equal(ids, two_ids)), ids_eq_torch=bool(torch.equal(ids, ref_ids)),
        w_maxdiff_two_step=float((weights - two_w).abs().max()), w_maxdiff_torch=float((weights - ref_w).abs().max()),
        w_close=bool(torch.allclose(weights, two_w, rtol=WEIGHT_TOL, atol=1e-30)
                     and torch.allclose(weights, ref_w, rtol=WEIGHT_TOL, atol=1e-30)),
        tally_eq=bool(torch.equal(fused_tally.hits, two_tally.hits)
                      and (fused_tally.logits is None or torch.equal(fused_tally.logits, two_tally.logits))),
        counters_zero=counters_zero, logits_rel_err=rel_err(logits, exact), cublas_rel_err=rel_err(cublas, exact),
        eq_rounded_frac=float((ulp_rounded == 0).float().mean()), max_ulp_rounded=int(ulp_rounded.max()),
        max_ulp_cublas=ulp_cublas,
    )
    # the interpreter truncates fp32 -> bf16 (the GPU rounds): there only the 1-ulp bounds hold
    logits_ok = rec["logits_rel_err"] < 5e-3 and rec["max_ulp_rounded"] <= 1 and ulp_cublas <= 1
    logits_ok = logits_ok and (dry or rec["eq_rounded_frac"] >= 0.995)
    rec["ok"] = bool(logits_ok and rec["ids_eq_two_step"] and rec["ids_eq_torch"] and rec["w_close"]
                     and rec["tally_eq"] and counters_zero)
    if not dry:
        rec["graph_eq_eager"] = graph_check(torch, x, w, args, tally, router_select_triton, sg)
        rec["ok"] = rec["ok"] and rec["graph_eq_eager"]
    return rec


def graph_check(torch, x, w, args, tally, router_select_triton, sg) -> bool:
    """One fused call captured, replayed twice per new input: equal to eager, counters zero."""
    xs = x.clone()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = router_select_triton(xs, w, *args, tally())
    equal = True
    for _ in range(3):
        xs.copy_(torch.randn_like(x, dtype=torch.float32).bfloat16())
        graph.replay()
        graph.replay()  # a counter left non-zero would break the second
        eager = router_select_triton(xs, w, *args, tally())
        equal &= all(torch.equal(a, b) for a, b in zip(out, eager))
    return bool(equal and not sg._counters[x.device].any())


def check_chunk(payload: tuple[bool, int, list[tuple]]) -> list[dict]:
    """Worker process: check a few cases (and so compile their kernels)."""
    dry, seed, cases = payload
    from lynx.kernels.triton_interpret import use_interpreter

    use_interpreter(dry)
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False  # a clean cuBLAS reference
    dev = torch.device("cpu") if dry else torch.device("cuda", 0)  # indexed: the key of the counter workspace
    recs = []
    for case in cases:
        try:
            recs.append(check_case(torch, dev, dry, seed, *case))
        except Exception as exc:  # keep going: one failing case must not hide the rest
            recs.append(dict(kind="error", what=f"check {case[0]} T={case[5]} {case[6]}",
                             error=f"{type(exc).__name__}: {exc}"[:500]))
    return recs


# ----------------------------------------------------------------------------- time (main process)
def time_shape(torch, dev, args, name: str, h: int, n: int, k: int, renorm: bool, ts: list[int], rows: list[dict],
               deadline: float) -> None:
    import torch.nn.functional as F

    from lynx.kernels.kernel_bench import time_per_call
    from lynx.kernels.router_route import fused_router_reason, router_select_triton
    from lynx.kernels.routing_triton import select_experts_triton
    from lynx.routing.config import resolve_params
    from lynx.routing.tally import ExpertTally

    nbytes = n * h * 2
    stacks = 1 if args.dry_run else max(4, math.ceil(3 * torch.cuda.get_device_properties(dev).L2_cache_size
                                                     / (args.layers * nbytes)))
    gen = torch.Generator(dev).manual_seed(n)
    ws = list((torch.randn(stacks * args.layers, n, h, device=dev, generator=gen) * (3 / h**0.5)).bfloat16().unbind(0))
    reps = dict(reps=3, replays=1, graph=False) if args.dry_run else dict(reps=10, replays=2)

    def timed(calls) -> float:
        return time_per_call(calls, dev, **reps) * 1e6

    for t in ts:
        x = torch.randn(t, h, device=dev, generator=gen).bfloat16()
        valid = torch.ones(t, dtype=torch.bool, device=dev)  # the engine's graphs always pass a mask
        gate_us = timed([lambda w=w, x=x: F.linear(x, w) for w in ws]) if time.time() < deadline else float("nan")
        for policy in POLICIES:
            if time.time() > deadline:
                rows.append(dict(shape=name, T=t, policy=policy, note="not timed: budget"))
                continue
            p = resolve_params(policy, {}, n, k)
            tally = ExpertTally(args.layers, n, k, dev, max_tokens=t if policy != "topk" else 0)  # as the engine
            layer = [tally.layer(i % args.layers) for i in range(len(ws))]
            common = (k, policy, "softmax", renorm, valid, p)
            two = timed([lambda w=w, lt=lt, x=x, c=common: select_experts_triton(F.linear(x, w), *c, tally=lt)
                         for w, lt in zip(ws, layer)])
            reason = fused_router_reason(x, ws[0], k, policy, p)
            fused = float("nan") if reason else timed(
                [lambda w=w, lt=lt, x=x, c=common: router_select_triton(x, w, *c, lt, reason_checked=True)
                 for w, lt in zip(ws, layer)])
            rows.append(dict(shape=name, H=h, N=n, k=k, T=t, policy=policy, calls=len(ws), gate_us=gate_us,
                             two_step_us=two, fused_us=fused, fused_over_two_step=fused / two,
                             note="split plan: two steps" if reason else ""))
            print(f"  time {name} T={t} {policy}: gate {gate_us:.2f} two-step {two:.2f} fused {fused:.2f} us",
                  flush=True)


# ----------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU: tiny shapes, Triton interpreter, no graphs")
    ap.add_argument("--budget-s", type=float, default=None, help="wall-clock budget (default 55; dry run 600)")
    ap.add_argument("--ts", default=None, help="batch rows T (default 1,16,32,64; dry run 1,16,40)")
    ap.add_argument("--layers", type=int, default=None, help="distinct gate weights per stack (default 48; dry 2)")
    ap.add_argument("--workers", type=int, default=None, help="check processes (default min(8, cores/2); dry 2)")
    ap.add_argument("--seed", type=int, default=None, help="input seed (default: a fresh one, recorded)")
    ap.add_argument("--out", default=None, help="JSON path (default $OUT/router_route.json when OUT is set)")
    args = ap.parse_args()
    start = time.time()
    dry = args.dry_run
    args.seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "little")
    args.budget_s = args.budget_s or (600.0 if dry else 55.0)
    args.layers = args.layers or (2 if dry else 48)
    ts = [int(t) for t in (args.ts or ("1,16,40" if dry else "1,16,32,64")).split(",") if t]
    shapes = DRY_SHAPES if dry else SHAPES
    out = Path(args.out) if args.out else None
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / "router_route.json"

    from lynx.kernels.triton_interpret import use_interpreter

    use_interpreter(dry)  # sets TRITON_INTERPRET for the workers too (inherited environment)
    if dry:  # the interpreter warns about masked lanes' 0/0 (never stored)
        os.environ["PYTHONWARNINGS"] = "ignore::RuntimeWarning"
        warnings.filterwarnings("ignore", category=RuntimeWarning)
    import torch

    if not dry and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    dev = torch.device("cpu") if dry else torch.device("cuda", 0)
    cases = [(name, *shapes[name], t, policy) for name in shapes for t in ts for policy in POLICIES]
    workers = args.workers or (2 if dry else max(1, min(8, (os.cpu_count() or 2) // 2)))
    chunks = [cases[i::workers] for i in range(workers) if cases[i::workers]]
    print(f"== check: {len(cases)} cases in {len(chunks)} processes", flush=True)
    records: list[dict] = []
    pool = cf.ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("spawn"))
    futures = [pool.submit(check_chunk, (dry, args.seed, chunk)) for chunk in chunks]
    _, late = cf.wait(futures, timeout=max(5.0, 0.7 * args.budget_s - (time.time() - start)))
    for fut in futures:
        if fut in late:
            records.append(dict(kind="error", what="check process", error="did not finish within the budget"))
            continue
        try:
            records.extend(fut.result())
        except Exception as exc:
            records.append(dict(kind="error", what="check process", error=f"{type(exc).__name__}: {exc}"[:500]))
    if late:  # stop stragglers (a hung compile) instead of waiting for them at exit
        for proc in list(pool._processes.values()):
            proc.terminate()
    pool.shutdown(wait=not late, cancel_futures=True)
    for rec in records:
        print("  " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))

    print(f"== time ({time.time() - start:.0f} s so far)", flush=True)
    rows: list[dict] = []
    for name, (h, n, k, renorm) in shapes.items():
        try:
            time_shape(torch, dev, args, name, h, n, k, renorm, ts, rows, start + args.budget_s - 3)
        except Exception as exc:
            records.append(dict(kind="error", what=f"time {name}", error=f"{type(exc).__name__}: {exc}"[:500]))
            print(f"!! time {name}: {type(exc).__name__}: {exc}", flush=True)

    checks = [r for r in records if r.get("kind") == "check"]
    bad = [r for r in records if r.get("kind") == "error" or (r.get("kind") == "check" and not r.get("ok"))]
    device = "cpu (dry run, interpreter: times meaningless)" if dry else torch.cuda.get_device_name(dev)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(dict(device=device, args=vars(args), records=records, table=rows,
                                       elapsed_s=time.time() - start), indent=1, default=str))
        print(f"wrote {out}")
    print(f"\ndevice: {device}; checks {len(checks) - sum(r.get('kind') == 'check' for r in bad)}/{len(checks)} ok, "
          f"errors {sum(r.get('kind') == 'error' for r in bad)}; {time.time() - start:.0f} s")
    for r in bad:
        print("  FAIL", {k: v for k, v in r.items() if k != "kind"})
    print(f"{'shape':<6}{'T':>3} {'policy':<7}{'gate':>9}{'two-step':>10}{'fused':>10}{'fused/2-step':>13}"
          "  (us per call)")
    for r in rows:
        if "two_step_us" not in r:
            print(f"{r['shape']:<6}{r['T']:>3} {r['policy']:<7}  {r['note']}")
            continue
        fused = "-" if math.isnan(r["fused_us"]) else f"{r['fused_us']:.2f}"
        ratio = "-" if math.isnan(r["fused_us"]) else f"{r['fused_over_two_step']:.2f}"
        print(f"{r['shape']:<6}{r['T']:>3} {r['policy']:<7}{r['gate_us']:>9.2f}{r['two_step_us']:>10.2f}{fused:>10}"
              f"{ratio:>13}  {r['note']}")
    return 0 if checks and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
