"""GPU check of Lynx's expert kernels: correctness, CUDA-graph timing vs active experts, tuning.

On the GPU machine, from the repo root (needs torch + triton; ~3.5 min on one H200):
    python scripts/gpu_kernels_check.py                 # writes $OUT/kernels.json if OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall-clock timing):
    python scripts/gpu_kernels_check.py --dry-run

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
Only ``lynx.kernels`` is imported (as a bare namespace package), never the engine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = {"check": 50, "stages": 35, "time": 55, "prefill": 25, "sweep": 35, "models": 10}  # budget shares
FULL = {  # name: (H, I, E, k)
    "qwen3-30b-a3b": (2048, 768, 128, 8), "olmoe": (2048, 1024, 64, 8), "mixtral": (4096, 14336, 8, 2)}
TINY = {"qwen3-30b-a3b": (64, 32, 16, 4), "olmoe": (64, 48, 8, 4), "mixtral": (128, 64, 4, 2)}
QWEN = "qwen3-30b-a3b"
PREFILL_T = (256, 512, 1024, 2048, 4096)


# ----------------------------------------------------------------------------- child side
class Part:
    """State of one part run in a child process; every record is flushed to JSON at once."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.args, self.torch = args, torch
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference must be real fp32
        self.dry = args.dry_run
        self.device = torch.device(args.device)
        self.shapes = TINY if self.dry else FULL
        self.records: list[dict] = []
        self.deadline = args.deadline

    def left(self) -> float:
        return self.deadline - time.time()

    def record(self, **rec: object) -> None:
        self.records.append(rec)
        print("  " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()),
              flush=True)
        Path(self.args.result).write_text(json.dumps(self.records))

    def guard(self, what: str, fn, *a, **kw):  # noqa: ANN001, ANN201 - any callable
        """Run ``fn``; on error record it (with a short traceback) and return None."""
        try:
            return fn(*a, **kw)
        except Exception as exc:  # keep going: one failing backend must not hide the rest
            tb = traceback.format_exc(limit=4)
            print(f"!! {what} failed: {type(exc).__name__}: {exc}\n{tb}", flush=True)
            self.record(kind="error", what=what, error=f"{type(exc).__name__}: {exc}"[:500])
            return None

    def experts(self, name: str, copies: int = 1, dtype=None):  # noqa: ANN001, ANN201
        """``copies`` random (w13, w2) sets of model ``name`` (scaled so outputs are O(1))."""
        torch = self.torch
        h, i, e, _ = self.shapes[name]
        dtype = dtype or torch.bfloat16
        gen = torch.Generator(self.device).manual_seed(1234)
        return [((torch.randn(e, 2 * i, h, device=self.device, generator=gen) / h**0.5).to(dtype),
                 (torch.randn(e, h, i, device=self.device, generator=gen) / i**0.5).to(dtype))
                for _ in range(copies)]


def rel_err(out, ref) -> float:  # noqa: ANN001
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


def old_config(batch: int, h: int, i: int):  # noqa: ANN201
    """The Triton pipeline as measured before (545f084): legacy align, sum kernel, 4 stages."""
    from lynx.kernels.moe_config import default_config

    return default_config(batch, h, i).with_(align="legacy", fuse_sum=False, stages1=4, stages2=4)


def random_routing(torch, seed: int, device):  # noqa: ANN001, ANN201
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


def part_check(p: Part) -> None:
    # the new paths first (a budget stop cuts the broad backend sweep at the end, not these)
    p.guard("align exactness", check_align, p)
    if p.device.type == "cuda":
        for t in (16, 64):
            for backend in ("triton", "grouped_mm"):
                p.guard(f"graph replay {backend} T={t}", check_graph_replay, p, backend, t)
    p.guard("modes identical", check_modes, p)
    p.guard("fp32", check_fp32, p)
    torch, kern = p.torch, sys.modules["lynx.kernels"]
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


def check_fp32(p: Part) -> None:
    """fp32 Triton path vs the fp32 reference (no TF32), and repeat-run determinism."""
    torch, kern = p.torch, sys.modules["lynx.kernels"]
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


