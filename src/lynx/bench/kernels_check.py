"""``lynx bench kernels`` part ``check``: block metadata and every backend against the references.

Block metadata (new single-program and chunked kernels, legacy kernel) must be identical to
``moe_align_reference``; every backend within tolerance of the float32-upcast reference;
every Triton metadata/sum mode bit-identical; the fp32 path deterministic; CUDA-graph replay
must follow new routing written in place.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from lynx.bench.kernels_part import QWEN, KernelPart, kernels_module, rel_err


def random_routing(torch: ModuleType, seed: int, device: Any) -> tuple[Any, Any, int, int]:
    """``(ids [T, k], weights [T, k], E, block_m)``: decode/prefill sizes, skewed, padded."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda n: int(torch.randint(n, (1,), generator=gen))  # noqa: E731
    t = [1, 1 + r(16), 1 + r(64), 64, 1 + r(600)][r(5)]
    e = [8, 60, 128, 256][r(4)]
    k = min(e, [1, 2, 6, 8][r(4)])
    block_m = [16, 32, 64][r(3)]
    active = max(k, 1 + r(e))
    pool = torch.randperm(e, generator=gen)[:active]
    if r(6) == 0:  # duplicates inside a token
        ids = pool[torch.randint(active, (t, k), generator=gen)]
    else:
        ids = torch.stack([pool[torch.randperm(active, generator=gen)[:k]] for _ in range(t)])
    weights = torch.rand(t, k, generator=gen) + 0.05
    weights[torch.rand(t, generator=gen) < 0.2] = 0.0  # padding tokens
    weights[torch.rand(t, k, generator=gen) < 0.05] = 0.0  # single dropped pairs
    return ids.to(device), weights.to(device), e, block_m


def part_check(p: KernelPart) -> None:
    """Metadata, graph replay, modes and fp32 first, then every backend on every model shape."""
    # the new paths first (a budget stop cuts the broad backend sweep at the end, not these)
    p.guard("align exactness", check_align, p)
    if p.device.type == "cuda":
        for t in (16, 64):
            for backend in ("triton", "grouped_mm"):
                p.guard(f"graph replay {backend} T={t}", check_graph_replay, p, backend, t)
    p.guard("modes identical", check_modes, p)
    p.guard("fp32", check_fp32, p)
    torch, kern = p.torch, kernels_module()
    from lynx.kernels.kernel_bench import routing_with_active

    for name, (h, i, e, k) in p.shapes.items():
        (w13, w2), = p.experts(name)
        w13f, w2f = w13.float(), w2.float()
        tokens = (1, 4, 9) if p.dry else ((1, 8, 16, 64) if name == "mixtral" else (1, 8, 16, 64, 256))
        for t in tokens:
            for active in sorted({min(e, max(k, 8), t * k), min(e, t * k)}):  # A <= T*k
                if p.left() < 5:
                    return p.record(kind="note", what=f"check stopped at {name} T={t}: budget")
                pad = 1 if t >= 4 else 0
                w, ids = routing_with_active(t, k, e, active, seed=t + active, pad_rows=pad, device=p.device)
                x = torch.randn(t, h, device=p.device).to(torch.bfloat16)
                ref = kern.fused_experts_reference(x.float(), w13f, w2f, w, ids)
                for backend in ("triton", "grouped_mm", "reference"):
                    out = p.guard(f"check {backend} {name} T={t} A={active}", kern.fused_experts,
                                  x, w13, w2, w, ids, backend=backend)
                    if out is None:
                        continue
                    pad_zero = bool((out[t - pad:] == 0).all()) if pad else True
                    p.record(kind="check", model=name, backend=backend, T=t, active=active, dtype="bf16",
                             rel_err=rel_err(out, ref), finite=bool(torch.isfinite(out.float()).all()),
                             pad_zero=pad_zero, ok=rel_err(out, ref) < 1e-2 and pad_zero)


def check_fp32(p: KernelPart) -> None:
    """fp32 Triton path vs the fp32 reference (no TF32), and repeat-run determinism."""
    torch, kern = p.torch, kernels_module()
    from lynx.kernels.kernel_bench import routing_with_active

    h, _, e, k = p.shapes[QWEN]
    (w13, w2), = p.experts(QWEN, dtype=torch.float32)
    for t in ((4,) if p.dry else (16, 64)):
        w, ids = routing_with_active(t, k, e, min(e, 2 * k), seed=7, pad_rows=1, device=p.device)
        x = torch.randn(t, h, device=p.device)
        ref = kern.fused_experts_reference(x, w13, w2, w, ids)
        out = kern.fused_experts(x, w13, w2, w, ids, backend="triton")
        same = all(torch.equal(out, kern.fused_experts(x, w13, w2, w, ids, backend="triton")) for _ in range(3))
        p.record(kind="check", model=QWEN, backend="triton", T=t, active=min(e, 2 * k), dtype="fp32",
                 rel_err=rel_err(out, ref), deterministic=same, ok=rel_err(out, ref) < 1e-5 and same)


