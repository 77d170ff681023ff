"""Tables ``lynx bench kernels`` adds to :func:`lynx.kernels.kernel_report.summarize`."""

from __future__ import annotations

from typing import Any

from lynx.bench.kernels_part import FULL, QWEN, TINY


def summarize_extra(records: list[dict[str, Any]], dry: bool) -> dict[str, Any]:
    """Print the tables ``kernel_report.summarize`` lacks (old vs new pipeline, prefill crossover);
    return their JSON fields (``fit_old_new``, ``suggest_auto_triton_max_pairs``)."""
    from lynx.kernels.kernel_bench import linear_fit

    out: dict[str, Any] = {}
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
