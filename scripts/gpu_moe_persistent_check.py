"""GPU check of the one-launch fused-MoE kernel (``TritonMoEConfig(persistent=True)``, default up to 16 tokens).

On the GPU machine, from the repo root (one H200, < 90 s with compiles):
    PYTHONPATH=src python scripts/gpu_moe_persistent_check.py      # + $OUT/moe_persistent.json
On a CPU box first (Triton interpreter, tiny shapes, wall clock, no graphs):
    python scripts/gpu_moe_persistent_check.py --dry-run

Phases:
  check   in a CHILD process under a watchdog (``--watchdog-s`` per model and batch): the kernel's
          programs wait on each other, so a residency bug would hang the GPU instead of
          failing; the child is killed and the run goes on (persistent timings skipped).
          Per model (Qwen3-30B-A3B and OLMoE expert shapes; ``--models`` adds Mixtral,
          Qwen2-57B-A14B, DeepSeek-V2-Lite), batch (1/16/64) and one-launch variant (sorted
          blocks; token-row blocks where T <= block_m): fresh random bf16 inputs (one padding
          token, one dropped pair), the same tiles through the two-launch path (align="fused",
          fuse_sum, persistent off: the reference) and the one-launch path: identical or
          rel. error < 1e-2; three repeats bit-identical; workspace zero after every call;
          a CUDA graph replayed on new inputs (the counters must reset every replay).
  time    in this process: CUDA graph of calls over ``--copies`` rotated weight copies
          (every call streams its experts from HBM), skewed (Zipf) routing over A = 8, 16,
          32, 48 active experts; the two-launch path with the one-launch tiles, the batch's
          default config (when it is neither) and the one-launch variants; then ``a + b*A``
          fits. A budget (``--budget-s``) stops the timing loop early.
The table is printed last; every record goes to ``$OUT/moe_persistent.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lynx from this checkout as a bare namespace package: its __init__ would import the engine
sys.modules["lynx"] = types.ModuleType("lynx")
sys.modules["lynx"].__path__ = [str(ROOT / "src" / "lynx")]

MODELS = {"qwen3-30b-a3b": dict(H=2048, I=768, E=128, k=8), "olmoe": dict(H=2048, I=1024, E=64, k=8),
          # the other presets' expert shapes (--models): N tiles wider than the wave (Mixtral), odd tile counts
          "mixtral-8x7b": dict(H=4096, I=14336, E=8, k=2), "qwen2-57b-a14b": dict(H=3584, I=2560, E=64, k=8),
          "deepseek-v2-lite": dict(H=2048, I=1408, E=64, k=6)}
DEFAULT_MODELS = "qwen3-30b-a3b,olmoe"
TINY = {"tiny": dict(H=64, I=48, E=16, k=4)}
TOL = 1e-2


def setup(dry: bool):
    """Import torch and the kernels (interpreter first when dry); returns (torch, device)."""
    if dry:
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    if dry:
        from lynx.kernels.moe_interpret import patch_interpreter_sort
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()
        patch_interpreter_sort()
    return torch, torch.device("cpu" if dry else "cuda")


def configs(batch: int, shape: dict) -> dict:
    from lynx.kernels.moe_config import default_config

    default = default_config(batch, shape["H"], shape["I"])
    # the two launches with the one-launch kernel's tiles: the reference of the check
    two = default.with_(align="fused", fuse_sum=True, persistent=False, token_rows=False)
    out = {"two_launch": two}
    if default not in (two, two.with_(persistent=True)):
        out["default"] = default
    out["persistent"] = two.with_(persistent=True)
    if batch <= two.block_m:  # token-row blocks (one row per token)
        out["token_rows"] = two.with_(persistent=True, token_rows=True)
    return out


def random_inputs(torch, t: int, shape: dict, device, seed: int):
    """``(x, w13, w2, weights, ids)`` in bf16 (weights on the device's own generator: fast)."""
    gen, dgen = torch.Generator().manual_seed(seed), torch.Generator(device=device).manual_seed(seed)
    h, i, e, k = shape["H"], shape["I"], shape["E"], shape["k"]
    bf16 = dict(device=device, dtype=torch.bfloat16, generator=dgen)
    x = torch.randn(t, h, **bf16)
    w13 = torch.randn(e, 2 * i, h, **bf16) * 0.02
    w2 = torch.randn(e, h, i, **bf16) * 0.02
    w, ids = torch.randn(t, e, generator=gen).softmax(-1).topk(k, dim=-1)
    w = w / w.sum(-1, keepdim=True)
    if t > 1:
        w[-1] = 0.0  # a padding token
    w[0, -1] = 0.0  # a dropped pair
    return x, w13, w2, w.to(device), ids.to(device)


def rel(torch, a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-30)).item()