def check_align(p: Part) -> None:
    """New metadata kernels (and the legacy one) vs the PyTorch reference, on the device."""
    torch = p.torch
    from lynx.kernels.moe_align import moe_align_reference
    from lynx.kernels.moe_align_legacy import moe_align_legacy
    from lynx.kernels.triton_moe_align import moe_align_triton

    def same(a, b) -> bool:  # noqa: ANN001
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


def check_modes(p: Part) -> None:
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


def check_graph_replay(p: Part, backend: str, t: int) -> None:
    """Capture once with one routing, overwrite the inputs in place, replay: must follow."""
    torch, kern = p.torch, sys.modules["lynx.kernels"]
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


def time_moe(p: Part, name: str, batch: int, actives, backends, copies, kind: str = "time") -> None:  # noqa: ANN001
    """Time each backend at each active-expert count (CUDA graph; eager variants marked)."""
    torch = p.torch
    from lynx.kernels.kernel_bench import routing_with_active, time_per_call

    h, i, e, k = p.shapes[name]
    rounds = 1 if (p.dry or batch > 256) else 2
    for active in actives:
        if active < k or active > min(e, batch * k):
            continue
        w, ids = routing_with_active(batch, k, e, active, seed=active, device=p.device)
        x = torch.randn(batch, h, device=p.device).to(torch.bfloat16)
        for label, make_call, graph in backends:
            if p.left() < 4:
                return p.record(kind="note", what=f"timing stopped at {name} b={batch} A={active}: budget")
            calls = [make_call(x, w13, w2, w, ids) for w13, w2 in copies] * rounds
            sec = p.guard(f"time {label} {name} b={batch} A={active}", time_per_call, calls, p.device,
                          graph=graph and p.device.type == "cuda")
            if sec is not None:
                bw = active * 3 * h * i * 2 / sec / 1e12
                p.record(kind=kind, model=name, backend=label, batch=batch, active=active,
                         us=sec * 1e6, weight_TBps=bw)


def backend_calls(kern, which=("triton", "triton-old", "grouped_mm", "2x_grouped_mm_only")):  # noqa: ANN001, ANN201
    """(label, make_call(x, w13, w2, w, ids) -> zero-arg call, use_graph) per timed variant."""
    from lynx.kernels.triton_moe import fused_experts_triton

    def fused(backend: str):  # noqa: ANN202
        return lambda x, w13, w2, w, ids: (lambda: kern.fused_experts(x, w13, w2, w, ids, backend=backend))

    def old(x, w13, w2, w, ids):  # noqa: ANN001, ANN202
        cfg = old_config(x.shape[0], w13.shape[2], w2.shape[2])
        return lambda: fused_experts_triton(x, w13, w2, w, ids, config=cfg)

    rows = {"triton": (fused("triton"), True), "triton-old": (old, True), "grouped_mm": (fused("grouped_mm"), True),
            "grouped_mm-eager": (fused("grouped_mm"), False), "2x_grouped_mm_only": (bare_grouped_mm, True)}
    return [(label, *rows[label]) for label in which]


