"""``lynx bench kernels``: correctness, CUDA-graph timing vs active experts and tuning of the expert kernels.

The parent process runs each part in its own child process (:func:`child_main`) with a share
of the time budget, collects the records each child flushed to a JSON file, prints the
summary tables and writes the JSON result. The parts live in :mod:`lynx.bench.kernels_check`
and :mod:`lynx.bench.kernels_timing`; the extra tables in :mod:`lynx.bench.kernels_summary`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lynx.bench.gpu_check import add_json_argument, child_command, json_output_path, require_cuda, standalone_main
from lynx.bench.kernels_part import PARTS
from lynx.errors import LynxError

HELP = "expert-kernel correctness, CUDA-graph timing vs active experts, tuning"
DESCRIPTION = """\
GPU check of Lynx's expert kernels: correctness, CUDA-graph timing vs active experts, tuning.

On the GPU machine (needs torch + triton; ~3.5 min on one H200):
    lynx bench kernels --json kernels.json    # without --json: $OUT/kernels.json if OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall-clock timing):
    lynx bench kernels --dry-run
(``python scripts/gpu_kernels_check.py`` runs the same from a checkout.)

Parts, each in its own subprocess so that a crash (say an illegal address) loses only it:
  check    block metadata (new single-program and chunked kernels, legacy kernel) identical to
           ``moe_align_reference`` on random routings (padding rows, dropped pairs, experts
           without tokens, T=1, duplicates); every backend vs the float32-upcast reference on
           fresh random bf16 inputs (Qwen3-30B-A3B, OLMoE, Mixtral shapes; T in 1..256);
           every Triton metadata/sum mode bit-identical to the others; fp32 path;
           determinism; CUDA-graph replay on new routing.
  stages   old vs new metadata cost: the legacy one-hot align kernel, the new single-program
           and chunked kernels (T = 1 .. 4096, all experts active), and the per-stage breakdown of
           the Triton layer (gate_up / down with given metadata vs deriving it themselves,
           down with the fused k-sum vs the separate sum kernel).
  time     Qwen3-30B-A3B MoE layer at batch 16 and 64 vs distinct active experts A, in CUDA
           graphs (4 rotated weight copies so L2 cannot hold weights): the new Triton
           default, the previous Triton pipeline ("triton-old": legacy align kernel,
           separate sum kernel, 4 stages at batch 64), grouped_mm and the bare two
           grouped_mm baseline; fit a + b*A.
  prefill  T = 256 .. 4096 tokens, all 128 experts active: Triton vs grouped_mm, the
           crossover that sets ``AUTO_TRITON_MAX_PAIRS`` in lynx/kernels/dispatch.py.
  sweep    Triton tile/launch variants (one knob at a time) at batch 16 and 64.
  models   OLMoE and Mixtral timing.
