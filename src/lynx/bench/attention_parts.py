"""The parts of ``lynx bench attention`` (``check``, ``graph``, ``time``, ``sweep``), each run in a child process.

See :mod:`lynx.bench.attention` for what each part measures.
"""

from __future__ import annotations

import argparse
from typing import Any

from lynx.bench.gpu_check import RunContext

HBM_TBPS = 4.18
MODELS = {"qwen3-30b-a3b": (32, 4, 128), "olmoe": (16, 16, 128), "llama-8b": (32, 8, 128)}  # Hq, Hkv, D
TINY = {"qwen3-30b-a3b": (8, 1, 32), "olmoe": (4, 4, 16), "llama-8b": (4, 2, 16)}
PAGE = 16


class AttentionPart(RunContext):
    """One part in a child process; every record is flushed to the result file at once.

    ``args`` carries ``dry_run``, ``deadline`` and ``result``.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        super().__init__(args.deadline, args.result)
        torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 reference must be real fp32
        self.torch, self.args, self.dry = torch, args, args.dry_run
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.models = TINY if self.dry else MODELS

    def lens(self, batch: int, top: int, seed: int) -> list[int]:
        """Mixed context lengths in 1..top, always including 1 and top once batch allows."""
        gen = self.torch.Generator().manual_seed(seed)
        out = self.torch.randint(1, top + 1, (batch,), generator=gen).tolist()
        return ([1, top] + out[2:])[:batch] if batch > 1 else [top]


def part_check(p: AttentionPart) -> None:
    """Triton vs the fp32 reference on poisoned caches: models x batch x width x dtype, sliding window."""
    from lynx.kernels.paged_attention import paged_decode_attention, paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import make_paged_case, rel_err

    torch = p.torch
    top, widths = (40, (4, 8)) if p.dry else (4096, (8192 // PAGE, 32768 // PAGE))
    plans = [(m, b, w, torch.bfloat16, None) for w in widths for b in ((1, 3) if p.dry else (1, 16, 64))
             for m in p.models]
    plans += [("qwen3-30b-a3b", b, widths[0], torch.float32, None) for b in ((3,) if p.dry else (16, 64))]
    plans += [("llama-8b", 3 if p.dry else 16, widths[1], dt, 8 if p.dry else 1024)
              for dt in (torch.bfloat16, torch.float32)]
    for i, (name, batch, width, dtype, window) in enumerate(plans):
        if p.left() < 4:
            return p.record(kind="note", what=f"check stopped before {len(plans) - i} cases: budget")
        hq, hkv, d = p.models[name]
        case = make_paged_case(p.lens(batch, top, seed=i), hq, hkv, d, PAGE, width, window=window, dtype=dtype,
                               device=p.device, poison=True, seed=i)
        narrow = -(-int(case.context_lens.max()) // PAGE)  # same result, far cheaper to gather
        q, k, v, tables, lens = case.args(clean=True)
        ref = paged_decode_attention_reference(q.float(), k.float(), v.float(), tables[:, :narrow], lens,
                                               d**-0.5, window)
        out = p.guard(f"check {name} b={batch} w={width}", paged_decode_attention, *case.args(), d**-0.5, window,
                      backend="triton")
        two = p.guard(f"check two-launch {name} b={batch} w={width}", two_launch, case, d**-0.5, window)
        if out is not None:
            err, tol = rel_err(out, ref), (1e-5 if dtype == torch.float32 else 1e-2)
            finite = bool(torch.isfinite(out.float()).all())
            same = two is not None and bool(torch.equal(out, two))  # one-launch merge == reduce kernel
            p.record(kind="check", model=name, batch=batch, width=width * PAGE, dtype=str(dtype)[6:],
                     window=window, rel_err=err, finite=finite, equal_two_launch=same,
                     ok=finite and err < tol and same)


def two_launch(case: Any, scale: float, window: int | None) -> Any:
    """The same call with the partitions merged by the separate reduce kernel."""
    from lynx.kernels.paged_attention_triton import _num_sms, default_config, paged_decode_attention_triton

    q, k = case.q, case.k_cache
    cfg = default_config(q.shape[0], q.shape[1], k.shape[2], q.shape[2], case.block_tables.shape[1] * k.shape[1],
                         _num_sms(q.device))
    return paged_decode_attention_triton(*case.args(), scale, window, config=cfg.with_(fused_reduce=False))


def part_graph(p: AttentionPart) -> None:
    """Capture once, refill inputs in place (with padding rows), replay: match the reference, equal eager."""
    from lynx.kernels.paged_attention import paged_decode_attention, paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import make_paged_case, rel_err

    torch = p.torch
    hq, hkv, d = p.models["qwen3-30b-a3b"]
    batch, width, top = (4, 8, 40) if p.dry else (16, 8192 // PAGE, 4096)
    cases = [make_paged_case(p.lens(batch, top, s), hq, hkv, d, PAGE, width, dtype=torch.bfloat16,
                             device=p.device, seed=s) for s in range(4)]
    blocks = max(c.k_cache.shape[0] for c in cases)
    k = torch.zeros(blocks, PAGE, hkv, d, dtype=torch.bfloat16, device=p.device)  # static buffers
    v, q = torch.zeros_like(k), cases[0].q.clone()
    tables, lens = cases[0].block_tables.clone(), cases[0].context_lens.clone()

    def fill(c: Any, pad_rows: int) -> None:
        n = c.k_cache.shape[0]
        k[:n].copy_(c.k_cache), v[:n].copy_(c.v_cache), q.copy_(c.q)
        tables.copy_(c.block_tables), lens.copy_(c.context_lens)
        if pad_rows:  # the engine's CUDA-graph padding rows
            tables[-pad_rows:] = 0
            lens[-pad_rows:] = 1

    def call() -> Any:
        return paged_decode_attention(q, k, v, tables, lens, d**-0.5, None, backend="triton")

    fill(cases[0], 0)
    if p.device.type != "cuda":  # dry run: no graphs, just the refill path
        replay, out = call, None
    else:
        call()
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = call()
        replay = graph.replay
    for step, c in enumerate(cases[1:]):
        fill(c, pad_rows=step)
        got = replay() if out is None else (replay(), out)[1]
        eager = call()
        ref = paged_decode_attention_reference(q.float(), k.float(), v.float(), tables, lens, d**-0.5, None)
        err, equal = rel_err(got, ref), bool(torch.equal(got, eager))
        p.record(kind="graph", step=step, pad_rows=step, rel_err=err, equal_eager=equal, ok=err < 1e-2 and equal)


def time_case(p: AttentionPart, name: str, batch: int, ctx: int, width: int, configs: dict[str, Any],
              with_torch: bool) -> None:
    """Median graph-replay time per call of Triton (each config) and optionally the torch path."""
    from lynx.kernels.kernel_bench import time_per_call
    from lynx.kernels.paged_attention import paged_decode_attention_reference
    from lynx.kernels.paged_attention_cases import kv_bytes_needed, make_paged_case
    from lynx.kernels.paged_attention_triton import paged_decode_attention_triton

    torch = p.torch
    hq, hkv, d = p.models[name]
    need = kv_bytes_needed([ctx] * batch, hkv, d, 2)
    copies = 1 if p.dry else max(1, min(64, -(-(256 << 20) // need)))  # >= 256 MB touched: L2 (50 MB) cannot hold K/V
    cases = [make_paged_case([ctx] * batch, hq, hkv, d, PAGE, width, dtype=torch.bfloat16, device=p.device,
                             seed=s, spare_blocks=0) for s in range(copies)]
    rows = [(label, lambda c, cfg=cfg: paged_decode_attention_triton(*c.args(), d**-0.5, None, config=cfg))
            for label, cfg in configs.items()]
    if with_torch:
        rows.append(("torch", lambda c: paged_decode_attention_reference(*c.args(), d**-0.5, None)))
    for label, fn in rows:
        if p.left() < 3:
            return p.record(kind="note", what=f"timing stopped at {name} b={batch} ctx={ctx} {label}: budget")
        calls = [lambda c=c, fn=fn: fn(c) for c in cases]
        sec = p.guard(f"time {label} {name} b={batch} ctx={ctx}", time_per_call, calls, p.device,
                      graph=p.device.type == "cuda")
        if sec is not None:
            p.record(kind="time", model=name, backend=label, batch=batch, ctx=ctx, width=width * PAGE, us=sec * 1e6,
                     TBps=need / sec / 1e12, hbm_frac=need / sec / 1e12 / HBM_TBPS, copies=copies)


def part_time(p: AttentionPart) -> None:
    """Triton vs gather+SDPA at batch 16/64 x context 512/2048 (+ batch 1 at 4096), three models."""
    width = 8 if p.dry else 8192 // PAGE
    shapes = [(16, 512), (64, 512), (16, 2048), (64, 2048), (1, 4096)] if not p.dry else [(2, 16), (3, 40)]
    for name in ("qwen3-30b-a3b", "llama-8b", "olmoe"):
        for batch, ctx in shapes:
            p.guard(f"time {name}", time_case, p, name, batch, ctx, width, {"triton": None}, True)


def part_sweep(p: AttentionPart) -> None:
    """Launch-config variants, one knob at a time from the default, on three shapes."""
    from lynx.kernels.paged_attention_triton import _num_sms, default_config

    hq, hkv, d = p.models["qwen3-30b-a3b"]
    width = 8 if p.dry else 8192 // PAGE
    for batch, ctx in ([(2, 40)] if p.dry else [(16, 2048), (64, 512), (1, 4096)]):
        base = default_config(batch, hq, hkv, d, width * PAGE, _num_sms(p.device))
        knobs = [("partition_size", (64, 128, 256, 512, 1024)), ("block_n", (32, 64, 128)), ("num_warps", (2, 4, 8)),
                 ("num_stages", (1, 2, 3, 4))]
        configs = {"default": base}
        for knob, values in knobs:
            for val in values:
                cfg = base.with_(**{knob: val})
                if cfg != base and cfg.partition_size % cfg.block_n == 0 and (not p.dry or val <= 64):
                    configs[f"{knob}={val}"] = cfg
        p.guard(f"sweep b={batch} ctx={ctx}", time_case, p, "qwen3-30b-a3b", batch, ctx, width, configs, False)


def part_decode(p: AttentionPart) -> None:
    """Launch-config variants at the engine's decode shapes: short (prompt 256) and DocQA-long rows."""
    from lynx.kernels.paged_attention_triton import _num_sms, default_config

    shapes = [(2, 20, 32)] if p.dry else [(16, 300, 512), (64, 300, 512), (16, 2000, 4096), (64, 2000, 4096)]
    for name in ("qwen3-30b-a3b", "olmoe"):
        hq, hkv, d = p.models[name]
        for batch, ctx, width in shapes:
            base = default_config(batch, hq, hkv, d, width, _num_sms(p.device))
            configs = {"default": base, "two-launch": base.with_(fused_reduce=False)}
            for knob, values in (("partition_size", (64, 128, 256, 512, 1024)), ("block_n", (32, 64)),
                                 ("num_warps", (2, 8)), ("num_stages", (3,))):
                for val in values:
                    cfg = base.with_(**{knob: val})
                    if cfg != base and cfg.partition_size % cfg.block_n == 0 and cfg.partition_size <= max(width, 64):
                        configs[f"{knob}={val}"] = cfg
            p.guard(f"decode {name} b={batch} ctx={ctx}", time_case, p, name, batch, ctx, width // PAGE, configs, False)