def check_align(p: KernelPart) -> None:
    """New metadata kernels (and the legacy one) vs the PyTorch reference, on the device."""
    torch = p.torch
    from lynx.kernels.moe_align import moe_align_reference
    from lynx.kernels.moe_align_legacy import moe_align_legacy
    from lynx.kernels.triton_moe_align import moe_align_triton

    def same(a: Any, b: Any) -> bool:
        return all(torch.equal(x, y) for x, y in ((a.num_slots, b.num_slots), (a.block_expert, b.block_expert),
                                                   (a.sorted_pair_ids, b.sorted_pair_ids)))

    cases = 12 if p.dry else 120
    bad: dict[str, list[int]] = {"small": [], "chunked": [], "legacy": []}
    done = 0
    for seed in range(cases):
        if p.left() < 0.75 * (p.deadline - p.args.start):
            break  # leave most of the part's budget to the layer checks
        ids, w, e, bm = random_routing(torch, seed, p.device)
        want = moe_align_reference(ids, w, e, bm)
        if ids.numel() <= 1024 and not same(moe_align_triton(ids, w, e, bm, chunked=False), want):
            bad["small"].append(seed)
        if not same(moe_align_triton(ids, w, e, bm, chunked=True), want):
            bad["chunked"].append(seed)
        if ids.numel() <= 1024 and not same(moe_align_legacy(ids, w, e, bm), want):
            bad["legacy"].append(seed)
        done += 1
    for kernel, seeds in bad.items():
        p.record(kind="align_check", kernel=kernel, cases=done, failing_seeds=seeds[:10], ok=not seeds)


def check_modes(p: KernelPart) -> None:
    """Every (align, fuse_sum) mode gives bit-identical outputs (same rows, same order)."""
    torch = p.torch
    from lynx.kernels.kernel_bench import routing_with_active
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe import fused_experts_triton

    h, i, e, k = p.shapes[QWEN]
    (w13, w2), = p.experts(QWEN)
    modes = [("fused", True), ("fused", False), ("kernel", True), ("kernel", False), ("legacy", False)]
    for t in ((1, 4) if p.dry else (1, 16, 64, 100)):  # 1 and 16 share compiles; 100: >1 block per expert
        if p.left() < 8:
            return p.record(kind="note", what=f"modes stopped at T={t}: budget")
        for active in sorted({min(e, k), min(e, t * k)}):
            w, ids = routing_with_active(t, k, e, active, seed=11 * t + active, pad_rows=1 if t > 2 else 0,
                                         device=p.device)
            x = torch.randn(t, h, device=p.device).to(torch.bfloat16)
            base = default_config(t, h, i)
            outs = {f"{a}/{s}": fused_experts_triton(x, w13, w2, w, ids, config=base.with_(align=a, fuse_sum=s))
                    for a, s in modes}
            first = outs["fused/True"]
            diff = [m for m, o in outs.items() if not torch.equal(o, first)]
            p.record(kind="modes", T=t, active=active, block_m=base.block_m, differing=diff, ok=not diff)


def check_graph_replay(p: KernelPart, backend: str, t: int) -> None:
    """Capture once with one routing, overwrite the inputs in place, replay: must follow."""
    torch, kern = p.torch, kernels_module()
    from lynx.kernels.kernel_bench import routing_with_active

    h, _, e, k = p.shapes[QWEN]
    (w13, w2), = p.experts(QWEN)
    w, ids = routing_with_active(t, k, e, 8, seed=1, device=p.device)
    x = torch.randn(t, h, device=p.device).to(torch.bfloat16)
    kern.fused_experts(x, w13, w2, w, ids, backend=backend)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = kern.fused_experts(x, w13, w2, w, ids, backend=backend)
    for active, pad in ((8, 0), (128, 3), (40, 1), (9, t - 1)):
        w_new, ids_new = routing_with_active(t, k, e, active, seed=active, pad_rows=pad, device=p.device)
        w.copy_(w_new), ids.copy_(ids_new), x.copy_(torch.randn_like(x))
        graph.replay()
        eager = kern.fused_experts(x, w13, w2, w, ids, backend=backend)
        ref = kern.fused_experts_reference(x.float(), w13.float(), w2.float(), w, ids)
        equal = bool(torch.equal(out, eager))  # required of triton (deterministic kernels)
        p.record(kind="graph_replay", backend=backend, T=t, active=active, pad_rows=pad, equal_eager=equal,
                 rel_err=rel_err(out, ref), ok=rel_err(out, ref) < 1e-2 and (equal or backend != "triton"))
