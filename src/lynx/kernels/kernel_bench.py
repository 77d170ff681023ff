"""Measurement helpers for the expert kernels (used by ``lynx bench kernels``).

* :func:`routing_with_active`: routing that touches exactly ``A`` distinct experts, the
  quantity Lynx's routing policies shrink and the MoE layer's cost should scale with.
* :func:`time_per_call`: per-call time of a list of calls, captured once in a CUDA graph
  and replayed (no Python or launch overhead, like the engine's decode graphs); on CPU a
  plain wall clock (dry runs only).
* :func:`linear_fit`: least squares ``time = a + b * A`` with R^2.
* :func:`ulp_order`: 16-bit floats as integers of the same order, for ulp distances.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch


def routing_with_active(
    num_tokens: int, top_k: int, num_experts: int, num_active: int, *, seed: int = 0,
    pad_rows: int = 0, device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weights [T, k] float32, ids [T, k] int64)`` touching ``min(A, T*k)`` distinct experts.

    Pair ``(t, j)`` gets active expert ``(t*k + j) mod A`` of a random active set: the k ids
    of a token are distinct (needs ``k <= A``) and every active expert is hit once
    ``T*k >= A``; loads are balanced. The last ``pad_rows`` tokens get zero weights
    (padding), which must not change the set of experts read.
    """
    if not top_k <= num_active <= num_experts:
        raise ValueError(f"need k={top_k} <= active={num_active} <= E={num_experts}")
    gen = torch.Generator().manual_seed(seed)
    active = torch.randperm(num_experts, generator=gen)[:num_active]  # [A]
    slot = torch.arange(num_tokens * top_k).reshape(num_tokens, top_k) % num_active  # [T, k]
    ids = active[slot][torch.randperm(num_tokens, generator=gen)]  # [T, k] rows shuffled
    weights = torch.rand(num_tokens, top_k, generator=gen) + 0.1  # [T, k]
    weights = weights / weights.sum(-1, keepdim=True)
    if pad_rows:
        weights[num_tokens - pad_rows :] = 0.0
    return weights.to(device), ids.to(device)


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares ``y = a + b*x``; returns ``(a, b, r2)``."""
    n = len(xs)
    if n < 2:
        return (ys[0] if ys else float("nan")), float("nan"), float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx if sxx else float("nan")
    a = my - b * mx
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    ss_tot = sum((y - my) ** 2 for y in ys)
    return a, b, (1.0 - ss_res / ss_tot) if ss_tot else float("nan")


def time_per_call(
    calls: Sequence[Callable[[], object]], device: torch.device, *, reps: int = 15, replays: int = 3,
    graph: bool = True,
) -> float:
    """Median seconds per call of ``calls`` (run in order, e.g. over rotated weight copies).

    CUDA + ``graph``: warm up (compiles Triton kernels) on a side stream, capture all calls
    in one graph, then time ``replays`` back-to-back replays per sample. CUDA without
    ``graph``: eager launches between events (includes Python/launch overhead). CPU: wall clock.
    """
    if device.type != "cuda":
        for call in calls:
            call()
        samples = []
        for _ in range(max(1, reps // 5)):
            start = time.perf_counter()
            for call in calls:
                call()
            samples.append((time.perf_counter() - start) / len(calls))
        return statistics.median(samples)

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            for call in calls:
                call()
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    if graph:
        cuda_graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(cuda_graph):
            for call in calls:
                call()
        run = cuda_graph.replay
    else:
        def run() -> None:
            for call in calls:
                call()

    run()
    torch.cuda.synchronize(device)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    samples = []
    for _ in range(reps):
        start.record()
        for _ in range(replays):
            run()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) * 1e-3 / (replays * len(calls)))
    return statistics.median(samples)


def ulp_order(a: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 tensor -> int32 of the same order: ulp distances are differences (-0.0 == +0.0)."""
    b = a.contiguous().view(torch.int16).int()
    return b.where(b >= 0, -(b & 0x7FFF))
