"""The peer a user would otherwise pick: transformers' own decode speed on the same shape.

    PYTHONPATH=src python scripts/bench_transformers.py --model qwen3-30b-a3b --batch 16

Builds the model from Lynx's shape preset with random bf16 weights (so Lynx and
transformers time the same shape), decodes greedily with a static cache, the grouped_mm
experts implementation and (with --compile) torch.compile, and reports the time per
decode step as the difference between two generate() lengths, so prefill cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def main() -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    from lynx.models.presets import preset_config

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen3-30b-a3b")
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--prompt-len", type=int, default=256)
    ap.add_argument("--experts", default="grouped_mm", help="transformers experts implementation")
    ap.add_argument("--compile", action="store_true", help="torch.compile the forward (slow to start)")
    ap.add_argument("--short", type=int, default=8)
    ap.add_argument("--long", type=int, default=40)
    args = ap.parse_args()

    raw = preset_config(args.model)
    raw["model_type"] = {"Qwen3MoeForCausalLM": "qwen3_moe", "OlmoeForCausalLM": "olmoe",
                         "Qwen3ForCausalLM": "qwen3", "MixtralForCausalLM": "mixtral",
                         "Qwen2MoeForCausalLM": "qwen2_moe"}[raw["architectures"][0]]
    config = AutoConfig.for_model(**raw)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        kwargs = {"experts_implementation": args.experts} if "Moe" in raw["architectures"][0] else {}
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, **kwargs)
    model.eval()
    if args.compile:
        model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
    rows = []
    for b in map(int, args.batch.split(",")):
        ids = torch.randint(1, raw["vocab_size"], (b, args.prompt_len), device="cuda")
        mask = torch.ones_like(ids)

        def timed(n: int) -> float:
            gen = GenerationConfig(do_sample=False, max_new_tokens=n, min_new_tokens=n, eos_token_id=None,
                                   pad_token_id=0, cache_implementation="static")
            torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad():
                model.generate(ids, attention_mask=mask, generation_config=gen)
            torch.cuda.synchronize()
            return time.perf_counter() - start

        timed(args.short)  # warm-up (and compilation)
        timed(args.long)
        short, long = timed(args.short), timed(args.long)
        step = (long - short) / (args.long - args.short)
        row = {"batch": b, "step_ms": 1e3 * step, "tokens_per_s": b / step, "experts": args.experts,
               "compile": args.compile}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"model": args.model, "transformers": __import__("transformers").__version__,
              "torch": torch.__version__, "gpu": torch.cuda.get_device_name(), "rows": rows}
    if os.environ.get("OUT"):
        tag = f"{args.model}-{args.experts}{'-compiled' if args.compile else ''}"
        with open(os.path.join(os.environ["OUT"], f"transformers-{tag}.json"), "w") as f:
            json.dump(result, f, indent=2)
    print(f"\ntransformers {result['transformers']} {args.model} experts={args.experts} compile={args.compile}")
    for r in rows:
        print(f"batch {r['batch']:>4}: {r['step_ms']:8.2f} ms/step  {r['tokens_per_s']:8.0f} tok/s")


if __name__ == "__main__":
    main()
