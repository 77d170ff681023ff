"""``lynx bench routing``: exactness of the Triton routing kernels vs the PyTorch path, CUDA-graph timing.

Runs in-process (no child processes); the parts live in :mod:`lynx.bench.routing_parts`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from lynx.bench.gpu_check import RunContext, add_json_argument, json_output_path, require_cuda, standalone_main
from lynx.bench.routing_parts import LAYERS

HELP = "routing-kernel exactness vs the torch path, CUDA-graph time per routing call"
DESCRIPTION = """\
GPU check of the Triton routing kernels: exactness vs the PyTorch path, CUDA-graph timing.

On the GPU machine (~60-90 s on one H200, mostly Triton compiles):
    lynx bench routing [--step-ms 9] [--budget 85] [--json routing.json]   # default: $OUT/routing.json if OUT is set
On a CPU box, to catch bugs first (Triton interpreter, tiny shapes, wall-clock timing):
    lynx bench routing --dry-run
(``python scripts/gpu_routing_check.py`` runs the same from a checkout.)

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lynx bench routing`` (and of ``scripts/gpu_routing_check.py``)."""
    p.add_argument("--dry-run", action="store_true", help="CPU, Triton interpreter, tiny shapes")
    p.add_argument("--step-ms", type=float, default=9.0,
                   help="decode step time for the share column (default 9.0)")
    p.add_argument("--budget", type=float, default=85.0, help="seconds for both parts (default 85)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random exactness cases (default 0)")
    add_json_argument(p, "routing.json")


def use_interpreter() -> None:
    """Switch Triton to its (patched) CPU interpreter; must precede the kernels' definition."""
    os.environ["TRITON_INTERPRET"] = "1"  # before the kernels are defined
    from lynx.kernels.triton_interpret import patch_interpreter

    patch_interpreter()


def run(args: argparse.Namespace) -> int:
    """Run both parts, print the summary table, write the JSON; returns 0."""
    require_cuda("routing", "cpu" if args.dry_run else "cuda")
    start = time.time()
    if args.dry_run:
        use_interpreter()
    import torch

    from lynx.bench.routing_parts import part_exact, part_time

    ctx = RunContext(start + args.budget * 0.35, max_error_chars=400)
    device = torch.device("cpu" if args.dry_run else "cuda")
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    ctx.guard("env", lambda: env.update(triton=__import__("triton").__version__))
    from lynx.kernels.routing_plans import DEFAULT_CONFIG

    env["config"] = asdict(DEFAULT_CONFIG)
    print(f"##### exact ({env})", flush=True)
    ctx.guard("exact", part_exact, ctx, args, torch, device)
    print("##### time", flush=True)
    ctx.deadline = start + args.budget
    ctx.guard("time", part_time, ctx, args, torch, device)
    env["wall_s"] = round(time.time() - start, 1)
    table = summary_table(ctx.records, args.step_ms)
    path = json_output_path(args.json_path, "routing.json")
    if path:
        # the options the scripts always recorded (not the CLI's own entries of ``args``)
        opts = {"dry_run": args.dry_run, "step_ms": args.step_ms, "budget": args.budget, "seed": args.seed}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"env": env, "args": opts, "records": ctx.records, "table": table}, indent=1))
        print(f"wrote {path}")
    print(f"\n##### summary (wall {env['wall_s']} s)\n{table}")
    return 0


def summary_table(records: list[dict[str, Any]], step_ms: float) -> str:
    """Exactness counts, then us per call per (policy, T) and implementation, and the fastest."""
    ex = [r for r in records if r["kind"] in ("exact", "dispatch", "graph_replay")]
    bad = [r for r in ex if not r["ok"]]
    errs = [r["w_rel_err"] for r in ex if "w_rel_err" in r]
    lines = [f"exactness: {len(ex) - len(bad)}/{len(ex)} ok, max weight rel err {max(errs, default=0):.2e}, "
             f"errors {sum(r['kind'] == 'error' for r in records)}"]
    lines += [f"  FAIL {r}" for r in bad[:10]]
    times = {(r["policy"], r["T"], r["impl"]): r["us"] for r in records if r["kind"] == "time"}
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


def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/gpu_routing_check.py``: the same as ``lynx bench routing``."""
    return standalone_main(DESCRIPTION, add_arguments, run, argv)
