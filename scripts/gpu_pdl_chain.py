"""Does programmatic dependent launch (PDL) shorten a decode layer's chain of small kernels?

    PYTHONPATH=src python scripts/gpu_pdl_chain.py

A toy decode step with the kernel pattern of a Qwen3-30B-A3B layer at batch 16 (no expert
GEMMs): elementwise (norm) -> weight-streaming GEMV 2048->5120 (qkv) -> elementwise (rope)
-> elementwise (attention stand-in) -> GEMV 4096->2048 (o_proj) -> elementwise (norm) ->
GEMV 2048->128 (router) -> elementwise (routing), 48 layers with their own weights, in one
CUDA graph. Three variants of the same kernels:

* ``plain``: ordinary launches (what the engine does today);
* ``pdl``: launched with PDL, each kernel waits (``griddepcontrol.wait``) before touching
  its inputs and lets its dependent launch at once, so launch latency and CTA start-up
  overlap the previous kernel's tail;
* ``pdl+prefetch``: as ``pdl``, and the GEMVs first prefetch their weight slice into L2
  before waiting: weights do not depend on the previous kernel.

Prints the step time of each variant (median of graph replays) and checks the outputs
are identical.
"""

from __future__ import annotations

import statistics

import torch
import triton
import triton.language as tl

H, T, LAYERS = 2048, 16, 48


@triton.jit
def _prefetch_l2(ptrs):
    # fire-and-forget L2 prefetch of global addresses (one per element)
    tl.inline_asm_elementwise("prefetch.global.L2 [$1]; mov.u32 $0, 0;", "=r,l", [ptrs], dtype=tl.int32,
                              is_pure=False, pack=1)


@triton.jit
def gemv_kernel(x_ptr, w_ptr, y_ptr, N, K: tl.constexpr, T: tl.constexpr, BLOCK_N: tl.constexpr,
                BLOCK_K: tl.constexpr, PDL: tl.constexpr, PREFETCH: tl.constexpr):
    pid = tl.program_id(0)
    cols = pid * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN]
    rows = tl.arange(0, T)  # [T]
    ks = tl.arange(0, BLOCK_K)
    if PREFETCH:  # one prefetch per 128-byte line of this program's weight slice
        lines = tl.arange(0, BLOCK_N * (K // 64))  # [BN * K/64] lines of 64 bf16
        n = pid * BLOCK_N + lines // (K // 64)
        k = (lines % (K // 64)) * 64
        _prefetch_l2(w_ptr + n.to(tl.int64) * K + k)
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    acc = tl.zeros([T, BLOCK_N], tl.float32)
    for k0 in range(0, K, BLOCK_K):
        x = tl.load(x_ptr + rows[:, None] * K + (k0 + ks)[None, :])  # [T, BK]
        w = tl.load(w_ptr + cols[None, :].to(tl.int64) * K + (k0 + ks)[:, None])  # [BK, BN]
        acc += tl.dot(x, w)
    tl.store(y_ptr + rows[:, None] * N + cols[None, :], acc.to(tl.bfloat16))


@triton.jit
def ew_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr, PDL: tl.constexpr):
    if PDL:
        tl.extra.cuda.gdc_wait()
        tl.extra.cuda.gdc_launch_dependents()
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    v = tl.load(x_ptr + offs, mask=m).to(tl.float32)
    tl.store(y_ptr + offs, (v * 0.5 + 0.25).to(tl.bfloat16), mask=m)


def make_layer(dev: torch.device) -> dict:
    r = lambda *s: torch.randn(*s, device=dev, dtype=torch.bfloat16) * 0.02  # noqa: E731
    return {"qkv": r(5120, H), "o": r(H, 4096), "router": r(128, H)}


def step(x: torch.Tensor, layers: list[dict], bufs: dict, pdl: bool, prefetch: bool) -> torch.Tensor:
    def ew(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        n = dst.numel()  # reads the first n elements of src (flat)
        ew_kernel[(triton.cdiv(n, 1024),)](src, dst, n, BLOCK=1024, PDL=pdl, launch_pdl=pdl)
        return dst

    def gemv(src: torch.Tensor, w: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
        n, k = w.shape
        gemv_kernel[(n // 16,)](src, w, dst, n, K=k, T=T, BLOCK_N=16, BLOCK_K=256, PDL=pdl,
                                PREFETCH=prefetch, launch_pdl=pdl, num_warps=4, num_stages=3)
        return dst

    h = x
    for w in layers:
        ew(h, bufs["a"])  # input norm
        gemv(bufs["a"], w["qkv"], bufs["qkv"])  # [T, 5120]
        ew(bufs["qkv"], bufs["rope"])  # q/k norm + rotary
        ew(bufs["rope"], bufs["att"])  # attention stand-in, [T, 4096]
        gemv(bufs["att"], w["o"], bufs["o"])  # [T, 2048]
        ew(bufs["o"], bufs["n2"])  # post-attention norm
        gemv(bufs["n2"], w["router"], bufs["lg"])  # [T, 128]
        ew(bufs["lg"], bufs["route"])  # routing stand-in
        h = ew(bufs["n2"], bufs["h"])  # next layer's input
    return h


def main() -> None:
    dev = torch.device("cuda")
    torch.manual_seed(0)
    layers = [make_layer(dev) for _ in range(LAYERS)]
    x = torch.randn(T, H, device=dev, dtype=torch.bfloat16)
    bufs = {"a": torch.empty(T, H, device=dev, dtype=torch.bfloat16),
            "qkv": torch.empty(T, 5120, device=dev, dtype=torch.bfloat16),
            "rope": torch.empty(T, 5120, device=dev, dtype=torch.bfloat16),
            "route": torch.empty(T, 128, device=dev, dtype=torch.bfloat16),
            "att": torch.empty(T, 4096, device=dev, dtype=torch.bfloat16),
            "o": torch.empty(T, H, device=dev, dtype=torch.bfloat16),
            "n2": torch.empty(T, H, device=dev, dtype=torch.bfloat16),
            "lg": torch.empty(T, 128, device=dev, dtype=torch.bfloat16),
            "h": torch.empty(T, H, device=dev, dtype=torch.bfloat16)}
    results = {}
    outs = {}
    for name, pdl, prefetch in (("plain", False, False), ("pdl", True, False), ("pdl+prefetch", True, True)):
        for _ in range(2):
            step(x, layers, bufs, pdl, prefetch)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = step(x, layers, bufs, pdl, prefetch)
        graph.replay()
        torch.cuda.synchronize()
        outs[name] = out.clone()
        times = []
        for _ in range(15):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            for _ in range(3):
                graph.replay()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e) / 3)
        results[name] = statistics.median(times)
        del graph
    weight_mb = LAYERS * sum(w.numel() * 2 for w in layers[0].values()) / 1e6
    print(f"48 layers, {weight_mb:.0f} MB of weights, 9 kernels per layer, batch {T}")
    for name, ms in results.items():
        same = torch.equal(outs[name], outs["plain"])
        print(f"{name:<14}{ms:8.3f} ms/step  ({results['plain'] / ms:.2f}x)  identical: {same}")


if __name__ == "__main__":
    main()