ONE_LAUNCH = ("persistent", "token_rows")  # the configs checked against "two_launch"


def check_one(torch, device, name: str, shape: dict, t: int, variant: str) -> dict:
    from lynx.kernels import triton_moe as tm
    from lynx.kernels import triton_moe_persistent_host as ph

    cfgs = configs(t, shape)
    two_cfg, cfg = cfgs["two_launch"], cfgs[variant]
    x, w13, w2, w, ids = random_inputs(torch, t, shape, device, seed=t + shape["E"])
    want = tm.fused_experts_triton(x, w13, w2, w, ids, config=two_cfg)
    outs = [tm.fused_experts_triton(x, w13, w2, w, ids, config=cfg) for _ in range(3)]
    if device.type == "cuda":
        torch.cuda.synchronize()
    ws = ph.persistent_workspace(device)
    rec = dict(model=name, batch=t, variant=variant, identical=bool(torch.equal(outs[0], want)),
               rel_err=rel(torch, outs[0], want),
               repeat_identical=all(bool(torch.equal(o, outs[0])) for o in outs),
               workspace_zero=int(ws.count_nonzero()) == 0, residency=dict(ph.LAST_RESIDENCY))
    if device.type == "cuda":  # graph replays on new inputs: counters reset by every replay
        static = [x.clone(), w.clone(), ids.clone()]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            tm.fused_experts_triton(static[0], w13, w2, static[1], static[2], config=cfg)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            g_out = tm.fused_experts_triton(static[0], w13, w2, static[1], static[2], config=cfg)
        errs = []
        for seed in range(3):
            x2, _, _, w_2, ids_2 = random_inputs(torch, t, shape, device, seed=100 + seed)
            for dst, src in zip(static, (x2, w_2, ids_2)):
                dst.copy_(src)
            graph.replay()
            torch.cuda.synchronize()
            errs.append(rel(torch, g_out, tm.fused_experts_triton(x2, w13, w2, w_2, ids_2, config=two_cfg)))
        rec.update(graph_rel_err=max(errs), workspace_zero=rec["workspace_zero"] and int(ws.count_nonzero()) == 0)
    rec["ok"] = (rec["identical"] or rec["rel_err"] < TOL) and rec["repeat_identical"] and rec["workspace_zero"] \
        and rec.get("graph_rel_err", 0.0) < TOL
    return rec


def child(q, dry: bool, specs: list, simulate_hang: bool) -> None:
    """Runs in a spawned process: the first persistent calls (a deadlock hangs only this)."""
    torch, device = setup(dry)
    for name, shape, t, variant in specs:
        q.put({"started": [name, t, variant]})
        while simulate_hang:  # --simulate-hang: what a deadlocked kernel looks like from outside
            time.sleep(1.0)
        try:
            q.put(check_one(torch, device, name, shape, t, variant))
        except Exception as exc:  # noqa: BLE001  (recorded, not fatal)
            q.put(dict(model=name, batch=t, variant=variant, ok=False, error=f"{type(exc).__name__}: {exc}"[:500]))
    q.put(None)