def bare_grouped_mm(x, w13, w2, w, ids):  # noqa: ANN001, ANN201
    """The baseline measured before: two grouped GEMMs + SiLU-mul on pre-sorted rows."""
    import torch
    import torch.nn.functional as F

    gmm = getattr(F, "grouped_mm", None) or torch._grouped_mm
    keys, perm = torch.sort(ids.reshape(-1))
    offs = torch.searchsorted(keys, torch.arange(w13.shape[0], device=x.device), right=True).to(torch.int32)
    xs = x[perm // ids.shape[1]].contiguous()
    inter = w2.shape[2]

    def call():  # noqa: ANN202
        gu = gmm(xs, w13.transpose(1, 2), offs=offs)
        return gmm(F.silu(gu[:, :inter]) * gu[:, inter:], w2.transpose(1, 2), offs=offs)

    return call


def part_time(p: Part) -> None:
    kern = sys.modules["lynx.kernels"]
    copies = p.experts(QWEN, copies=2 if p.dry else 4)
    actives = (4, 8, 12, 16) if p.dry else (8, 16, 32, 48, 64, 96, 128)
    # new and old Triton first at both batches (the fits this run is about), baselines after
    for which in (("triton", "triton-old"), ("grouped_mm", "2x_grouped_mm_only")):
        for batch in ((4, 8) if p.dry else (16, 64)):
            time_moe(p, QWEN, batch, actives, backend_calls(kern, which), copies)


def part_prefill(p: Part) -> None:
    """Prefill-sized batches with every expert active: where should "auto" switch to grouped_mm?"""
    kern = sys.modules["lynx.kernels"]
    copies = p.experts(QWEN, copies=1 if p.dry else 2)
    e = p.shapes[QWEN][2]
    rows = backend_calls(kern, ("triton", "grouped_mm"))
    for batch in ((16, 64) if p.dry else PREFILL_T):
        time_moe(p, QWEN, batch, (e,), rows, copies, kind="prefill")


def part_stages(p: Part) -> None:
    p.guard("align timing", time_align, p)
    copies = p.experts(QWEN, copies=2 if p.dry else 4)
    for batch in ((4,) if p.dry else (16, 64)):
        for active in ((4, 16) if p.dry else (8, 128)):
            if p.left() < 5:
                return p.record(kind="note", what=f"stages stopped at batch {batch} A={active}: budget")
            p.guard(f"breakdown b={batch} A={active}", breakdown, p, batch, active, copies)


def time_align(p: Part) -> None:
    """Metadata step alone: legacy one-hot kernel vs the new single-program and chunked kernels."""
    from functools import partial

    from lynx.kernels.kernel_bench import routing_with_active, time_per_call
    from lynx.kernels.moe_align_legacy import moe_align_legacy
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe_align import SMALL_MAX_PAIRS, moe_align_triton

    h, i, e, k = p.shapes[QWEN]
    for batch in ((1, 4, 16) if p.dry else (1, 16, 64) + PREFILL_T[::2]):
        w, ids = routing_with_active(batch, k, e, min(e, batch * k), seed=5, device=p.device)
        block_m = default_config(batch, h, i).block_m
        variants = {"chunked": partial(moe_align_triton, ids, w, e, block_m, chunked=True)}
        if batch * k <= SMALL_MAX_PAIRS:
            variants["small"] = partial(moe_align_triton, ids, w, e, block_m, chunked=False)
        if batch * k <= 8192:
            variants["legacy"] = partial(moe_align_legacy, ids, w, e, block_m)
        for name, call in variants.items():
            if p.left() < 4:
                return p.record(kind="note", what=f"align timing stopped at T={batch}: budget")
            sec = p.guard(f"align {name} T={batch}", time_per_call, [call] * 8, p.device)
            if sec is not None:
                p.record(kind="align_time", kernel=name, batch=batch, pairs=batch * k, block_m=block_m,
                         us=sec * 1e6)


def breakdown(p: Part, batch: int, active: int, copies) -> None:  # noqa: ANN001
    """Per-stage time of the Triton layer (each stage captured alone, new and old variants)."""
    torch = p.torch
    from lynx.kernels import triton_moe as tm
    from lynx.kernels.kernel_bench import routing_with_active, time_per_call
    from lynx.kernels.moe_config import default_config

    h, i, e, k = p.shapes[QWEN]
    w, ids = routing_with_active(batch, k, e, active, seed=3, device=p.device)
    x = torch.randn(batch, h, device=p.device).to(torch.bfloat16)
    new = default_config(batch, h, i)
    old = old_config(batch, h, i)
    fused = tm.make_routing(ids, w, e, new)  # derives blocks in the GEMMs
    given = tm.make_routing(ids, w, e, new.with_(align="kernel"))  # metadata computed once, up front
    legacy = tm.make_routing(ids, w, e, old)
    counters = torch.zeros(tm.sum_counters(h, new, p.device).numel(), dtype=torch.int32, device=p.device)
    inter = tm.gate_up_silu(x, copies[0][0], given, new)
    pair_out, _ = tm.down_weighted(inter, copies[0][1], given, new)
    reps = 1 if p.dry else 2
    per_copy = lambda f: [lambda c=c: f(c) for c in copies] * reps  # noqa: E731 - rotated weights
    stages = {
        "align legacy (old)": [lambda: tm.make_routing(ids, w, e, old)] * (len(copies) * reps),
        "align small kernel": [lambda: tm.make_routing(ids, w, e, new.with_(align="kernel"))] * (len(copies) * reps),
        "gate_up given (old)": per_copy(lambda c: tm.gate_up_silu(x, c[0], legacy, old)),
        "gate_up given": per_copy(lambda c: tm.gate_up_silu(x, c[0], given, new)),
        "gate_up fused-align": per_copy(lambda c: tm.gate_up_silu(x, c[0], fused, new)),
        "down given (old)": per_copy(lambda c: tm.down_weighted(inter, c[1], legacy, old)),
        "down given": per_copy(lambda c: tm.down_weighted(inter, c[1], given, new)),
        "down fused-align": per_copy(lambda c: tm.down_weighted(inter, c[1], fused, new)),
        "down fused-align+sum": per_copy(lambda c: tm.down_weighted(inter, c[1], fused, new, counters, x.dtype)),
        "sum_topk": [lambda: tm.sum_topk(pair_out, given.weights, batch, k, x.dtype, new)] * (len(copies) * reps),
    }
    for stage, calls in stages.items():
        if p.left() < 3:
            return p.record(kind="note", what=f"breakdown stopped at {stage}: budget")
        sec = p.guard(f"stage {stage}", time_per_call, calls, p.device, graph=p.device.type == "cuda")
        if sec is None:
            continue
        frac = 2 / 3 if stage.startswith("gate_up") else (1 / 3 if stage.startswith("down") else 0.0)
        bw = active * 3 * h * i * 2 * frac / sec / 1e12
        p.record(kind="stage", model=QWEN, batch=batch, active=active, stage=stage, us=sec * 1e6, weight_TBps=bw)


def part_sweep(p: Part) -> None:
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe import fused_experts_triton

    h, i, _, _ = p.shapes[QWEN]
    copies = p.experts(QWEN, copies=2 if p.dry else 4)
    # one knob at a time, most informative first (the budget may cut the tail)
    variants = {
        64: [("block_m", 16), ("block_m", 32), ("stages1", 4), ("fuse_sum", False), ("align", "kernel"),
             ("ctas_per_sm", 3), ("block_n1", 64), ("block_n2", 128), ("block_k1", 64), ("block_k2", 64)],
        16: [("fuse_sum", False), ("align", "kernel"), ("ctas_per_sm", 3), ("ctas_per_sm", 1), ("block_n1", 64),
             ("block_n2", 128), ("block_k1", 256), ("stages1", 3), ("stages2", 3), ("warps2", 8)],
    }
    if p.dry:
        variants = {4: [("ctas_per_sm", 0), ("block_m", 32), ("fuse_sum", False)]}
    for batch, knobs in variants.items():
        base = default_config(batch, h, i)
        configs = {"default": base}
        configs.update({f"{f}={v}": base.with_(**{f: v}) for f, v in knobs if getattr(base, f) != v})
        rows = []
        for label, cfg in configs.items():
            def make(x, w13, w2, w, ids, cfg=cfg):  # noqa: ANN001, ANN202
                return lambda: fused_experts_triton(x, w13, w2, w, ids, config=cfg)
            rows.append((f"triton[{label}]", make, True))
        time_moe(p, QWEN, batch, (4, 16) if p.dry else (8, 64, 128), rows, copies)


def part_models(p: Part) -> None:
    kern = sys.modules["lynx.kernels"]
    rows = backend_calls(kern, ("triton", "grouped_mm"))
    for name, actives in (("olmoe", (8, 16, 32, 48, 64)), ("mixtral", (2, 4, 6, 8))):
        e = p.shapes[name][2]
        copies = p.experts(name, copies=2 if p.dry else 4)
        for batch in ((4,) if p.dry else (1, 16)):
            time_moe(p, name, batch, [a for a in actives if a <= e], rows, copies)
        del copies
        p.torch.cuda.empty_cache() if p.device.type == "cuda" else None


def import_kernels(interpret: bool) -> None:
    """Import only ``lynx.kernels``: ``lynx`` becomes a bare namespace (skips the engine)."""
    if interpret:
        os.environ["TRITON_INTERPRET"] = "1"  # before any lynx.kernels.triton_* import
    pkg = types.ModuleType("lynx")
    pkg.__path__ = [str(ROOT / "src" / "lynx")]
    sys.modules["lynx"] = pkg
    import lynx.kernels  # noqa: F401

    if interpret:
        from lynx.kernels.moe_interpret import patch_interpreter_sort
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()
        patch_interpreter_sort()


def child_main(args: argparse.Namespace) -> int:
    import_kernels(interpret=args.device == "cpu")
    args.start = time.time()
    p = Part(args)
    {"check": part_check, "stages": part_stages, "time": part_time, "prefill": part_prefill,
     "sweep": part_sweep, "models": part_models}[args.part](p)
    return 0


# ----------------------------------------------------------------------------- summary
def summarize_extra(records: list[dict], dry: bool) -> dict:
    """Tables this script adds to ``kernel_report.summarize``: old vs new, crossover."""
    from lynx.kernels.kernel_bench import linear_fit

    out: dict = {}
    checks = [r for r in records if r.get("kind") in ("align_check", "modes")]
    if checks:
        print("\n=== block metadata vs moe_align_reference / Triton modes bit-identical ===")
        for r in checks:
            if r["kind"] == "align_check":
                print(f"  align {r['kernel']:8s} {r['cases']:4d} random cases  "
                      + ("ok" if r["ok"] else f"FAILING seeds {r['failing_seeds']}"))
        modes = [r for r in checks if r["kind"] == "modes"]
        if modes:
            bad = [r for r in modes if not r["ok"]]
            print(f"  fused/kernel/legacy x sum modes: {len(modes)} shapes, {len(bad)} differing"
                  + "".join(f"\n    T={r['T']} A={r['active']}: {r['differing']}" for r in bad))
    align = [r for r in records if r.get("kind") == "align_time"]
    if align:
        print("\n=== metadata (align) step alone, us per call (CUDA graph) — old legacy vs new ===")
        print(f"  {'T':>5s} {'pairs':>6s} {'BM':>3s} {'legacy':>8s} {'small':>8s} {'chunked':>8s}")
        for batch in sorted({r["batch"] for r in align}):
            rs = {r["kernel"]: r for r in align if r["batch"] == batch}
            any_r = next(iter(rs.values()))
            cells = " ".join(f"{rs[n]['us']:8.1f}" if n in rs else f"{'-':>8s}" for n in ("legacy", "small", "chunked"))
            print(f"  {batch:5d} {any_r['pairs']:6d} {any_r['block_m']:3d} {cells}")
    stages = [r for r in records if r.get("kind") == "stage"]
    if stages:
        print("\n=== metadata cost inside the layer (from the stage breakdown) ===")
        for key in sorted({(r["batch"], r["active"]) for r in stages}):
            us = {r["stage"]: r["us"] for r in stages if (r["batch"], r["active"]) == key}

            def g(stage: str, us: dict = us) -> float:
                return us.get(stage, float("nan"))

            old = g("align legacy (old)") + g("gate_up given (old)") + g("down given (old)") + g("sum_topk")
            new = g("gate_up fused-align") + g("down fused-align+sum")
            print(f"  batch {key[0]} A={key[1]}: old pipeline {old:.1f}us (align {g('align legacy (old)'):.1f}) -> "
                  f"new {new:.1f}us; in-kernel metadata costs gate_up {g('gate_up fused-align') - g('gate_up given'):+.1f}"
                  f"us, down {g('down fused-align') - g('down given'):+.1f}us; fused k-sum "
                  f"{g('down fused-align+sum') - g('down fused-align'):+.1f}us vs sum kernel {g('sum_topk'):.1f}us")
    times = [r for r in records if r.get("kind") == "time" and r["model"] == QWEN
             and r["backend"] in ("triton", "triton-old")]
    if times:
        print("\n=== Triton layer fit time = a + b*A, new default vs previous pipeline ===")
        out["fit_old_new"] = []
        for batch in sorted({r["batch"] for r in times}):
            line = []
            for backend in ("triton-old", "triton"):
                rs = sorted((r for r in times if r["batch"] == batch and r["backend"] == backend),
                            key=lambda r: r["active"])
                if len(rs) >= 2:
                    a, b, r2 = linear_fit([r["active"] for r in rs], [r["us"] for r in rs])
                    out["fit_old_new"].append(dict(batch=batch, backend=backend, a_us=a, b_us=b, r2=r2))
                    line.append(f"{backend}: a {a:5.1f}us b {b:4.2f}us/expert (R2 {r2:.3f})")
            print(f"  batch {batch}: " + "   ".join(line))
    prefill = [r for r in records if r.get("kind") == "prefill"]
    if prefill:
        print("\n=== prefill crossover, all experts active (us per layer call) ===")
        print(f"  {'T':>5s} {'pairs':>6s} {'triton':>9s} {'grouped_mm':>10s}  winner")
        k = FULL[QWEN][3] if not dry else TINY[QWEN][3]
        wins = []
        for batch in sorted({r["batch"] for r in prefill}):
            us = {r["backend"]: r["us"] for r in prefill if r["batch"] == batch}
            if "triton" in us and "grouped_mm" in us:
                win = "triton" if us["triton"] <= us["grouped_mm"] else "grouped_mm"
                wins.append((batch * k, win))
                print(f"  {batch:5d} {batch * k:6d} {us['triton']:9.1f} {us['grouped_mm']:10.1f}  {win} "
                      f"({us['grouped_mm'] / us['triton']:.2f}x)")
        if wins:
            first_loss = next((pairs for pairs, w in wins if w != "triton"), None)
            below = [pairs for pairs, w in wins if first_loss is None or pairs < first_loss]
            suggest = max(below) if below else None
            out["suggest_auto_triton_max_pairs"] = suggest
            print(f"  -> AUTO_TRITON_MAX_PAIRS = {suggest} (largest measured P below the first grouped_mm win"
                  + (f" at P={first_loss})" if first_loss else "; Triton won every row)"))
    return out


# ----------------------------------------------------------------------------- parent side
def parent_main(args: argparse.Namespace) -> int:
    start = time.time()
    deadline = start + args.budget
    parts = [x for x in args.parts.split(",") if x]
    results: dict[str, list[dict]] = {}
    for n, part in enumerate(parts):
        share = PARTS[part] / sum(PARTS[q] for q in parts[n:])
        part_deadline = time.time() + (deadline - time.time()) * share
        result = Path(args.tmp) / f"kernels_{part}.json"
        result.unlink(missing_ok=True)
        cmd = [sys.executable, __file__, "--part", part, "--result", str(result), "--deadline", str(part_deadline),
               "--device", args.device] + (["--dry-run"] if args.dry_run else [])
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
    env = {"argv": sys.argv, "wall_s": None}
    import_kernels(interpret=False)
    try:
        import torch

        env.update(torch=torch.__version__, cuda=torch.cuda.is_available() and torch.cuda.get_device_name())
        import triton

        env["triton"] = triton.__version__
    except Exception as exc:  # informational only
        env["env_error"] = repr(exc)
    summary: dict = {}
    records = [r for recs in results.values() for r in recs]
    try:
        from lynx.kernels.kernel_report import summarize

        summary = summarize(results)
    except Exception:  # the raw records still get written
        traceback.print_exc()
    try:
        summary.update(summarize_extra(records, args.dry_run))
    except Exception:
        traceback.print_exc()
    env["wall_s"] = round(time.time() - start, 1)
    print(f"\ntotal wall time {env['wall_s']}s")
    out_dir = os.environ.get("OUT")
    if out_dir:
        path = Path(out_dir) / "kernels.json"
        path.write_text(json.dumps({"env": env, "parts": results, **summary}, indent=1, default=str))
        print(f"wrote {path}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="tiny shapes (CPU: Triton interpreter)")
    ap.add_argument("--device", default=None, help="cuda (default) or cpu (default with --dry-run)")
    ap.add_argument("--budget", type=float, default=200.0, help="total seconds for all parts")
    ap.add_argument("--parts", default=",".join(PARTS))
    ap.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"))
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    return child_main(args) if args.part else parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
