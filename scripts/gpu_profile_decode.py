"""Where does a decode step's time go? Profiles CUDA-graph decode steps of a preset.

    PYTHONPATH=src python scripts/gpu_profile_decode.py --model qwen3-30b-a3b --configs topk:1,topk:16,lynx:16

For each ``policy:batch`` it reports three times per step, which separate the costs:

* ``step``: :meth:`ModelRunner.run` wall time (host staging + graph + argmax + D2H), as
  ``lynx bench decode`` measures it;
* ``graph``: the bucket's graph replayed back to back, timed with CUDA events (GPU time
  including the gaps between kernels inside the graph);
* ``kernels``: the sum of the kernels' own durations (profiler), so ``graph - kernels`` is
  launch gaps and ``step - graph`` is host work.

Then the host's time per step in scheduling, launching and waiting, the largest kernels
with their launches per step, and (``--trace``) a Chrome trace per config in ``$OUT``. Stats (the expert tally) are off unless ``--stats``.

With programmatic dependent launch (the default on sm_90+) a kernel may start while its
predecessor runs and wait inside, so the profiler's durations then include that wait (the
kernel sum exceeded the graph time by 60% at batch 64, docs/performance.md section 10).
``--no-pdl`` sets ``LYNX_PDL=0`` for per-kernel figures that add up; the step is then ~1%
slower than the default's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from lynx import LLM, SamplingParams


def _replay_ms(graph: torch.cuda.CUDAGraph, iters: int = 20) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    graph.replay()
    start.record()
    for _ in range(iters):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


class HostTimer:
    """Wall time the engine loop spends in scheduling, launching and waiting for results."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        from lynx.engine import model_runner

        self.totals = {"schedule": 0.0, "launch": 0.0, "wait": 0.0}
        self._wrap(engine.scheduler, "schedule", "schedule")
        self._wrap(engine.runner, "launch", "launch")
        self._wrap(model_runner.LaunchedStep, "wait", "wait")

    def _wrap(self, owner, name: str, key: str) -> None:  # noqa: ANN001
        real = getattr(owner, name)

        def timed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            try:
                return real(*a, **kw)
            finally:
                self.totals[key] += time.perf_counter() - t0

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.totals = dict.fromkeys(self.totals, 0.0)


def profile_config(llm: LLM, policy: str, batch: int, steps: int, top: int, out_dir: str | None,
                   host: HostTimer, trace: bool) -> dict:
    e = llm.engine
    if e.runner.routing_policy != policy:
        llm.set_routing(policy)
    vocab = e.model_config.vocab_size
    gen = torch.Generator().manual_seed(0)
    for _ in range(batch):
        e.add_request(torch.randint(1, vocab, (256,), generator=gen).tolist(),
                      SamplingParams(max_tokens=10_000, temperature=0, ignore_eos=True))
    while any(s.num_output_tokens == 0 for s in e.scheduler.running) or e.scheduler.waiting:
        e.step()  # prefills
    for _ in range(3):
        e.step()
    torch.cuda.synchronize()
    walls = []
    host.reset()
    for _ in range(steps):
        t0 = time.perf_counter()
        e.step()
        walls.append(time.perf_counter() - t0)
    host_ms = {k: 1e3 * v / steps for k, v in host.totals.items()}
    host_ms["other"] = 1e3 * sum(walls) / steps - sum(host_ms.values())
    run_ms = statistics.median(s.duration_s for s in e.step_stats[-steps:]) * 1e3
    graphs = e.runner.graphs
    assert graphs is not None, "needs CUDA graphs"
    bucket = next(x for x in graphs.buckets if x >= batch)
    graph_ms = _replay_ms(graphs.graphs[bucket])
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            e.step()
        torch.cuda.synchronize()
    events = [ev for ev in prof.key_averages() if ev.device_type.name == "CUDA" and ev.device_time_total > 0]
    events.sort(key=lambda ev: ev.device_time_total, reverse=True)
    kernel_ms = sum(ev.device_time_total for ev in events) / steps / 1e3
    launches = sum(ev.count for ev in events) / steps
    if out_dir and trace:
        prof.export_chrome_trace(os.path.join(out_dir, f"trace-{policy}-{batch}.json"))
    for seq in list(e.scheduler.running) + list(e.scheduler.waiting):
        e.abort(seq.request_id)
    row = {
        "policy": policy, "batch": batch, "step_ms": run_ms, "engine_step_ms": 1e3 * statistics.median(walls),
        "graph_ms": graph_ms, "kernel_ms": kernel_ms, "launches_per_step": launches, "host_ms": host_ms,
        "kernels": [{"name": ev.key, "us_per_step": ev.device_time_total / steps, "calls_per_step": ev.count / steps}
                    for ev in events[:top]],
    }
    print(f"\n== {policy} batch {batch}: run {run_ms:.3f} ms | engine.step {row['engine_step_ms']:.3f} | graph "
          f"{graph_ms:.3f} | kernels {kernel_ms:.3f} ms in {launches:.0f} launches")
    print("  host per step (ms): " + ", ".join(f"{k} {v:.3f}" for k, v in host_ms.items()))
    for k in row["kernels"]:
        print(f"  {k['name'][:86]:<88}{k['us_per_step']:>9.1f} us{k['calls_per_step']:>7.1f}x")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen3-30b-a3b")
    ap.add_argument("--configs", default="topk:1,topk:16,lynx:16,topk:64,lynx:64", help="policy:batch,...")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per config (a pipelined loop needs many)")
    ap.add_argument("--top", type=int, default=16)
    ap.add_argument("--stats", action="store_true", help="keep the per-step expert tally on")
    ap.add_argument("--json", default=None)
    ap.add_argument("--trace", action="store_true", help="write a Chrome trace per config to $OUT")
    ap.add_argument("--no-pdl", action="store_true",
                    help="LYNX_PDL=0: kernels never start early, so their profiled durations add up")
    args = ap.parse_args()
    if args.no_pdl:
        os.environ["LYNX_PDL"] = "0"  # read at each launch, before the graphs are captured
    elif os.environ.get("LYNX_PDL", "1") != "0":
        print("note: PDL is on; per-kernel durations include waits for the predecessor (--no-pdl)")
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    first = configs[0][0]
    llm = LLM(args.model, routing=first, load_format="dummy", max_model_len=512,
              max_num_seqs=max(b for _, b in configs), record_stats=args.stats, gpu_memory_utilization=0.85)
    out_dir = os.environ.get("OUT")
    host = HostTimer(llm.engine)
    rows = [profile_config(llm, p, b, args.steps, args.top, out_dir, host, args.trace) for p, b in configs]
    print(f"\n{args.model}: ms per decode step (run = what lynx bench decode reports)")
    print(f"{'policy':<7}{'batch':>6}{'run':>8}{'graph':>8}{'kernels':>9}{'gaps':>7}{'host':>7}{'launch':>8}")
    for r in rows:
        print(f"{r['policy']:<7}{r['batch']:>6}{r['step_ms']:>8.3f}{r['graph_ms']:>8.3f}{r['kernel_ms']:>9.3f}"
              f"{r['graph_ms'] - r['kernel_ms']:>7.3f}{r['step_ms'] - r['graph_ms']:>7.3f}{r['launches_per_step']:>8.0f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": args.model, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
