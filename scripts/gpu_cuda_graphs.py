"""Eager vs CUDA-graph decode on the GPU: identical greedy tokens, and step times.

Run on a CUDA machine from the repo root:
    PYTHONPATH=src python scripts/gpu_cuda_graphs.py [--model tiny-moe] [--out results.json]

For each batch size (bucket sizes, so both paths run the same matmul shapes) and routing
policy, it generates greedily with ``enforce_eager=True`` and with CUDA graphs (and with
graphs but the synchronous, non-overlapped decode loop), checks the tokens are identical (float32, where kernels are deterministic per shape) and reports the
median decode-step time of each path in bfloat16.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

from lynx import LLM, SamplingParams


def decode_ms(llm: LLM) -> float:
    steps = [s.duration_s for s in llm.step_stats() if s.phase == "decode"]
    return 1e3 * statistics.median(steps[2:] or steps)  # skip the first steps (warm-up)


def run(model: str, dtype: str, routing: str, batch: int, prompt_len: int, new_tokens: int, eager: bool,
        max_model_len: int, overlap: bool = True) -> tuple[list[list[int]], float]:
    llm = LLM(model, routing=routing, device="cuda", dtype=dtype, enforce_eager=eager,
              max_model_len=max_model_len, max_num_seqs=max(batch, 8), gpu_memory_utilization=0.5,
              overlap_decode=overlap)
    vocab = llm.engine.model_config.vocab_size
    g = torch.Generator().manual_seed(batch)
    prompts = [torch.randint(1, vocab, (prompt_len,), generator=g).tolist() for _ in range(batch)]
    params = SamplingParams(max_tokens=new_tokens, temperature=0, ignore_eos=True)
    llm.generate(prompts[:1], SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))  # warm-up
    llm.reset_stats()
    outs = llm.generate(prompts, params)
    torch.cuda.synchronize()
    tokens = [o.token_ids for o in outs]
    ms = decode_ms(llm)
    del llm
    torch.cuda.empty_cache()
    return tokens, ms


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny-moe")
    ap.add_argument("--batches", default="1,8,16,32")
    ap.add_argument("--routings", default="topk,lynx")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "cuda_graphs.json"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available", file=sys.stderr)
        return 1
    rows = []
    for routing in args.routings.split(","):
        for b in map(int, args.batches.split(",")):
            row = {"routing": routing, "batch": b}
            try:
                t0 = time.perf_counter()
                eager32, _ = run(args.model, "float32", routing, b, args.prompt_len, args.new_tokens, True, args.max_model_len)
                graph32, _ = run(args.model, "float32", routing, b, args.prompt_len, args.new_tokens, False, args.max_model_len)
                row["identical_fp32"] = eager32 == graph32
                sync32, _ = run(args.model, "float32", routing, b, args.prompt_len, args.new_tokens, False,
                                args.max_model_len, overlap=False)
                row["overlap_equals_sync"] = sync32 == graph32
                _, row["eager_ms"] = run(args.model, "bfloat16", routing, b, args.prompt_len, args.new_tokens, True, args.max_model_len)
                _, row["graph_ms"] = run(args.model, "bfloat16", routing, b, args.prompt_len, args.new_tokens, False, args.max_model_len)
                row["speedup"] = row["eager_ms"] / row["graph_ms"]
                row["wall_s"] = time.perf_counter() - t0
            except Exception as e:  # keep going: one failure must not hide the other rows
                row["error"] = f"{type(e).__name__}: {e}"
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump({"model": args.model, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "rows": rows}, f, indent=2)
    print(f"\n{'routing':<8}{'batch':>6}{'same fp32':>10}{'ovl=sync':>9}{'eager ms':>10}{'graph ms':>10}{'speedup':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['routing']:<8}{r['batch']:>6}  ERROR {r['error'][:80]}")
        else:
            print(f"{r['routing']:<8}{r['batch']:>6}{str(r['identical_fp32']):>10}{str(r['overlap_equals_sync']):>9}"
                  f"{r['eager_ms']:>10.3f}"
                  f"{r['graph_ms']:>10.3f}{r['speedup']:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
