"""GPU check of Lynx's expert kernels: correctness, CUDA-graph timing vs active experts, tuning.

On the GPU machine, from the repo root (needs torch + triton; ~3.5 min on one H200):
    python scripts/gpu_kernels_check.py                 # writes $OUT/kernels.json if OUT is set
On a CPU box, to catch bugs first (tiny shapes, Triton interpreter, wall-clock timing):
    python scripts/gpu_kernels_check.py --dry-run

Parts, each in its own subprocess so that a crash (say an illegal address) loses only it:
  check   every backend vs the float32-upcast reference on fresh random bf16 inputs
          (Qwen3-30B-A3B, OLMoE, Mixtral shapes; T in 1..256; padding rows; exact number of
          active experts), fp32 Triton path, determinism, CUDA-graph replay on new routing.
  time    Qwen3-30B-A3B MoE layer at batch 16 and 64 vs distinct active experts A, each
          backend in a CUDA graph (4 rotated weight copies so L2 cannot hold weights),
          plus grouped_mm eager and the bare two-grouped_mm baseline; fit a + b*A; stage
          breakdown of the Triton path.
  sweep   Triton tile/launch variants (one knob at a time) and align-kernel variants.
  models  OLMoE and Mixtral timing.
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
PARTS = {"check": 60, "time": 70, "sweep": 60, "models": 30}  # relative shares of the budget
FULL = {  # name: (H, I, E, k)
    "qwen3-30b-a3b": (2048, 768, 128, 8), "olmoe": (2048, 1024, 64, 8), "mixtral": (4096, 14336, 8, 2)}
TINY = {"qwen3-30b-a3b": (64, 32, 16, 4), "olmoe": (64, 48, 8, 4), "mixtral": (128, 64, 4, 2)}


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


def part_check(p: Part) -> None:
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
    name = "qwen3-30b-a3b"
    h, i, e, k = p.shapes[name]
    (w13, w2), = p.experts(name, dtype=torch.float32)
    for t in ((4,) if p.dry else (16, 64)):
        w, ids = routing_with_active(t, k, e, min(e, 2 * k), seed=7, pad_rows=1, device=p.device)
        x = torch.randn(t, h, device=p.device)
        ref = kern.fused_experts_reference(x, w13, w2, w, ids)
        out = p.guard("check triton fp32", kern.fused_experts, x, w13, w2, w, ids, backend="triton")
        if out is not None:
            again = kern.fused_experts(x, w13, w2, w, ids, backend="triton")
            p.record(kind="check", model=name, backend="triton", T=t, active=min(e, 2 * k), dtype="fp32",
                     rel_err=rel_err(out, ref), deterministic=bool(torch.equal(out, again)),
                     ok=rel_err(out, ref) < 1e-5 and bool(torch.equal(out, again)))
    if p.device.type == "cuda":
        for backend in ("triton", "grouped_mm"):
            p.guard(f"graph replay {backend}", check_graph_replay, p, backend)


def check_graph_replay(p: Part, backend: str) -> None:
    """Capture once with one routing, overwrite the inputs in place, replay: must follow."""
    torch, kern = p.torch, sys.modules["lynx.kernels"]
    from lynx.kernels.kernel_bench import routing_with_active

    h, i, e, k = p.shapes["qwen3-30b-a3b"]
    (w13, w2), = p.experts("qwen3-30b-a3b")
    t = 16
    w, ids = routing_with_active(t, k, e, 8, seed=1, device=p.device)
    x = torch.randn(t, h, device=p.device).to(torch.bfloat16)
    kern.fused_experts(x, w13, w2, w, ids, backend=backend)  # compile outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = kern.fused_experts(x, w13, w2, w, ids, backend=backend)
    for active, pad in ((8, 0), (128, 3), (40, 1)):
        w_new, ids_new = routing_with_active(t, k, e, active, seed=active, pad_rows=pad, device=p.device)
        w.copy_(w_new), ids.copy_(ids_new), x.copy_(torch.randn_like(x))
        graph.replay()
        eager = kern.fused_experts(x, w13, w2, w, ids, backend=backend)
        ref = kern.fused_experts_reference(x.float(), w13.float(), w2.float(), w, ids)
        equal = bool(torch.equal(out, eager))  # required of triton (deterministic kernels)
        p.record(kind="graph_replay", backend=backend, active=active, pad_rows=pad, equal_eager=equal,
                 rel_err=rel_err(out, ref), ok=rel_err(out, ref) < 1e-2 and (equal or backend != "triton"))


def time_moe(p: Part, name: str, batch: int, actives, backends, copies) -> None:  # noqa: ANN001
    """Time each backend at each active-expert count (CUDA graph; eager variants marked)."""
    torch, kern = p.torch, sys.modules["lynx.kernels"]
    from lynx.kernels.kernel_bench import routing_with_active, time_per_call

    h, i, e, k = p.shapes[name]
    rounds = 1 if p.dry else 2
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
                p.record(kind="time", model=name, backend=label, batch=batch, active=active,
                         us=sec * 1e6, weight_TBps=bw)


def backend_calls(kern, extra: dict | None = None):  # noqa: ANN001, ANN201
    """(label, make_call(x, w13, w2, w, ids) -> zero-arg call, use_graph) per timed variant."""
    def fused(backend: str):  # noqa: ANN202
        return lambda x, w13, w2, w, ids: (lambda: kern.fused_experts(x, w13, w2, w, ids, backend=backend))

    rows = [("triton", fused("triton"), True), ("grouped_mm", fused("grouped_mm"), True),
            ("grouped_mm-eager", fused("grouped_mm"), False), ("2x_grouped_mm_only", bare_grouped_mm, True),
            ("2x_grouped_mm_only-eager", bare_grouped_mm, False)]
    return rows + list((extra or {}).items())


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
    name = "qwen3-30b-a3b"
    copies = p.experts(name, copies=2 if p.dry else 4)
    actives = (4, 8, 12, 16) if p.dry else (8, 16, 32, 48, 64, 96, 128)
    for batch in ((4, 8) if p.dry else (16, 64)):
        time_moe(p, name, batch, actives, backend_calls(kern), copies)
    # prefill-sized batches, all experts active: where should "auto" switch to grouped_mm?
    big = [r for r in backend_calls(kern) if r[0] in ("triton", "grouped_mm")]
    for batch in ((16,) if p.dry else (256, 1024, 4096)):
        time_moe(p, name, batch, (16,) if p.dry else (128,), big, copies)
    for active in ((4, 16) if p.dry else (8, 128)):
        p.guard(f"breakdown A={active}", breakdown, p, name, 4 if p.dry else 16, active, copies)


def breakdown(p: Part, name: str, batch: int, active: int, copies) -> None:  # noqa: ANN001
    """Per-stage time of the Triton path (each stage captured alone)."""
    torch = p.torch
    from lynx.kernels import triton_moe as tm
    from lynx.kernels.kernel_bench import routing_with_active, time_per_call
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe_align import moe_align_triton

    h, i, e, k = p.shapes[name]
    w, ids = routing_with_active(batch, k, e, active, seed=3, device=p.device)
    x = torch.randn(batch, h, device=p.device).to(torch.bfloat16)
    cfg = default_config(batch, h, i)
    w32 = w.reshape(-1).float().contiguous()
    rt = moe_align_triton(ids, w32, e, cfg.block_m)
    inter = tm.gate_up_silu(x, copies[0][0], rt, k, cfg)
    pair_out = tm.down_weighted(inter, copies[0][1], w32, rt, cfg)
    n = len(copies) * (1 if p.dry else 2)
    stages = {
        "align": [lambda: moe_align_triton(ids, w32, e, cfg.block_m)] * n,
        "gate_up_silu": [lambda a=a: tm.gate_up_silu(x, a, rt, k, cfg) for a, _ in copies] * (n // len(copies)),
        "down_weighted": [lambda b=b: tm.down_weighted(inter, b, w32, rt, cfg) for _, b in copies]
        * (n // len(copies)),
        "sum_topk": [lambda: tm.sum_topk(pair_out, w32, batch, k, x.dtype, cfg)] * n,
    }
    for stage, calls in stages.items():
        sec = time_per_call(calls, p.device, graph=p.device.type == "cuda")
        frac = {"gate_up_silu": 2 / 3, "down_weighted": 1 / 3}.get(stage, 0.0)
        bw = active * 3 * h * i * 2 * frac / sec / 1e12
        p.record(kind="stage", model=name, batch=batch, active=active, stage=stage, us=sec * 1e6, weight_TBps=bw)


def part_sweep(p: Part) -> None:
    kern = sys.modules["lynx.kernels"]
    from lynx.kernels.moe_config import default_config
    from lynx.kernels.triton_moe import fused_experts_triton

    name = "qwen3-30b-a3b"
    h, i, e, k = p.shapes[name]
    copies = p.experts(name, copies=2 if p.dry else 4)
    p.guard("align sweep", sweep_align, p, name)
    # one knob at a time, most informative first (the budget may cut the tail)
    variants = {
        16: [("ctas_per_sm", 0), ("ctas_per_sm", 3), ("block_n1", 16), ("block_n2", 32), ("block_n1", 64),
             ("block_n2", 128), ("ctas_per_sm", 1), ("block_k1", 256), ("block_k2", 256), ("block_k1", 64),
             ("block_k2", 64), ("stages1", 3), ("stages2", 3), ("stages1", 6), ("warps1", 8), ("warps2", 8),
             ("ctas_per_sm", 4)],
        64: [("block_m", 16), ("block_m", 32), ("ctas_per_sm", 3), ("ctas_per_sm", 0), ("block_n1", 16),
             ("block_n2", 32)],
    }
    if p.dry:
        variants = {4: [("ctas_per_sm", 0), ("block_m", 32)]}
    for batch, knobs in variants.items():
        base = default_config(batch, h, i)
        configs = {"default": base}
        configs.update({f"{f}={v}": base.with_(**{f: v}) for f, v in knobs if getattr(base, f) != v})
        extra = {}
        for label, cfg in configs.items():
            def make(x, w13, w2, w, ids, cfg=cfg):  # noqa: ANN001, ANN202
                return lambda: fused_experts_triton(x, w13, w2, w, ids, config=cfg)
            extra[label] = (f"triton[{label}]", make, True)
        rows = list(extra.values())
        time_moe(p, name, batch, (4, 16) if p.dry else (8, 64, 128), rows, copies)
    del kern


def sweep_align(p: Part, name: str) -> None:
    """Align kernel alone for one-hot tile budgets and warp counts."""
    from lynx.kernels.kernel_bench import routing_with_active, time_per_call
    from lynx.kernels.triton_moe_align import moe_align_triton

    h, i, e, k = p.shapes[name]
    for batch in ((4,) if p.dry else (16, 64, 256)):
        w, ids = routing_with_active(batch, k, e, min(e, batch * k), seed=5, device=p.device)
        block_m = 16 if batch <= 16 else 64
        for elems in (2048, 4096, 8192, 16384):
            for warps in (4, 8):
                if p.left() < 4:
                    return
                sec = p.guard(f"align {elems}/{warps}", time_per_call,
                              [lambda: moe_align_triton(ids, w, e, block_m, elems, warps)] * 8, p.device)
                if sec is not None:
                    p.record(kind="align", batch=batch, onehot_elems=elems, warps=warps, us=sec * 1e6)


def part_models(p: Part) -> None:
    kern = sys.modules["lynx.kernels"]
    rows = [r for r in backend_calls(kern) if r[0] in ("triton", "grouped_mm")]
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
        from lynx.kernels.triton_interpret import patch_interpreter

        patch_interpreter()


def child_main(args: argparse.Namespace) -> int:
    import_kernels(interpret=args.device == "cpu")
    p = Part(args)
    {"check": part_check, "time": part_time, "sweep": part_sweep, "models": part_models}[args.part](p)
    return 0


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
        results[part] = json.loads(result.read_text()) if result.exists() else []
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
    from lynx.kernels.kernel_report import summarize

    summary = summarize(results)
    env["wall_s"] = round(time.time() - start, 1)
    print(f"\ntotal wall time {env['wall_s']}s")
    out_dir = os.environ.get("OUT")
    if out_dir:
        path = Path(out_dir) / "kernels.json"
        path.write_text(json.dumps({"env": env, "parts": results, **summary}, indent=1))
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