def watchdog_check(dry: bool, specs: list, timeout_s: float, simulate_hang: bool = False) -> list[dict]:
    ctx = mp.get_context("spawn")  # never fork a process that may hold a CUDA context
    q = ctx.Queue()
    proc = ctx.Process(target=child, args=(q, dry, specs, simulate_hang), daemon=True)
    proc.start()
    deadline, records, current = time.time() + timeout_s, [], None  # per (model, batch): compiles + calls
    while True:
        try:
            item = q.get(timeout=1.0)
        except queue.Empty:
            if time.time() > deadline or not proc.is_alive():
                why = "TIMEOUT (deadlock?)" if proc.is_alive() else f"child died (exit {proc.exitcode})"
                proc.kill()
                if current:
                    records.append(dict(model=current[0], batch=current[1], variant=current[2], ok=False, error=why))
                print(f"check: {why} at {current}", flush=True)
                break
            continue
        if item is None:
            break
        if "started" in item:
            current, deadline = item["started"], time.time() + timeout_s
            continue
        current = None
        records.append(item)
        print(json.dumps(item), flush=True)
    proc.join(10)
    done = {(r["model"], r["batch"], r["variant"]) for r in records}
    records += [dict(model=name, batch=t, variant=variant, ok=False, error="not checked (child stopped)")
                for name, _, t, variant in specs if (name, t, variant) not in done]
    return records


def skewed_routing(torch, t: int, shape: dict, active: int, seed: int, device):
    """``(weights, ids)`` over at most ``active`` experts with Zipf(1) popularity (k distinct per token)."""
    gen = torch.Generator().manual_seed(seed)
    experts = torch.randperm(shape["E"], generator=gen)[:active]
    pop = 1.0 / torch.arange(1, active + 1, dtype=torch.float64)
    picks = torch.multinomial(pop.expand(t, active), shape["k"], replacement=False, generator=gen)
    w = torch.rand(t, shape["k"], generator=gen) + 0.1
    return (w / w.sum(-1, keepdim=True)).to(device), experts[picks].to(device)