The parts import only ``lynx.kernels`` (``lynx`` as a bare namespace package), never the engine.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``lynx bench kernels`` (and of ``scripts/gpu_kernels_check.py``)."""
    p.add_argument("--dry-run", action="store_true", help="tiny shapes (CPU: Triton interpreter)")
    p.add_argument("--device", default=None, help="cuda (default) or cpu (default with --dry-run)")
    p.add_argument("--budget", type=float, default=200.0, help="total seconds for all parts (default 200)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated parts to run, in order (default: {','.join(PARTS)})")
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"),
                   help="directory for the parts' result files (default: $TMPDIR or /tmp)")
    p.add_argument("--batches", type=batch_list, default=None,
                   help="decode batches of the 'time' part, e.g. 1,8,16,32,64,128 (default 16,64)")
    p.add_argument("--models-batches", type=batch_list, default=None,
                   help="batches of the 'models' part (OLMoE, Mixtral, Qwen2-57B shapes; default 1,16)")
    add_json_argument(p, "kernels.json")


def batch_list(text: str) -> tuple[int, ...]:
    """``"1,16,64"`` -> ``(1, 16, 64)``: positive integers."""
    try:
        out = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"batches must be comma-separated integers, got {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"batches must be positive integers, got {text!r}")
    return out


def _batch_args(args: argparse.Namespace) -> list[str]:
    out = []
    for flag, value in (("--batches", getattr(args, "batches", None)),
                        ("--models-batches", getattr(args, "models_batches", None))):
        if value:
            out += [flag, ",".join(map(str, value))]
    return out


def run(args: argparse.Namespace) -> int:
    """Run the parts in child processes, print the summary, write the JSON; returns 0."""
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    parts = [x for x in args.parts.split(",") if x]
    unknown = [x for x in parts if x not in PARTS]
    if unknown:
        raise LynxError(f"unknown kernels part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    require_cuda("kernels", args.device)
    start = time.time()
    deadline = start + args.budget
    results: dict[str, list[dict]] = {}
    for n, part in enumerate(parts):
        share = PARTS[part] / sum(PARTS[q] for q in parts[n:])
        part_deadline = time.time() + (deadline - time.time()) * share
        result = Path(args.tmp) / f"kernels_{part}.json"
        result.unlink(missing_ok=True)
        cmd = child_command(__name__, ["--part", part, "--result", str(result), "--deadline", str(part_deadline),
                                       "--device", args.device] + (["--dry-run"] if args.dry_run else [])
                            + _batch_args(args))
        print(f"\n##### part {part}: {part_deadline - time.time():.0f}s budget", flush=True)
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, timeout=max(10.0, part_deadline - time.time() + 20))
            status = f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = "killed (timeout)"
        try:
            results[part] = json.loads(result.read_text()) if result.exists() else []
        except ValueError:  # killed mid-write
            results[part] = []
        print(f"##### part {part}: {status} after {time.time() - t0:.0f}s, {len(results[part])} records", flush=True)
    env: dict[str, Any] = {"argv": sys.argv, "wall_s": None}
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.cuda.is_available() and torch.cuda.get_device_name())
        import triton

        env["triton"] = triton.__version__
    except Exception as exc:  # informational only
        env["env_error"] = repr(exc)
    summary: dict[str, Any] = {}
    records = [r for recs in results.values() for r in recs]
    try:
        from lynx.kernels.kernel_report import summarize

        summary = summarize(results)
    except Exception:  # the raw records still get written
        traceback.print_exc()
    try:
        from lynx.bench.kernels_summary import summarize_extra

        summary.update(summarize_extra(records, args.dry_run))
    except Exception:
        traceback.print_exc()
    env["wall_s"] = round(time.time() - start, 1)
    print(f"\ntotal wall time {env['wall_s']}s")
    path = json_output_path(args.json_path, "kernels.json")
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"env": env, "parts": results, **summary}, indent=1, default=str))
        print(f"wrote {path}")
    return 0


def import_kernels(interpret: bool) -> None:
    """Import ``lynx.kernels``; on CPU first switch Triton to its (patched) interpreter."""
    from lynx.kernels.triton_interpret import use_interpreter

    use_interpreter(interpret)  # before any lynx.kernels.triton_* import
    if interpret:
        from lynx.kernels.moe_interpret import patch_interpreter_sort

        patch_interpreter_sort()


def child_main(argv: Sequence[str]) -> int:
    """One part in a child process (see :func:`lynx.bench.gpu_check.child_command`)."""
    ap = argparse.ArgumentParser(prog="lynx bench kernels (part)")
    ap.add_argument("--part", required=True, choices=list(PARTS))
    ap.add_argument("--result", required=True)
    ap.add_argument("--deadline", type=float, required=True)
    ap.add_argument("--device", required=True)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--batches", type=batch_list, default=None)
    ap.add_argument("--models-batches", type=batch_list, default=None)
    args = ap.parse_args(argv)
    import_kernels(interpret=args.device == "cpu")
    args.start = time.time()
    from lynx.bench import kernels_check as check
    from lynx.bench import kernels_timing as timing
    from lynx.bench.kernels_part import KernelPart

    p = KernelPart(args)
    {"check": check.part_check, "stages": timing.part_stages, "time": timing.part_time,
     "prefill": timing.part_prefill, "sweep": timing.part_sweep, "models": timing.part_models}[args.part](p)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``scripts/gpu_kernels_check.py``: the same as ``lynx bench kernels``."""
    return standalone_main(DESCRIPTION, add_arguments, run, argv)
