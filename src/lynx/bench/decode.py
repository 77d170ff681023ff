"""``lynx bench decode``: decode-step time per routing policy and batch size, vs the roofline.

One model is loaded once (real checkpoint or a preset with dummy weights); for each policy
(switched in place with :meth:`LLM.set_routing`) and batch size, a batch of random prompts
is decoded with CUDA graphs and the median decode-step time is compared with the bytes the
step must read over the HBM bandwidth measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from lynx.bench.roofline import measure_hbm_bandwidth, step_bytes


def add_decode_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="qwen3-30b-a3b",
                   help="checkpoint dir, built-in name or shape preset (presets imply --load-format dummy)")
    p.add_argument("--load-format", default=None, choices=["auto", "dummy"],
                   help="dummy: random weights with calibrated routers (timing only)")
    p.add_argument("--routing", default="topk,lynx,oea", help="comma-separated policies")
    p.add_argument("--routing-param", action="append", metavar="NAME=VALUE", help="applies to every policy that takes it")
    p.add_argument("--batch", default="1,8,16,32,64", help="comma-separated batch sizes")
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--decode-steps", type=int, default=64, help="timed decode steps per run")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--enforce-eager", action="store_true")
    p.add_argument("--gpu-memory-utilization", type=float, default=0.85)
    p.add_argument("--json", dest="json_path", default=None, help="write results to this JSON file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", action="append", metavar="NAME=VAR=VALUE[;VAR=VALUE]",
                   help="run the whole bench once per variant, each in a child process with these environment "
                        "variables (NAME= for none; the first is the reference), and print step-time ratios, e.g. "
                        "--variant base= --variant fused=LYNX_FUSED_ROUTER=1")


def _policy_params(policy: str, params: dict[str, Any]) -> dict[str, Any]:
    accepted = {"lynx": {"alpha", "beta"}, "oea": {"k0"}}.get(policy, set())
    return {k: v for k, v in params.items() if k in accepted}


def run_decode_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the bench (or, with ``--variant``, one child run per variant); print and return the results."""
    if getattr(args, "variant", None):
        from lynx.bench.decode_variants import run_variants

        return run_variants(args)
    from lynx import LLM, SamplingParams
    from lynx.routing import parse_routing_args
    from lynx.models.presets import is_preset

    load_format = args.load_format or ("dummy" if is_preset(args.model) else "auto")
    batches = [int(b) for b in args.batch.split(",")]
    policies = args.routing.split(",")
    extra = parse_routing_args(args.routing_param)
    max_len = args.prompt_len + args.decode_steps + 8
    llm = LLM(args.model, routing=policies[0], device=args.device, dtype=args.dtype, load_format=load_format,
              max_model_len=max_len, max_num_seqs=max(batches), enforce_eager=args.enforce_eager,
              gpu_memory_utilization=args.gpu_memory_utilization, seed=args.seed,
              **_policy_params(policies[0], extra))
    engine = llm.engine
    cfg = engine.model_config
    device = engine.device
    bandwidth = measure_hbm_bandwidth(device) if device.type == "cuda" else None
    elem = torch.empty((), dtype=engine.dtype).element_size()
    gen = torch.Generator().manual_seed(args.seed)
    # The same prompts for every policy, so policies differ only in routing.
    prompt_sets = {b: [torch.randint(1, cfg.vocab_size, (args.prompt_len,), generator=gen).tolist() for _ in range(b)]
                   for b in batches}
    rows = []
    bar = tqdm(total=len(policies) * len(batches), desc="bench decode")
    for i, policy in enumerate(policies):
        if i:
            llm.set_routing(policy, **_policy_params(policy, extra))
        for b in batches:
            prompts = prompt_sets[b]
            params = SamplingParams(max_tokens=args.decode_steps + 2, temperature=0, ignore_eos=True)
            llm.reset_stats()
            start = time.perf_counter()
            llm.generate(prompts, params)
            wall = time.perf_counter() - start
            steps = [s for s in llm.step_stats() if s.phase == "decode" and s.batch_size == b][2:]
            step_s = statistics.median(s.duration_s for s in steps)
            stats = llm.stats()
            before = stats.get("active_experts_before_per_layer") or []
            after = stats.get("active_experts_after_per_layer") or []
            ctx = [args.prompt_len + args.decode_steps // 2] * b
            need = step_bytes(cfg, elem, after, ctx) if cfg.is_moe else step_bytes(cfg, elem, 0.0, ctx)
            need_topk = step_bytes(cfg, elem, before, ctx) if cfg.is_moe else need
            row = {
                "routing": policy, "routing_params": stats["routing_params"], "batch": b,
                "step_ms": 1e3 * step_s, "tokens_per_s": b / step_s, "wall_s": wall,
                "active_experts_before": stats.get("mean_active_experts_before"),
                "active_experts_after": stats.get("mean_active_experts_after"),
                "bytes_per_step": need.total, "expert_bytes_per_step": need.experts,
                "topk_bytes_per_step": need_topk.total,
            }
            if bandwidth:
                row["roofline_ms"] = 1e3 * need.total / bandwidth
                row["over_roofline"] = row["step_ms"] / row["roofline_ms"]
            rows.append(row)
            bar.update(1)
    bar.close()
    result = {
        "model": args.model, "load_format": load_format, "architecture": cfg.architecture,
        "dtype": str(engine.dtype), "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "hbm_read_bytes_per_s": bandwidth, "prompt_len": args.prompt_len, "decode_steps": args.decode_steps,
        "cuda_graphs": engine.runner.graphs is not None, "torch": torch.__version__, "rows": rows,
    }
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))
    print_table(result)
    return result


def print_table(result: dict[str, Any]) -> None:
    bw = result["hbm_read_bytes_per_s"]
    print(f"\n{result['model']} ({result['load_format']} weights, {result['dtype']}, {result['device']}"
          + (f", HBM read {bw / 1e12:.2f} TB/s" if bw else "") + ")")
    print(f"{'routing':<8}{'batch':>6}{'step ms':>9}{'tok/s':>9}{'experts':>15}{'roofline':>10}{'x floor':>8}")
    base = {r["batch"]: r["step_ms"] for r in result["rows"] if r["routing"] == result["rows"][0]["routing"]}
    for r in result["rows"]:
        experts = "" if r["active_experts_before"] is None else f"{r['active_experts_before']:.1f}->{r['active_experts_after']:.1f}"
        roof = f"{r['roofline_ms']:.2f}" if "roofline_ms" in r else "-"
        over = f"{r['over_roofline']:.2f}" if "over_roofline" in r else "-"
        speed = base[r["batch"]] / r["step_ms"]
        print(f"{r['routing']:<8}{r['batch']:>6}{r['step_ms']:>9.3f}{r['tokens_per_s']:>9.0f}{experts:>15}{roof:>10}{over:>8}"
              f"  ({speed:.2f}x vs {result['rows'][0]['routing']})")
