"""``lynx bench kernels`` timing parts: ``stages``, ``time``, ``prefill``, ``sweep``, ``models``.

Every time is the median per call of CUDA-graph replays (:func:`lynx.kernels.kernel_bench.time_per_call`)
over rotated weight copies, so L2 cannot hold the weights; a dry run on CPU uses the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from lynx.bench.kernels_part import PREFILL_T, QWEN, KernelPart, kernels_module, old_config

Call = Callable[[], Any]
MakeCall = Callable[[Any, Any, Any, Any, Any], Call]  # (x, w13, w2, weights, ids) -> zero-arg call
Backend = tuple[str, MakeCall, bool]  # (label, make_call, use a CUDA graph)
Copies = Sequence[tuple[Any, Any]]  # rotated (w13, w2) weight copies


def time_moe(p: KernelPart, name: str, batch: int, actives: Sequence[int], backends: Sequence[Backend],
             copies: Copies, kind: str = "time") -> None:
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


def backend_calls(kern: ModuleType, which: Sequence[str] = ("triton", "triton-old", "grouped_mm", "2x_grouped_mm_only"),
                  ) -> list[Backend]:
    """(label, make_call(x, w13, w2, w, ids) -> zero-arg call, use_graph) per timed variant."""
    from lynx.kernels.triton_moe import fused_experts_triton

    def fused(backend: str) -> MakeCall:
        return lambda x, w13, w2, w, ids: (lambda: kern.fused_experts(x, w13, w2, w, ids, backend=backend))

    def old(x: Any, w13: Any, w2: Any, w: Any, ids: Any) -> Call:
        cfg = old_config(x.shape[0], w13.shape[2], w2.shape[2])
        return lambda: fused_experts_triton(x, w13, w2, w, ids, config=cfg)

    rows = {"triton": (fused("triton"), True), "triton-old": (old, True), "grouped_mm": (fused("grouped_mm"), True),
            "grouped_mm-eager": (fused("grouped_mm"), False), "2x_grouped_mm_only": (bare_grouped_mm, True)}
    return [(label, *rows[label]) for label in which]


def bare_grouped_mm(x: Any, w13: Any, w2: Any, w: Any, ids: Any) -> Call:
    """The baseline measured before: two grouped GEMMs + SiLU-mul on pre-sorted rows."""
    import torch
    import torch.nn.functional as F

    gmm = getattr(F, "grouped_mm", None) or torch._grouped_mm
    keys, perm = torch.sort(ids.reshape(-1))
    offs = torch.searchsorted(keys, torch.arange(w13.shape[0], device=x.device), right=True).to(torch.int32)
    xs = x[perm // ids.shape[1]].contiguous()
    inter = w2.shape[2]

    def call() -> Any:
        gu = gmm(xs, w13.transpose(1, 2), offs=offs)
        return gmm(F.silu(gu[:, :inter]) * gu[:, inter:], w2.transpose(1, 2), offs=offs)

    return call


def part_time(p: KernelPart) -> None:
    """Qwen3-30B-A3B layer at the decode batches (``--batches``, default 16 and 64) vs
    distinct active experts A, every backend."""
    kern = kernels_module()
    copies = p.experts(QWEN, copies=2 if p.dry else 4)
    actives = (4, 8, 12, 16) if p.dry else (8, 16, 32, 48, 64, 96, 128)
    # new and old Triton first at every batch (the fits this run is about), baselines after
    for which in (("triton", "triton-old"), ("grouped_mm", "2x_grouped_mm_only")):
        for batch in p.time_batches:
            time_moe(p, QWEN, batch, actives, backend_calls(kern, which), copies)


def part_prefill(p: KernelPart) -> None:
    """Prefill-sized batches with every expert active: where should "auto" switch to grouped_mm?"""
    kern = kernels_module()
    copies = p.experts(QWEN, copies=1 if p.dry else 2)
    e = p.shapes[QWEN][2]
    rows = backend_calls(kern, ("triton", "grouped_mm"))
    for batch in ((16, 64) if p.dry else PREFILL_T):
        time_moe(p, QWEN, batch, (e,), rows, copies, kind="prefill")


def part_stages(p: KernelPart) -> None:
    """Metadata step alone, then the per-stage breakdown of the Triton layer."""
    p.guard("align timing", time_align, p)
    copies = p.experts(QWEN, copies=2 if p.dry else 4)
    for batch in ((4,) if p.dry else (16, 64)):
        for active in ((4, 16) if p.dry else (8, 128)):
            if p.left() < 5:
                return p.record(kind="note", what=f"stages stopped at batch {batch} A={active}: budget")
            p.guard(f"breakdown b={batch} A={active}", breakdown, p, batch, active, copies)


def time_align(p: KernelPart) -> None:
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


def breakdown(p: KernelPart, batch: int, active: int, copies: Copies) -> None:
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


def part_sweep(p: KernelPart) -> None:
    """Triton tile/launch variants, one knob at a time from the default, at batch 16 and 64."""
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
            def make(x: Any, w13: Any, w2: Any, w: Any, ids: Any, cfg: Any = cfg) -> Call:
                return lambda: fused_experts_triton(x, w13, w2, w, ids, config=cfg)
            rows.append((f"triton[{label}]", make, True))
        time_moe(p, QWEN, batch, (4, 16) if p.dry else (8, 64, 128), rows, copies)


def part_models(p: KernelPart) -> None:
    """OLMoE, Mixtral and Qwen2-57B layer timing (Triton and grouped_mm) at ``--models-batches``."""
    kern = kernels_module()
    rows = backend_calls(kern, ("triton", "grouped_mm"))
    for name, actives in (("olmoe", (8, 16, 32, 48, 64)), ("mixtral", (2, 4, 6, 8)),
                          ("qwen2-57b", (8, 16, 32, 48, 64))):
        e = p.shapes[name][2]
        copies = p.experts(name, copies=2 if p.dry else 4)
        for batch in p.models_batches:
            time_moe(p, name, batch, [a for a in actives if a <= e], rows, copies)
        del copies
        p.torch.cuda.empty_cache() if p.device.type == "cuda" else None
