"""Summary tables for ``lynx bench kernels`` results (records -> fits + text).

Records are dicts with a ``kind``: ``check`` / ``graph_replay`` (correctness), ``time``
(one backend, batch and active-expert count A), ``stage`` (Triton stage breakdown),
``align`` (align-kernel variants) and ``error``. Sweep variants are ``time`` records whose
backend is ``triton[knob=value]``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

from lynx.kernels.kernel_bench import linear_fit


def fit_times(records: list[dict]) -> list[dict]:
    """``time = a + b*A`` per (model, backend, batch), with R^2 and the best bandwidth."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("kind") == "time":
            groups[(r["model"], r["backend"], r["batch"])].append(r)
    fits = []
    for (model, backend, batch), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r["active"])
        a, b, r2 = linear_fit([r["active"] for r in recs], [r["us"] for r in recs])
        fits.append(dict(model=model, backend=backend, batch=batch, a_us=a, b_us_per_expert=b, r2=r2,
                         points={r["active"]: round(r["us"], 1) for r in recs},
                         max_TBps=max(r["weight_TBps"] for r in recs)))
    return fits


def _correctness(records: list[dict]) -> None:
    checks = [r for r in records if r.get("kind") in ("check", "graph_replay")]
    print("\n=== correctness vs float32 reference (bf16 bound 1e-2; fp32 1e-5) ===")
    for kind in ("check", "graph_replay"):
        for backend in sorted({r["backend"] for r in checks if r["kind"] == kind}):
            rs = [r for r in checks if r["kind"] == kind and r["backend"] == backend]
            for dtype in sorted({r.get("dtype", "bf16") for r in rs}):
                sub = [r for r in rs if r.get("dtype", "bf16") == dtype]
                bad = [r for r in sub if not r.get("ok")]
                print(f"  {kind:12s} {backend:10s} {dtype:4s} {len(sub):3d} cases  worst rel err "
                      f"{max(r['rel_err'] for r in sub):.2e}  {len(bad)} failing"
                      + (f": {json.dumps(bad[:2])}" if bad else ""))
    errors = [r for r in records if r.get("kind") == "error"]
    print(f"  errors: {len(errors)}" + "".join(f"\n    {r['what']}: {r['error'][:200]}" for r in errors[:10]))


def _fits_table(fits: list[dict]) -> None:
    print("\n=== us per MoE layer call vs A distinct active experts (CUDA graph unless -eager) ===")
    print(f"  {'model':13s} {'backend':26s} {'batch':>5s} {'a us':>6s} {'b us/A':>6s} {'R2':>5s} {'TB/s':>5s}  A:us")
    for f in fits:
        if f["backend"].startswith("triton["):
            continue  # sweep variants: summarised separately
        pts = " ".join(f"{a}:{us:.0f}" for a, us in f["points"].items())
        print(f"  {f['model']:13s} {f['backend']:26s} {f['batch']:5d} {f['a_us']:6.1f} {f['b_us_per_expert']:6.2f} "
              f"{f['r2']:5.3f} {f['max_TBps']:5.2f}  {pts}")


def _stages(records: list[dict]) -> None:
    stages = [r for r in records if r.get("kind") == "stage"]
    if not stages:
        return
    print("\n=== Triton stages (each captured alone) ===")
    for key in sorted({(r["batch"], r["active"]) for r in stages}):
        rs = [r for r in stages if (r["batch"], r["active"]) == key]
        parts = "  ".join(f"{r['stage']} {r['us']:.1f}us" + (f" ({r['weight_TBps']:.2f} TB/s)" if r["weight_TBps"] else "")
                          for r in rs)
        print(f"  batch {key[0]} A={key[1]}: {parts}  sum {sum(r['us'] for r in rs):.1f}us")


def _sweep(records: list[dict]) -> None:
    sweep = [r for r in records if r.get("kind") == "time" and r["backend"].startswith("triton[")]
    if sweep:
        print("\n=== Triton sweep: mean us over the A values (lower is better) ===")
        for batch in sorted({r["batch"] for r in sweep}):
            rs = [r for r in sweep if r["batch"] == batch]
            actives = sorted({r["active"] for r in rs})
            by_cfg: dict[str, dict[int, float]] = defaultdict(dict)
            for r in rs:
                by_cfg[r["backend"]][r["active"]] = r["us"]
            complete = {c: v for c, v in by_cfg.items() if len(v) == len(actives)}
            ranked = sorted(complete, key=lambda c: statistics.mean(complete[c].values()))
            base = statistics.mean(complete.get("triton[default]", {0: float("nan")}).values())
            print(f"  batch {batch} (A={actives}), default {base:.1f}us:")
            for c in ranked[:6]:
                pts = " ".join(f"{a}:{complete[c][a]:.0f}" for a in actives)
                print(f"    {c:28s} {statistics.mean(complete[c].values()):7.1f}us  {pts}")
    align = [r for r in records if r.get("kind") == "align"]
    if align:
        print("\n=== align kernel alone (us) by onehot_elems/warps ===")
        for batch in sorted({r["batch"] for r in align}):
            cells = " ".join(f"{r['onehot_elems']}/{r['warps']}:{r['us']:.1f}"
                             for r in align if r["batch"] == batch)
            print(f"  batch {batch}: {cells}")


def summarize(results: dict[str, list[dict]]) -> dict:
    """Print the summary tables for all parts' records; return the fits for the JSON."""
    records = [r for recs in results.values() for r in recs]
    fits = fit_times(records)
    _correctness(records)
    _stages(records)
    _sweep(records)
    _fits_table(fits)
    return {"fits": fits}
