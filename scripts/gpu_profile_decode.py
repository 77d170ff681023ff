"""Where does a decode step's time go? Profiles CUDA-graph decode steps of a preset.

    PYTHONPATH=src python scripts/gpu_profile_decode.py --model qwen3-30b-a3b --batch 16 --routing lynx

Prints the GPU kernels by total time (graph replays included) with launch counts per
step, the GPU-busy time per step vs the wall time per step (the gap is host overhead),
and writes a Chrome trace to $OUT when set.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch.profiler import ProfilerActivity, profile

from lynx import LLM, SamplingParams


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen3-30b-a3b")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--routing", default="topk")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--no-stats", action="store_true")
    ap.add_argument("--eager", action="store_true")
    args = ap.parse_args()
    llm = LLM(args.model, routing=args.routing, load_format="dummy", max_model_len=512, max_num_seqs=args.batch,
              record_stats=not args.no_stats, enforce_eager=args.eager, gpu_memory_utilization=0.8)
    e = llm.engine
    vocab = e.model_config.vocab_size
    for i in range(args.batch):
        e.add_request(torch.randint(1, vocab, (128,)).tolist(), SamplingParams(max_tokens=1000, temperature=0, ignore_eos=True))
    for _ in range(5):
        e.step()  # prefill + warm decode
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        e.step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - start) / args.steps
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(args.steps):
            e.step()
        torch.cuda.synchronize()
    events = [ev for ev in prof.key_averages() if ev.device_time_total > 0]
    events.sort(key=lambda ev: ev.device_time_total, reverse=True)
    gpu_total = sum(ev.device_time_total for ev in events if ev.device_type.name == "CUDA") / args.steps
    print(f"\n{args.model} batch {args.batch} routing {args.routing} stats={not args.no_stats} eager={args.eager}")
    print(f"wall per step {wall * 1e3:.3f} ms; GPU kernel time per step {gpu_total / 1e3:.3f} ms")
    print(f"{'kernel':<90}{'us/step':>10}{'calls/step':>11}")
    for ev in events[:28]:
        if ev.device_type.name != "CUDA":
            continue
        print(f"{ev.key[:88]:<90}{ev.device_time_total / args.steps:>10.1f}{ev.count / args.steps:>11.1f}")
    if os.environ.get("OUT"):
        prof.export_chrome_trace(os.path.join(os.environ["OUT"], f"trace-{args.model}-{args.routing}-{args.batch}.json"))


if __name__ == "__main__":
    main()
