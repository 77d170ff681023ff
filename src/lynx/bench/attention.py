"""``lynx bench attention``: correctness, CUDA graphs, timing and tuning of the Triton paged decode attention.

The parent process runs each part (:mod:`lynx.bench.attention_parts`) in its own child process
with a fixed time budget, collects the records the child flushed to a JSON file, prints the
summary and writes the JSON result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lynx.bench.gpu_check import add_json_argument, child_command, json_output_path, require_cuda, standalone_main
from lynx.errors import LynxError

PARTS = {"check": 45, "graph": 10, "time": 40, "sweep": 15, "decode": 75}  # seconds each (total < 3.5 min)
HELP = "paged decode attention correctness, CUDA-graph replay, timing vs gather+SDPA, tuning"
DESCRIPTION = """\
GPU check of the Triton paged decode attention: correctness, CUDA graphs, timing, tuning.

On the GPU machine (needs torch + triton; < 2 min on one H200):
    lynx bench attention --json attention.json    # without --json: $OUT/attention.json if OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall-clock timing):
    lynx bench attention --dry-run
(``python scripts/gpu_attention_check.py`` runs the same from a checkout.)

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
  decode the same at the engine's decode shapes (Qwen3-30B-A3B and OLMoE heads, batch 16/64,
         context 300 in a 512-token table and 2000 in a 4096 one), incl. the two-launch merge.
Budgets per part (seconds, x4 with --dry-run): """ + ", ".join(f"{k} {v}" for k, v in PARTS.items()) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lynx bench attention`` (and of ``scripts/gpu_attention_check.py``)."""
    p.add_argument("--dry-run", action="store_true", help="CPU, Triton interpreter, tiny shapes")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated parts to run, in order (default: {','.join(PARTS)})")
    add_json_argument(p, "attention.json")


def run(args: argparse.Namespace) -> int:
    """Run the parts in child processes, write the JSON, print the summary; returns 0."""
    parts = args.parts.split(",")
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        raise LynxError(f"unknown attention part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    require_cuda("attention", "cpu" if args.dry_run else "cuda")
    env = dict(os.environ)
    if args.dry_run:
        env["TRITON_INTERPRET"] = "1"  # before any kernel is defined, i.e. in the child's env
    records: list[dict[str, Any]] = []
    for name in parts:
        result = Path(f"/tmp/lynx_attention_{os.getpid()}_{name}.json")
        result.unlink(missing_ok=True)
        budget = PARTS[name] * (4 if args.dry_run else 1)
        print(f"== {name} ({budget}s)", flush=True)
        cmd = child_command(__name__, ["--part", name, "--result", str(result), "--deadline",
                                       str(time.time() + budget)] + (["--dry-run"] if args.dry_run else []))
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
    path = json_output_path(args.json_path, "attention.json")
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(records, indent=1))
    print("\n" + summary(records))
    return 0


def child_main(argv: Sequence[str]) -> int:
    """One part in a child process (see :func:`lynx.bench.gpu_check.child_command`)."""
    ap = argparse.ArgumentParser(prog="lynx bench attention (part)")
    ap.add_argument("--part", required=True, choices=list(PARTS))
    ap.add_argument("--result", required=True)
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if args.dry_run:
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()
    from lynx.bench import attention_parts as parts

    part = {"check": parts.part_check, "graph": parts.part_graph, "time": parts.part_time,
            "sweep": parts.part_sweep, "decode": parts.part_decode}[args.part]
    part(parts.AttentionPart(args))
    return 0


def summary(records: list[dict[str, Any]]) -> str:
    """Correctness counts and max errors, Triton vs torch time per shape, the three best sweep variants."""
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
    for key in sorted({(r["model"], r["batch"], r["ctx"]) for r in sweeps}):
        rows = [r for r in sweeps if (r["model"], r["batch"], r["ctx"]) == key]
        best = sorted(rows, key=lambda r: r["us"])[:3]
        base = {r["backend"]: r["us"] for r in rows if r["backend"] in ("default", "two-launch")}
        lines.append(f"sweep {key[0]} b={key[1]} ctx={key[2]}: "
                     + ", ".join(f"{k} {v:.1f}us" for k, v in base.items()) + " | best: "
                     + ", ".join(f"{r['backend']} {r['us']:.1f}us" for r in best))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/gpu_attention_check.py``: the same as ``lynx bench attention``."""
    return standalone_main(DESCRIPTION, add_arguments, run, argv)
