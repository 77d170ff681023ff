"""GPU check of the skinny decode GEMM (``lynx.kernels.skinny_gemm``) against cuBLAS.

On the GPU machine, from the repo root (needs torch + triton; < 3 min on one H200, compiles
included):
    PYTHONPATH=src python scripts/gpu_linear_check.py            # + $OUT/linear.json when OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall clock, no graphs):
    python scripts/gpu_linear_check.py --dry-run

Phases (every record also goes to the JSON; failures are recorded, not fatal):
  hbm     read bandwidth from ``lynx.bench.roofline.measure_hbm_bandwidth`` (median time of
          summing a 4 GiB bf16 tensor).
  check   every shape x T with the default config on fresh random bf16 inputs vs an fp32
          ``F.linear`` (TF32 off): rel. error < 1e-2 (bf16 out) / 1e-4 (fp32 out), cuBLAS's
          error alongside; repeat calls bit-identical; fp32 inputs (IEEE dot, 1e-5); a bias;
          CUDA-graph replays with new inputs (split-K counters must reset every replay).
  time    per (shape, T): one CUDA graph of C back-to-back calls, each on its own weight copy
          (C >= 24, copies x bytes >= 3 x L2, so every call streams its weights from HBM; the
          622 MB LM head gets 6 copies), replayed; median per-call us from CUDA events
          (``lynx.kernels.kernel_bench.time_per_call``) for cuBLAS (``F.linear``), the Triton
          default config and a sweep.
  sweep   one knob at a time around each default (split_k x2 / /2, block_n x2 / /2 at
          constant stage bytes, block_k x2 / /2, stages +-1, warps 8 / 2), interleaved over
          all (shape, T) so the compile budget (``--max-variants``, default 60 compiled
          kernel variants in total, checks and defaults included) is spread evenly; a
          candidate that needs no new compile (e.g. another split count) is always timed.
The compact table (shape, T, cuBLAS us, default us, best us + config, TB/s) is printed last.
``lynx`` is imported as a bare namespace package: only ``lynx.kernels``, ``lynx.bench.gpu_check``
(records, budget, error guard) and ``lynx.bench.roofline`` are loaded, never the engine or models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import types
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# lynx from this checkout as a bare namespace package: its __init__ would import the engine
sys.modules["lynx"] = types.ModuleType("lynx")
sys.modules["lynx"].__path__ = [str(ROOT / "src" / "lynx")]

from lynx.bench.gpu_check import RunContext  # noqa: E402  (after the bare lynx; imports no torch/triton)

# name: (K, N, fp32 out). Order = priority (a budget stop cuts the end).
SHAPES = {
    "q30b.qkv": (2048, 5120, False), "q30b.o": (4096, 2048, False), "q30b.router": (2048, 128, True),
    "olmoe.qkv": (2048, 6144, False), "olmoe.o": (2048, 2048, False), "olmoe.router": (2048, 64, True),
    "q4b.qkv": (2560, 6144, False), "q4b.o": (4096, 2560, False), "q4b.gate_up": (2560, 19456, False),
    "q4b.down": (9728, 2560, False), "lm_head": (2048, 151936, False),
}
BIG_BYTES = 4 << 30  # at most this much of weight copies per shape (the LM head gets 6)
BF16_TOL, FP32_OUT_TOL, FP32_IN_TOL = 1e-2, 1e-4, 1e-5


def tiny(k: int, n: int) -> tuple[int, int]:
    """Dry-run stand-in for a shape (interpreter speed): same aspect, ragged where it was."""
    return max(64, k // 16), max(16, n // (256 if n > 100000 else 32))


def is_cuda_fault(exc: BaseException) -> bool:
    """True for an error after which the CUDA context is unusable (illegal address, ...)."""
    msg = f"{type(exc).__name__}: {exc}"
    return "CUDA error" in msg or "illegal" in msg.lower() or "AcceleratorError" in msg


class Run(RunContext):
    """``RunContext`` (deadline, records, printing, error guard) plus this script's state:
    device, compile budget, the ``dead`` flag and the JSON output with metadata."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        self.start = time.time()
        # result=None: the JSON is a dict with metadata, written by flush() (not a bare record list)
        super().__init__(self.start + args.budget_s, result=None, max_error_chars=500)
        self.args, self.torch = args, torch
        self.dry = args.dry_run
        self.device = torch.device("cpu" if self.dry else "cuda")
        self.compiled: set[tuple] = set()  # kernel variants launched so far (an estimate of Triton's cache keys)
        self.skipped_for_budget = 0
        self.dead = False  # a CUDA error poisoned the context: stop touching the GPU
        self.out_path = Path(args.out) if args.out else None

    def guard(self, what: str, fn, *args, **kwargs):
        """``RunContext.guard``, skipped once a CUDA fault (which sets ``dead``) has poisoned the context."""
        if self.dead:
            return None

        def watched():
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                self.dead = self.dead or is_cuda_fault(exc)
                raise

        return super().guard(what, watched)

    def flush(self, extra: dict | None = None) -> None:
        """Write all records and ``extra`` metadata to ``--out`` (if any)."""
        if self.out_path is None:
            return
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.out_path.write_text(json.dumps({"records": self.records, **(extra or {})}, indent=1, default=str))


