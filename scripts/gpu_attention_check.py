"""GPU check of the Triton paged decode attention: correctness, CUDA graphs, timing, tuning.

On the GPU machine, from the repo root (needs torch + triton; < 2 min on one H200):
    python scripts/gpu_attention_check.py            # writes $OUT/attention.json if OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall-clock timing):
    python scripts/gpu_attention_check.py --dry-run

Parts, each in its own subprocess so that a crash (say an illegal address) loses only it:
  check  Triton vs the PyTorch reference (fp32, on un-poisoned caches) on fresh random
         inputs: Qwen3-30B-A3B 32/4/128, OLMoE 16/16/128, Llama-8B-like 32/8/128; batch
         1/16/64; context lens mixed 1..4096; pages of 16; table width for max_model_len
         8192 and 32768; bf16 (rel err < 1e-2) and fp32 (< 1e-5); sliding window. Every
         cache slot no row attends to (and every padding column) is NaN: reading one shows.
  graph  capture once, refill lengths/tables/queries in place (padding rows: ctx 1, table
         row 0), replay: must match the reference and be bit-equal to an eager call.
  time   CUDA-graph replay (median) of Triton vs the gather+SDPA path, batch 16/64 x
         context 512/2048 at width 8192 (+ batch 1 at 4096), rotated cache copies so L2
         (50 MB) cannot hold K/V; achieved bandwidth = bytes actually needed / time.
  sweep  launch-config variants (one knob at a time from the default) on three shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"check": 45, "graph": 10, "time": 40, "sweep": 15}  # seconds each (total < 2 min)
HBM_TBPS = 4.18
MODELS = {"qwen3-30b-a3b": (32, 4, 128), "olmoe": (16, 16, 128), "llama-8b": (32, 8, 128)}  # Hq, Hkv, D
TINY = {"qwen3-30b-a3b": (8, 1, 32), "olmoe": (4, 4, 16), "llama-8b": (4, 2, 16)}
PAGE = 16


class Part:
    """One part in a child process; every record is flushed to the result file at once."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference must be real fp32
        self.torch, self.args, self.dry = torch, args, args.dry_run
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.models = TINY if self.dry else MODELS
        self.records: list[dict] = []

    def left(self) -> float:
        return self.args.deadline - time.time()

    def record(self, **rec: object) -> None:
        self.records.append(rec)
        print("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()),
              flush=True)
        Path(self.args.result).write_text(json.dumps(self.records))

    def guard(self, what: str, fn, *a, **kw):  # noqa: ANN001, ANN201 - any callable
        """Run ``fn``; on error print and record it, return None (the part goes on)."""
        try:
            return fn(*a, **kw)
        except Exception as exc:
            print(f"!! {what} failed: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}", flush=True)
            self.record(kind="error", what=what, error=f"{type(exc).__name__}: {exc}"[:500])
            return None

    def lens(self, batch: int, top: int, seed: int) -> list[int]:
        """Mixed context lengths in 1..top, always including 1 and top once batch allows."""
        gen = self.torch.Generator().manual_seed(seed)
        out = self.torch.randint(1, top + 1, (batch,), generator=gen).tolist()
        return ([1, top] + out[2:])[:batch] if batch > 1 else [top]


