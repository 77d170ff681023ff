"""The ``lynx`` command line: generate, inspect, bench, eval."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Sequence

from lynx.errors import LynxError

DEFAULT_MODEL = "tiny-moe"


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a model."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"checkpoint directory or built-in model name (default: {DEFAULT_MODEL})")
    p.add_argument("--routing", default="topk", choices=["topk", "lynx", "oea"],
                   help="expert-selection policy for decode batches (default: topk)")
    p.add_argument("--routing-param", action="append", metavar="NAME=VALUE",
                   help="policy parameter, e.g. alpha=3 beta=2 (lynx) or k0=5 (oea); repeatable")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="weight/activation dtype (auto: checkpoint dtype on GPU, float32 on CPU)")
    p.add_argument("--max-model-len", type=int, default=None, help="context length limit")
    p.add_argument("--enforce-eager", action="store_true", help="disable CUDA graphs")


def build_llm(args: argparse.Namespace) -> Any:
    from lynx import LLM
    from lynx.routing import parse_routing_args

    return LLM(args.model, routing=args.routing, device=args.device, dtype=args.dtype,
               max_model_len=args.max_model_len, enforce_eager=args.enforce_eager,
               **parse_routing_args(args.routing_param))


def cmd_generate(args: argparse.Namespace) -> int:
    from lynx import SamplingParams

    llm = build_llm(args)
    prompts = args.prompt or ["The invoice total is"]
    params = SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                            top_k=args.top_k, seed=args.seed, ignore_eos=args.ignore_eos)
    start = time.perf_counter()
    outs = llm.generate(prompts, params)
    elapsed = time.perf_counter() - start
    stats = llm.stats()
    if args.json:
        print(json.dumps({
            "outputs": [{"prompt": o.prompt, "text": o.text, "token_ids": o.token_ids,
                         "finish_reason": o.finish_reason, "metrics": o.metrics.to_dict()} for o in outs],
            "elapsed_s": elapsed, "stats": stats,
        }, indent=2))
        return 0
    for o in outs:
        print(f"--- prompt: {o.prompt!r}\n{o.text}\n[{len(o.token_ids)} tokens, {o.finish_reason}]")
    tokens = sum(len(o.token_ids) for o in outs)
    print(f"\n{tokens} tokens in {elapsed:.2f} s ({tokens / max(elapsed, 1e-9):.1f} tok/s), routing={args.routing}")
    if stats.get("mean_active_experts_after") is not None:
        print(f"mean distinct experts per MoE layer per decode step: "
              f"top-k {stats['mean_active_experts_before']:.2f} -> {args.routing} {stats['mean_active_experts_after']:.2f}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from lynx.embedded import resolve_model
    from lynx.models import load_config_dict, parse_model_config
    from lynx.models.loader import checkpoint_files
    from lynx.routing import POLICIES, default_routing_params

    path = resolve_model(args.model)
    cfg = parse_model_config(load_config_dict(path))
    total, active = cfg.param_counts()
    info: dict[str, Any] = {
        "path": str(path), "architecture": cfg.architecture, "dtype": cfg.torch_dtype,
        "layers": cfg.num_layers, "hidden_size": cfg.hidden_size,
        "heads": f"{cfg.num_heads} q / {cfg.num_kv_heads} kv, head_dim {cfg.head_dim}",
        "vocab_size": cfg.vocab_size, "max_position_embeddings": cfg.max_position_embeddings,
        "parameters_total": total, "parameters_active": active,
        "shards": [p.name for p in checkpoint_files(path)],
    }
    if cfg.moe is not None:
        info.update(moe_layers=cfg.num_moe_layers, experts=cfg.moe.num_experts, top_k=cfg.moe.top_k,
                    expert_ffn=cfg.moe.intermediate_size, renormalize_topk=cfg.moe.renormalize,
                    shared_expert_ffn=cfg.moe.shared_expert_intermediate_size,
                    routing_defaults={p: default_routing_params(p, cfg.moe.num_experts, cfg.moe.top_k, cfg.architecture)
                                      for p in POLICIES})
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if isinstance(value, int) and key.startswith("parameters"):
            value = f"{value:,} ({value / 1e9:.3f} B)"
        print(f"{key:<{width}}  {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lynx",
        description="Lynx: batched MoE decoding with batch-aware expert selection.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="generate text for one or more prompts",
                         description="Generate text in one batch; prints outputs and routing statistics.")
    add_model_arguments(gen)
    gen.add_argument("--prompt", action="append", help="prompt text; repeat for a batch")
    gen.add_argument("--max-tokens", type=int, default=32, help="tokens to generate per prompt (default 32)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    gen.add_argument("--top-p", type=float, default=1.0)
    gen.add_argument("--top-k", type=int, default=0)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--ignore-eos", action="store_true", help="keep generating past EOS")
    gen.add_argument("--json", action="store_true", help="print machine-readable JSON")
    gen.set_defaults(func=cmd_generate)

    ins = sub.add_parser("inspect", help="describe a checkpoint",
                         description="Architecture, parameter counts, experts and routing defaults of a checkpoint.")
    ins.add_argument("model", nargs="?", default=DEFAULT_MODEL, help="checkpoint directory or built-in name")
    ins.add_argument("--json", action="store_true")
    ins.set_defaults(func=cmd_inspect)

    bench = sub.add_parser("bench", help="benchmarks and GPU checks (decode, kernels, routing, attention)",
                           description="Benchmarks that run on the GPU and print a table plus JSON.")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    dec = bench_sub.add_parser("decode", help="decode-step time per routing policy and batch size",
                               description="Time CUDA-graph decode steps for each routing policy and batch size "
                                           "and compare with the bytes each step must read over measured HBM bandwidth.")
    from lynx.bench.decode import add_decode_arguments, run_decode_bench

    add_decode_arguments(dec)
    dec.set_defaults(func=lambda a: (run_decode_bench(a), 0)[1])
    from lynx.bench import attention, kernels, routing

    for name, check in (("kernels", kernels), ("routing", routing), ("attention", attention)):
        gpu = bench_sub.add_parser(name, help=check.HELP, description=check.DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
        check.add_arguments(gpu)
        gpu.set_defaults(func=check.run)

    from lynx.eval.runner import add_eval_arguments, run_eval

    ev = sub.add_parser("eval", help="document-QA accuracy (DocVQA, ChartQA)",
                        description="Run a model on DocVQA/ChartQA (real files or synthetic) and score it.")
    add_eval_arguments(ev)
    ev.set_defaults(func=lambda a: (run_eval(a), 0)[1])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except LynxError as e:
        print(f"lynx: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