def time_all(torch, device, models: dict, batches: list, actives: list, copies_n: int, ok: set,
             budget_s: float, start: float) -> list[dict]:
    from lynx.kernels.kernel_bench import time_per_call
    from lynx.kernels.triton_moe import fused_experts_triton

    rows = []
    for name, shape in models.items():
        copies = [random_inputs(torch, 1, shape, device, seed=1000 + c)[1:3] for c in range(copies_n)]
        for t in batches:
            x = torch.randn(t, shape["H"], device=device).to(torch.bfloat16)
            for active in actives:
                if active > min(t * shape["k"], shape["E"]) or active < shape["k"]:
                    continue
                if time.time() - start > budget_s:
                    print(f"time: budget {budget_s:.0f} s spent, stopping", flush=True)
                    return rows
                w, ids = skewed_routing(torch, t, shape, active, seed=active + t, device=device)
                distinct = len(set(ids.flatten().tolist()))
                for cname, cfg in configs(t, shape).items():
                    if cname in ONE_LAUNCH and (name, t, cname) not in ok:
                        continue  # the check failed or hung: never time it
                    calls = [lambda c=c, cfg=cfg, x=x, w=w, ids=ids: fused_experts_triton(x, c[0], c[1], w, ids,
                                                                                         config=cfg)
                             for c in copies]
                    us = time_per_call(calls * 2, device, reps=3 if device.type != "cuda" else 15,
                                       graph=device.type == "cuda") * 1e6
                    rows.append(dict(model=name, batch=t, active=distinct, config=cname, us=us))
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def table(checks: list[dict], rows: list[dict]) -> str:
    from lynx.kernels.kernel_bench import linear_fit

    lines = ["check (one launch vs two launches, same tiles):",
             f"{'model':<17}{'batch':>6} {'variant':<11} {'ok':<6}{'identical':<10}{'rel_err':>10}{'graph_err':>11}"
             "  error"]
    for c in checks:
        lines.append(f"{c['model']:<17}{c['batch']:>6} {c['variant']:<11} {c['ok']!s:<6}{c.get('identical', '-')!s:<10}"
                     f"{c.get('rel_err', float('nan')):>10.2e}{c.get('graph_rel_err', float('nan')):>11.2e}  "
                     f"{c.get('error', '')}")
    names = list(dict.fromkeys(r["config"] for r in rows))
    lines += ["", "time (us per layer, CUDA graph, rotated weights, skewed routing):",
              f"{'model':<15}{'batch':>6}{'A':>5}" + "".join(f"{n:>13}" for n in names) + f"{'1-launch gain':>15}"]
    keys = list(dict.fromkeys((r["model"], r["batch"], r["active"]) for r in rows))
    for key in keys:
        cells = {r["config"]: r["us"] for r in rows if (r["model"], r["batch"], r["active"]) == key}
        two = cells.get("two_launch", float("nan"))
        best = min((cells[k] for k in ONE_LAUNCH if k in cells), default=None)
        gain = f"{two - best:>+14.1f}" if best is not None else f"{'-':>14}"
        lines.append(f"{key[0]:<15}{key[1]:>6}{key[2]:>5}" + "".join(
            f"{cells[n]:>13.1f}" if n in cells else f"{'-':>13}" for n in names) + " " + gain)
    lines += ["", "fits us = a + b*A:", f"{'model':<15}{'batch':>6} {'config':<12}{'a':>9} {'b':>8} {'R2':>6}"]
    for model, batch in dict.fromkeys((r["model"], r["batch"]) for r in rows):
        for n in names:
            pts = [(r["active"], r["us"]) for r in rows if (r["model"], r["batch"], r["config"]) == (model, batch, n)]
            if len(pts) >= 2:
                a, b, r2 = linear_fit([p[0] for p in pts], [p[1] for p in pts])
                lines.append(f"{model:<15}{batch:>6} {n:<12}{a:>9.1f} {b:>8.2f} {r2:>6.3f}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU: Triton interpreter, tiny shapes, no graphs")
    ap.add_argument("--batches", default=None, help="default 1,16,64 (dry run 1,4)")
    ap.add_argument("--actives", default=None, help="default 8,16,32,48 (dry run 4,8)")
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--watchdog-s", type=float, default=45.0,
                    help="limit per (model, batch) of the child check, compiles included")
    ap.add_argument("--simulate-hang", action="store_true", help="test the watchdog: the child check hangs")
    ap.add_argument("--budget-s", type=float, default=80.0, help="no new timing after this many seconds")
    args = ap.parse_args()
    start = time.time()
    dry = args.dry_run
    models = TINY if dry else {m: MODELS[m] for m in args.models.split(",")}
    batches = [int(b) for b in (args.batches or ("1,4" if dry else "1,16,64")).split(",")]
    actives = [int(a) for a in (args.actives or ("4,8" if dry else "8,16,32,48")).split(",")]
    specs = [(name, shape, t, v) for name, shape in models.items() for t in batches for v in ONE_LAUNCH
             if v in configs(t, shape)]
    checks = watchdog_check(dry, specs, args.watchdog_s * (10 if dry and not args.simulate_hang else 1),
                            args.simulate_hang)
    ok = {(c["model"], c["batch"], c["variant"]) for c in checks if c.get("ok")}
    torch, device = setup(dry)
    rows = time_all(torch, device, models, batches, actives, 1 if dry else args.copies, ok, args.budget_s, start)
    gpu = "cpu (dry run)" if dry else torch.cuda.get_device_name(device)
    result = dict(gpu=gpu, checks=checks, rows=rows, seconds=time.time() - start)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "moe_persistent.json"), "w") as f:
            json.dump(result, f, indent=2)
    print(f"\n{gpu}, {result['seconds']:.0f} s\n" + table(checks, rows))
    return 0 if len(ok) == len(specs) else 1


if __name__ == "__main__":
    sys.exit(main())