def part_check(p: Part) -> None:
    from lynx.kernels.paged_attention import paged_decode_attention, paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import make_paged_case, rel_err

    torch = p.torch
    top, widths = (40, (4, 8)) if p.dry else (4096, (8192 // PAGE, 32768 // PAGE))
    plans = [(m, b, w, torch.bfloat16, None) for w in widths for b in ((1, 3) if p.dry else (1, 16, 64))
             for m in p.models]
    plans += [("qwen3-30b-a3b", b, widths[0], torch.float32, None) for b in ((3,) if p.dry else (16, 64))]
    plans += [("llama-8b", 3 if p.dry else 16, widths[1], dt, 8 if p.dry else 1024)
              for dt in (torch.bfloat16, torch.float32)]
    for i, (name, batch, width, dtype, window) in enumerate(plans):
        if p.left() < 4:
            return p.record(kind="note", what=f"check stopped before {len(plans) - i} cases: budget")
        hq, hkv, d = p.models[name]
        case = make_paged_case(p.lens(batch, top, seed=i), hq, hkv, d, PAGE, width, window=window, dtype=dtype,
                               device=p.device, poison=True, seed=i)
        narrow = -(-int(case.context_lens.max()) // PAGE)  # same result, far cheaper to gather
        q, k, v, tables, lens = case.args(clean=True)
        ref = paged_decode_attention_reference(q.float(), k.float(), v.float(), tables[:, :narrow], lens,
                                               d**-0.5, window)
        out = p.guard(f"check {name} b={batch} w={width}", paged_decode_attention, *case.args(), d**-0.5, window,
                      backend="triton")
        if out is not None:
            err, tol = rel_err(out, ref), (1e-5 if dtype == torch.float32 else 1e-2)
            finite = bool(torch.isfinite(out.float()).all())
            p.record(kind="check", model=name, batch=batch, width=width * PAGE, dtype=str(dtype)[6:],
                     window=window, rel_err=err, finite=finite, ok=finite and err < tol)


def part_graph(p: Part) -> None:
    from lynx.kernels.paged_attention import paged_decode_attention, paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import make_paged_case, rel_err

    torch = p.torch
    hq, hkv, d = p.models["qwen3-30b-a3b"]
    batch, width, top = (4, 8, 40) if p.dry else (16, 8192 // PAGE, 4096)
    cases = [make_paged_case(p.lens(batch, top, s), hq, hkv, d, PAGE, width, dtype=torch.bfloat16,
                             device=p.device, seed=s) for s in range(4)]
    blocks = max(c.k_cache.shape[0] for c in cases)
    k = torch.zeros(blocks, PAGE, hkv, d, dtype=torch.bfloat16, device=p.device)  # static buffers
    v, q = torch.zeros_like(k), cases[0].q.clone()
    tables, lens = cases[0].block_tables.clone(), cases[0].context_lens.clone()

    def fill(c, pad_rows: int) -> None:  # noqa: ANN001
        n = c.k_cache.shape[0]
        k[:n].copy_(c.k_cache), v[:n].copy_(c.v_cache), q.copy_(c.q)
        tables.copy_(c.block_tables), lens.copy_(c.context_lens)
        if pad_rows:  # the engine's CUDA-graph padding rows
            tables[-pad_rows:] = 0
            lens[-pad_rows:] = 1

    def call():  # noqa: ANN202
        return paged_decode_attention(q, k, v, tables, lens, d**-0.5, None, backend="triton")

    fill(cases[0], 0)
    if p.device.type != "cuda":  # dry run: no graphs, just the refill path
        replay, out = call, None
    else:
        call()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = call()
        replay = graph.replay
    for step, c in enumerate(cases[1:]):
        fill(c, pad_rows=step)
        got = replay() if out is None else (replay(), out)[1]
        eager = call()
        ref = paged_decode_attention_reference(q.float(), k.float(), v.float(), tables, lens, d**-0.5, None)
        err, equal = rel_err(got, ref), bool(torch.equal(got, eager))
        p.record(kind="graph", step=step, pad_rows=step, rel_err=err, equal_eager=equal, ok=err < 1e-2 and equal)


def time_case(p: Part, name: str, batch: int, ctx: int, width: int, configs: dict, with_torch: bool) -> None:
    """Median graph-replay time per call of Triton (each config) and optionally the torch path."""
    from lynx.kernels.kernel_bench import time_per_call
    from lynx.kernels.paged_attention import paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import kv_bytes_needed, make_paged_case
    from lynx.kernels.paged_attention_triton import paged_decode_attention_triton

    torch = p.torch
    hq, hkv, d = p.models[name]
    need = kv_bytes_needed([ctx] * batch, hkv, d, 2)
    copies = 1 if p.dry else max(1, min(8, -(-(256 << 20) // need)))  # >= 256 MB touched per replay
    cases = [make_paged_case([ctx] * batch, hq, hkv, d, PAGE, width, dtype=torch.bfloat16, device=p.device,
                             seed=s, spare_blocks=0) for s in range(copies)]
    rows = [(label, lambda c, cfg=cfg: paged_decode_attention_triton(*c.args(), d**-0.5, None, config=cfg))
            for label, cfg in configs.items()]
    if with_torch:
        rows.append(("torch", lambda c: paged_decode_attention_reference(*c.args(), d**-0.5, None)))
    for label, fn in rows:
        if p.left() < 3:
            return p.record(kind="note", what=f"timing stopped at {name} b={batch} ctx={ctx} {label}: budget")
        calls = [lambda c=c, fn=fn: fn(c) for c in cases]
        sec = p.guard(f"time {label} {name} b={batch} ctx={ctx}", time_per_call, calls, p.device,
                      graph=p.device.type == "cuda")
        if sec is not None:
            p.record(kind="time", model=name, backend=label, batch=batch, ctx=ctx, width=width * PAGE, us=sec * 1e6,
                     TBps=need / sec / 1e12, hbm_frac=need / sec / 1e12 / HBM_TBPS, copies=copies)


def part_time(p: Part) -> None:
    width = 8 if p.dry else 8192 // PAGE
    shapes = [(16, 512), (64, 512), (16, 2048), (64, 2048), (1, 4096)] if not p.dry else [(2, 16), (3, 40)]
    for name in ("qwen3-30b-a3b", "llama-8b", "olmoe"):
        for batch, ctx in shapes:
            p.guard(f"time {name}", time_case, p, name, batch, ctx, width, {"triton": None}, True)


def part_sweep(p: Part) -> None:
    from lynx.kernels.paged_attention_triton import _num_sms, default_config

    hq, hkv, d = p.models["qwen3-30b-a3b"]
    width = 8 if p.dry else 8192 // PAGE
    for batch, ctx in ([(2, 40)] if p.dry else [(16, 2048), (64, 512), (1, 4096)]):
        base = default_config(batch, hq, hkv, d, width * PAGE, _num_sms(p.device))
        knobs = [("partition_size", (64, 128, 256, 512, 1024)), ("block_n", (32, 64, 128)), ("num_warps", (2, 4, 8)),
                 ("num_stages", (1, 2, 3, 4))]
        configs = {"default": base}
        for knob, values in knobs:
            for val in values:
                cfg = base.with_(**{knob: val})
                if cfg != base and cfg.partition_size % cfg.block_n == 0 and (not p.dry or val <= 64):
                    configs[f"{knob}={val}"] = cfg
        p.guard(f"sweep b={batch} ctx={ctx}", time_case, p, "qwen3-30b-a3b", batch, ctx, width, configs, False)


def summary(records: list[dict]) -> str:
    checks = [r for r in records if r.get("kind") in ("check", "graph")]
    bad = [r for r in checks if not r.get("ok")]
    errors = [r for r in records if r.get("kind") == "error"]
    lines = [f"correctness: {len(checks) - len(bad)}/{len(checks)} ok, {len(errors)} errors"
             + "".join(f"\n  FAIL {r}" for r in bad[:8])]
    for dt in ("bfloat16", "float32"):
        errs = [r["rel_err"] for r in checks if r.get("dtype") == dt]
        if errs:
            lines.append(f"  max rel err {dt}: {max(errs):.2e} over {len(errs)} cases")
    times = {(r["model"], r["batch"], r["ctx"], r["backend"]): r for r in records if r.get("kind") == "time"}
    lines.append(f"{'model':14} {'B':>3} {'ctx':>5} {'triton us':>9} {'torch us':>9} {'speedup':>7} {'TB/s':>5} {'%HBM':>5}")
    for (model, b, ctx, backend), r in times.items():
        if backend != "triton":
            continue
        t = times.get((model, b, ctx, "torch"))
        sp = f"{t['us'] / r['us']:7.1f}" if t else f"{'-':>7}"
        lines.append(f"{model:14} {b:3d} {ctx:5d} {r['us']:9.1f} {t['us'] if t else float('nan'):9.1f} {sp} "
                     f"{r['TBps']:5.2f} {100 * r['hbm_frac']:5.1f}")
    sweeps = [r for r in records if r.get("kind") == "time" and r["backend"] not in ("triton", "torch")]
    for key in sorted({(r["batch"], r["ctx"]) for r in sweeps}):
        best = sorted((r for r in sweeps if (r["batch"], r["ctx"]) == key), key=lambda r: r["us"])[:3]
        lines.append(f"sweep b={key[0]} ctx={key[1]}: " + ", ".join(f"{r['backend']} {r['us']:.1f}us" for r in best))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU, Triton interpreter, tiny shapes")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.part:  # child
        if args.dry_run:
            from lynx.kernels.triton_interpret import patch_interpreter

            patch_interpreter()
        globals()[f"part_{args.part}"](Part(args))
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    if args.dry_run:
        env["TRITON_INTERPRET"] = "1"  # before any kernel is defined, i.e. in the child's env
    records: list[dict] = []
    for name in args.parts.split(","):
        result = Path(f"/tmp/lynx_attention_{os.getpid()}_{name}.json")
        result.unlink(missing_ok=True)
        budget = PARTS[name] * (4 if args.dry_run else 1)
        print(f"== {name} ({budget}s)", flush=True)
        cmd = [sys.executable, __file__, "--part", name, "--result", str(result), "--deadline",
               str(time.time() + budget)] + (["--dry-run"] if args.dry_run else [])
        try:
            proc = subprocess.run(cmd, env=env, timeout=budget + 30)
            if proc.returncode:
                print(f"!! part {name} exited with {proc.returncode}", flush=True)
                records.append(dict(kind="error", what=f"part {name}", error=f"exit {proc.returncode}"))
        except subprocess.TimeoutExpired:
            print(f"!! part {name} timed out", flush=True)
            records.append(dict(kind="error", what=f"part {name}", error="timeout"))
        if result.exists():
            records += json.loads(result.read_text())
            result.unlink()
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        out.mkdir(parents=True, exist_ok=True)
        (out / "attention.json").write_text(json.dumps(records, indent=1))
    print("\n" + summary(records))


if __name__ == "__main__":
    main()