def rel_err(out, ref) -> float:
    return float((out.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30))


# ----------------------------------------------------------------------------- kernel variants
def variant_key(sg, rows: int, n: int, k: int, cfg, out_fp32: bool, dtype: str = "bf16", bias: bool = False):
    """What makes Triton compile a new kernel for this launch (mirrors the launcher)."""
    _, split_k, _ = sg._launch_params(rows, n, k, cfg)
    bm = sg.block_m_for(rows)
    return (dtype, out_fp32, bias, bm, cfg.block_n, cfg.block_k, split_k > 1, sg.reduce_unroll(bm, cfg),
            cfg.num_warps, cfg.num_stages, k % cfg.block_k == 0)


def smem_bytes(sg, rows: int, cfg, elem: int = 2) -> int:
    return cfg.num_stages * (sg.block_m_for(rows) + cfg.block_n) * cfg.block_k * elem


def neighbours(sg, rows: int, n: int, k: int, base, num_sms: int) -> list:
    """One-knob variants of ``base``, most promising first, deduplicated by effective split."""
    def eff(cfg):
        return cfg.with_(split_k=sg._launch_params(rows, n, k, cfg)[1])

    n_tiles, split, _ = sg._launch_params(rows, n, k, base)
    programs = n_tiles * split
    out = []

    def add(**changes: int) -> None:
        try:
            cfg = eff(base.with_(**changes))
        except ValueError:
            return
        if cfg.block_n > max(16, 1 << (n - 1).bit_length()) or cfg.block_k > max(16, 1 << (k - 1).bit_length()):
            return
        if smem_bytes(sg, rows, cfg) > 200 << 10:
            return
        if cfg != base and cfg not in out:
            out.append(cfg)

    def resplit(block_n: int) -> int:  # same program count as the base
        return max(1, min(64, round(programs / math.ceil(n / block_n))))

    add(split_k=split * 2)
    add(split_k=max(1, split // 2))
    add(split_k=1 if split > 1 else 2)
    add(block_n=base.block_n * 2, block_k=max(16, base.block_k // 2), split_k=resplit(base.block_n * 2))
    add(block_n=max(16, base.block_n // 2), block_k=min(1024, base.block_k * 2), split_k=resplit(base.block_n // 2))
    add(block_k=base.block_k * 2)
    add(block_k=max(16, base.block_k // 2))
    add(num_stages=base.num_stages + 1)
    add(num_stages=max(1, base.num_stages - 1))
    add(num_warps=8)
    add(num_warps=2)
    add(block_n=base.block_n * 2, split_k=resplit(base.block_n * 2))
    add(block_n=max(16, base.block_n // 2), split_k=resplit(base.block_n // 2))
    return out


# ----------------------------------------------------------------------------- phases
class Case:
    """One (shape, T): inputs, weight copies, timed configs."""

    def __init__(self, name: str, k: int, n: int, out_fp32: bool, rows: int) -> None:
        self.name, self.k, self.n, self.out_fp32, self.rows = name, k, n, out_fp32, rows
        self.x = None
        self.weights: list = []
        self.times: dict[str, float] = {}  # label -> seconds per call
        self.configs: dict[str, object] = {}  # label -> config (Triton)
        self.candidates: list = []


def make_weights(run: Run, k: int, n: int) -> list:
    """Weight copies of one shape: enough that the calls of a graph never hit L2."""
    torch = run.torch
    nbytes = n * k * 2
    if run.dry:
        copies = 2
    else:
        l2 = torch.cuda.get_device_properties(run.device).L2_cache_size
        copies = max(24, math.ceil(3 * l2 / nbytes))
        copies = min(copies, 512, max(2, BIG_BYTES // nbytes))
    gen = torch.Generator(run.device).manual_seed(n + k)
    w = torch.randn(copies, n, k, device=run.device, dtype=torch.bfloat16, generator=gen)
    w.mul_(k ** -0.5)  # outputs O(1)
    return list(w.unbind(0))  # [N, K] views, each contiguous


def phase_check(run: Run, sg, cases: list[Case]) -> None:
    """Default configs vs fp32 references; determinism; fp32 inputs; bias; graph replays."""
    torch, F = run.torch, run.torch.nn.functional
    print("== check", flush=True)
    for c in cases:
        if run.left() < 0.6 * run.args.budget_s:
            run.record(kind="note", what=f"check stopped before {c.name} T={c.rows}: budget")
            break
        w = c.weights[0]
        od = torch.float32 if c.out_fp32 else None
        cfg = sg.default_config(c.rows, c.n, c.k, torch.bfloat16, sg.num_sms(run.device))
        run.compiled.add(variant_key(sg, c.rows, c.n, c.k, cfg, c.out_fp32))

        def one(c: Case = c, w=w, od=od, cfg=cfg) -> None:
            x = torch.randn(c.rows, c.k, device=run.device).to(torch.bfloat16)  # fresh inputs
            ref = F.linear(x.float(), w.float())
            out = sg.skinny_linear_triton(x, w, out_dtype=od)
            again = sg.skinny_linear_triton(x, w, out_dtype=od)
            err = rel_err(out, ref)
            tol = FP32_OUT_TOL if c.out_fp32 else BF16_TOL
            run.record(kind="check", shape=c.name, T=c.rows, config=cfg.short(), out_dtype=str(out.dtype),
                       rel_err=err, cublas_rel_err=rel_err(F.linear(x, w), ref),
                       deterministic=bool(torch.equal(out, again)),
                       ok=err < tol and torch.equal(out, again) and out.dtype == (od or torch.bfloat16))
        run.guard(f"check {c.name} T={c.rows}", one)
    by = {(c.name, c.rows): c for c in cases}
    extra = [("fp32 inputs", "q30b.router", 16), ("bias", "q30b.qkv", 16), ("graph", "q30b.o", 16),
             ("graph", "q30b.router", 64), ("graph", "q30b.qkv", 1)]
    for what, name, rows in extra:
        c = by.get((name, rows))
        if c is None or run.left() < 0.55 * run.args.budget_s:
            continue
        fn = {"fp32 inputs": check_fp32, "bias": check_bias, "graph": check_graph}[what]
        if what == "graph" and run.dry:
            continue
        run.guard(f"{what} {name} T={rows}", fn, run, sg, c)


def check_fp32(run: Run, sg, c: Case) -> None:
    torch, F = run.torch, run.torch.nn.functional
    x = torch.randn(c.rows, c.k, device=run.device)
    w = c.weights[0].float()
    cfg = sg.default_config(c.rows, c.n, c.k, torch.float32, sg.num_sms(run.device))
    run.compiled.add(variant_key(sg, c.rows, c.n, c.k, cfg, True, dtype="fp32"))
    out = sg.skinny_linear_triton(x, w)
    err = rel_err(out, F.linear(x.double(), w.double()))
    run.record(kind="check", shape=c.name, T=c.rows, what="fp32 inputs (IEEE)", config=cfg.short(), rel_err=err,
               cublas_rel_err=rel_err(F.linear(x, w), F.linear(x.double(), w.double())), ok=err < FP32_IN_TOL)


def check_bias(run: Run, sg, c: Case) -> None:
    torch, F = run.torch, run.torch.nn.functional
    x = torch.randn(c.rows, c.k, device=run.device).to(torch.bfloat16)
    w, b = c.weights[0], torch.randn(c.n, device=run.device).to(torch.bfloat16)
    cfg = sg.default_config(c.rows, c.n, c.k, torch.bfloat16, sg.num_sms(run.device))
    run.compiled.add(variant_key(sg, c.rows, c.n, c.k, cfg, False, bias=True))
    out = sg.skinny_linear_triton(x, w, b)
    err = rel_err(out, F.linear(x.float(), w.float(), b.float()))
    run.record(kind="check", shape=c.name, T=c.rows, what="bias", config=cfg.short(), rel_err=err, ok=err < BF16_TOL)


def check_graph(run: Run, sg, c: Case) -> None:
    """Capture one call, replay on new inputs: equal to eager (split-K counters reset each time)."""
    torch, F = run.torch, run.torch.nn.functional
    od = torch.float32 if c.out_fp32 else None
    w = c.weights[0]
    x = torch.randn(c.rows, c.k, device=run.device).to(torch.bfloat16)
    sg.skinny_linear_triton(x, w, out_dtype=od)  # compiles and creates the counters outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = sg.skinny_linear_triton(x, w, out_dtype=od)
    equal, errs = True, []
    for _ in range(4):
        x.copy_(torch.randn(c.rows, c.k, device=run.device).to(torch.bfloat16))
        graph.replay()
        graph.replay()  # twice: a counter left non-zero would break the second
        equal &= bool(torch.equal(out, sg.skinny_linear_triton(x, w, out_dtype=od)))
        errs.append(rel_err(out, F.linear(x.float(), w.float())))
    cfg = sg.default_config(c.rows, c.n, c.k, torch.bfloat16, sg.num_sms(run.device))
    run.record(kind="check", shape=c.name, T=c.rows, what="graph replay", config=cfg.short(), rel_err=max(errs),
               equal_eager=equal, ok=equal and max(errs) < (FP32_OUT_TOL if c.out_fp32 else BF16_TOL))


def time_calls(run: Run, calls: list) -> float:
    from lynx.kernels.kernel_bench import time_per_call

    return time_per_call(calls, run.device, reps=3 if run.dry else 15, replays=3, graph=not run.dry)


def time_label(run: Run, sg, c: Case, label: str, cfg=None, cublas: bool = False) -> None:
    """Time one variant of case ``c`` (Triton configs: correctness-checked on the first call)."""
    torch, F = run.torch, run.torch.nn.functional
    od = torch.float32 if c.out_fp32 else None
    x = c.x
    if cublas:
        calls = [lambda w=w: F.linear(x, w) for w in c.weights]
    else:
        out = sg.skinny_linear_triton(x, c.weights[0], out_dtype=od, config=cfg)  # compiles (eager)
        err = rel_err(out, F.linear(x.float(), c.weights[0].float()))
        if not err < (FP32_OUT_TOL if c.out_fp32 else BF16_TOL):
            run.record(kind="error", what=f"{c.name} T={c.rows} {label}", error=f"rel_err {err:.3g}")
            return
        calls = [lambda w=w: sg.skinny_linear_triton(x, w, out_dtype=od, config=cfg) for w in c.weights]
    sec = time_calls(run, calls)
    c.times[label] = sec
    if cfg is not None:
        c.configs[label] = cfg
    nbytes = c.n * c.k * 2
    n_tiles, split, _ = sg._launch_params(c.rows, c.n, c.k, cfg) if cfg is not None else (0, 0, 0)
    run.record(kind="time", shape=c.name, T=c.rows, label=label, config=cfg.short() if cfg is not None else "cublas",
               us=sec * 1e6, weight_TBps=nbytes / sec / 1e12, programs=n_tiles * split, calls=len(calls),
               copies=len(c.weights))


def phase_time(run: Run, sg, cases: list[Case]) -> None:
    torch = run.torch
    print("== time: cuBLAS and Triton defaults", flush=True)
    nsm = sg.num_sms(run.device)
    for c in cases:
        if run.left() < 0.25 * run.args.budget_s:
            run.record(kind="note", what=f"timing stopped before {c.name} T={c.rows}: budget")
            break
        c.x = torch.randn(c.rows, c.k, device=run.device).to(torch.bfloat16)
        run.guard(f"time cublas {c.name} T={c.rows}", time_label, run, sg, c, "cublas", cublas=True)
        base = sg.default_config(c.rows, c.n, c.k, torch.bfloat16, nsm)
        run.compiled.add(variant_key(sg, c.rows, c.n, c.k, base, c.out_fp32))
        run.guard(f"time default {c.name} T={c.rows}", time_label, run, sg, c, "default", base)
        c.candidates = neighbours(sg, c.rows, c.n, c.k, base, nsm)
    if run.args.no_sweep:
        return
    print(f"== sweep (compile budget {run.args.max_variants} variants, {len(run.compiled)} used)", flush=True)
    rounds = max((len(c.candidates) for c in cases), default=0)
    for r in range(min(rounds, run.args.rounds)):
        for c in cases:
            if r >= len(c.candidates) or "default" not in c.times:
                continue
            if run.left() < 12:
                run.record(kind="note", what=f"sweep stopped in round {r}: budget")
                return
            cfg = c.candidates[r]
            key = variant_key(sg, c.rows, c.n, c.k, cfg, c.out_fp32)
            if key not in run.compiled:
                if len(run.compiled) >= run.args.max_variants:
                    run.skipped_for_budget += 1
                    continue
                run.compiled.add(key)
            run.guard(f"sweep {c.name} T={c.rows} {cfg.short()}", time_label, run, sg, c, cfg.short(), cfg)


def best_of(c: Case) -> tuple[str | None, float]:
    triton = {k: v for k, v in c.times.items() if k != "cublas"}
    if not triton:
        return None, float("nan")
    label = min(triton, key=triton.get)
    return label, triton[label]


def summarize(run: Run, cases: list[Case], hbm: float | None) -> list[dict]:
    rows = []
    for c in cases:
        label, best = best_of(c)
        nbytes = c.n * c.k * 2
        cub, dflt = c.times.get("cublas", float("nan")), c.times.get("default", float("nan"))
        cfg = c.configs.get(label) if label else None
        rows.append(dict(shape=c.name, K=c.k, N=c.n, T=c.rows, weight_MB=nbytes / 1e6, cublas_us=cub * 1e6,
                         default_us=dflt * 1e6, best_us=best * 1e6,
                         best_config=asdict(cfg) if cfg is not None else None,
                         best_label=cfg.short() if cfg is not None else None,
                         default_config=asdict(c.configs["default"]) if "default" in c.configs else None,
                         cublas_TBps=nbytes / cub / 1e12, default_TBps=nbytes / dflt / 1e12,
                         best_TBps=nbytes / best / 1e12, roofline_us=nbytes / hbm * 1e6 if hbm else None,
                         variants_timed=len(c.times) - ("cublas" in c.times)))
    return rows


def print_table(run: Run, rows: list[dict], hbm: float | None) -> None:
    checks = [r for r in run.records if r.get("kind") == "check"]
    bad = [r for r in checks if not r.get("ok")]
    errors = [r for r in run.records if r.get("kind") == "error"]
    print()
    device = "cpu (dry run)" if run.dry else run.torch.cuda.get_device_name(run.device)
    bandwidth = f"HBM read {hbm / 1e12:.2f} TB/s" if hbm else "HBM read not measured"
    print(f"device: {device}; {bandwidth}", flush=True)
    print(f"checks: {len(checks) - len(bad)}/{len(checks)} ok; errors: {len(errors)}; compiled variants "
          f"~{len(run.compiled)} (budget {run.args.max_variants}, {run.skipped_for_budget} candidates skipped); "
          f"{time.time() - run.start:.0f} s")
    for r in bad + errors:
        print("  FAIL", {k: v for k, v in r.items() if k != "kind"})
    hdr = (f"{'shape':<13}{'T':>3} {'MB':>6} {'cuBLAS':>7} {'default':>8} {'best':>7}  {'best config':<18}"
           f"{'TB/s cuBLAS':>12} {'default':>8} {'best':>6} {'floor':>6} {'x cuBLAS':>8}")
    print(hdr)
    for r in rows:
        print(f"{r['shape']:<13}{r['T']:>3} {r['weight_MB']:>6.1f} {r['cublas_us']:>7.2f} {r['default_us']:>8.2f} "
              f"{r['best_us']:>7.2f}  {(r['best_label'] or '-'):<18}{r['cublas_TBps']:>12.2f} "
              f"{r['default_TBps']:>8.2f} {r['best_TBps']:>6.2f} "
              f"{(r['roofline_us'] or float('nan')):>6.2f} {r['cublas_us'] / r['best_us']:>8.2f}")
    print("(us per call; MB of weights; floor = weight bytes / measured HBM read bandwidth, us; routers' "
          "Triton output is fp32, cuBLAS's bf16)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--dry-run", action="store_true", help="CPU: tiny shapes, Triton interpreter, no graphs")
    ap.add_argument("--budget-s", type=float, default=None, help="wall-clock budget (default 165; dry run 300)")
    ap.add_argument("--max-variants", type=int, default=None,
                    help="compiled Triton kernel variants in total (default 60; dry run 16)")
    ap.add_argument("--rounds", type=int, default=None, help="sweep candidates per (shape, T) (default 13; dry 2)")
    ap.add_argument("--shapes", default="", help="comma-separated substrings of shape names (default: all)")
    ap.add_argument("--ts", default="1,16,64", help="batch rows T (default 1,16,64)")
    ap.add_argument("--no-sweep", action="store_true", help="only cuBLAS and the Triton defaults")
    ap.add_argument("--out", default=None, help="JSON path (default $OUT/linear.json when OUT is set)")
    args = ap.parse_args()
    args.budget_s = args.budget_s or (300.0 if args.dry_run else 165.0)
    args.max_variants = args.max_variants or (16 if args.dry_run else 60)
    args.rounds = args.rounds if args.rounds is not None else (2 if args.dry_run else 13)
    if args.out is None and os.environ.get("OUT"):
        args.out = str(Path(os.environ["OUT"]) / "linear.json")
    ts = [int(t) for t in args.ts.split(",") if t]
    names = [s for s in SHAPES if not args.shapes or any(f in s for f in args.shapes.split(","))]

    from lynx.kernels.triton_interpret import use_interpreter

    use_interpreter(args.dry_run)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on a CPU machine", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 references must be real fp32
    from lynx.bench.roofline import measure_hbm_bandwidth
    from lynx.kernels import skinny_gemm as sg

    run = Run(args)
    hbm = None
    if not run.dry:
        hbm = run.guard("hbm", measure_hbm_bandwidth, run.device)
        if hbm:
            run.record(kind="hbm", TBps=hbm / 1e12)
    cases: list[Case] = []
    for name in names:
        k, n, out_fp32 = SHAPES[name]
        if run.dry:
            k, n = tiny(k, n)
        weights = run.guard(f"weights {name}", make_weights, run, k, n)
        if weights is None:
            continue
        for t in ts:
            c = Case(name, k, n, out_fp32, t)
            c.weights = weights
            cases.append(c)
    meta = dict(args=vars(args), shapes={c.name: (c.k, c.n, c.out_fp32) for c in cases}, ts=ts,
                hbm_TBps=hbm / 1e12 if hbm else None)
    phase_check(run, sg, cases)
    run.flush(meta)
    phase_time(run, sg, cases)
    rows = summarize(run, cases, hbm)
    run.flush(dict(meta, table=rows, compiled_variants=len(run.compiled), skipped_for_budget=run.skipped_for_budget,
                   elapsed_s=time.time() - run.start))
    print_table(run, rows, hbm)
    if run.out_path:
        print(f"wrote {run.out_path}")
    checks = [r for r in run.records if r.get("kind") == "check"]
    return 0 if checks and all(r.get("ok") for r in checks) and not run.dead else 1


if __name__ == "__main__":
    sys.exit(main())
