"""Which fused-MoE launch configuration is fastest per decode batch size, on real-looking routing?

    PYTHONPATH=src python scripts/gpu_moe_configs.py [--batches 16,32,64] [--actives 16,24,32,48,64]

Times :func:`lynx.kernels.triton_moe.fused_experts_triton` (whole layer: gate_up, down,
sum) at the Qwen3-30B-A3B expert shape inside CUDA graphs, over rotated weight copies so
every call streams its experts from HBM, for a few configurations per batch size:
the default, the separate metadata + sum launches, and smaller row blocks. Routing touches
exactly ``A`` experts, either balanced (every active expert gets the same number of
pairs) or skewed (Zipf popularity over the active set, like trained routers). Prints a
table of microseconds per layer and writes ``$OUT/moe_configs.json``.
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from lynx.kernels.kernel_bench import routing_with_active, time_per_call
from lynx.kernels.moe_config import default_config
from lynx.kernels.triton_moe import fused_experts_triton

H, I, E, K = 2048, 768, 128, 8  # Qwen3-30B-A3B experts


def skewed_routing(t: int, active: int, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``[T, k]`` weights and ids over exactly ``active`` experts with Zipf(1) popularity."""
    gen = torch.Generator().manual_seed(seed)
    experts = torch.randperm(E, generator=gen)[:active]  # [A]
    pop = 1.0 / torch.arange(1, active + 1, dtype=torch.float64)  # [A]
    picks = torch.multinomial(pop.expand(t, active), K, replacement=False, generator=gen)  # [T, k]
    # make sure every active expert appears (exactly `active` distinct): give each missing
    # one a slot whose current expert is used elsewhere too
    counts = torch.bincount(picks.flatten(), minlength=active)
    for e in (counts == 0).nonzero().flatten().tolist():
        for row in range(t):
            col = int(counts[picks[row]].argmax())
            if counts[picks[row, col]] > 1 and e not in picks[row].tolist():
                counts[picks[row, col]] -= 1
                picks[row, col] = e
                counts[e] += 1
                break
    ids = experts[picks]  # [T, k]
    w = torch.rand(t, K, generator=gen) + 0.1
    return (w / w.sum(-1, keepdim=True)).to(device), ids.to(device)


def parse_variants(spec: str) -> dict[str, dict[str, object]]:
    """``'a:block_n2=32+warps2=2;b:align=kernel'`` -> ``{'a': {...}, 'b': {...}}`` (ints where they parse)."""
    out: dict[str, dict[str, object]] = {}
    for item in filter(None, spec.split(";")):
        name, _, fields = item.partition(":")
        parsed: dict[str, object] = {}
        for field in filter(None, fields.split("+")):
            key, _, value = field.partition("=")
            parsed[key] = int(value) if value.lstrip("-").isdigit() else {"True": True, "False": False}.get(value, value)
        out[name] = parsed
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="16,32,64")
    ap.add_argument("--actives", default="16,24,32,48,64")
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--routings", default="balanced,skewed")
    ap.add_argument("--variants", default="",
                    help="extra configs on top of each batch's default: 'name:field=value+field=value;...' "
                         "(e.g. 'n2_32:block_n2=32;n1_16:block_n1=16'); replaces the built-in set when given")
    args = ap.parse_args()
    dev = torch.device("cuda")
    copies = [(torch.randn(E, 2 * I, H, device=dev, dtype=torch.bfloat16) * 0.02,
               torch.randn(E, H, I, device=dev, dtype=torch.bfloat16) * 0.02) for _ in range(args.copies)]
    rows = []
    for t in map(int, args.batches.split(",")):
        base = default_config(t, H, I)
        configs = {"default": base}
        if args.variants:
            configs.update({name: base.with_(**fields) for name, fields in parse_variants(args.variants).items()})
        else:
            sep = base.with_(fuse_sum=False, align="kernel")
            configs["sep"] = sep
            for bm in (16, 32):
                if bm < base.block_m:
                    configs[f"bm{bm}"] = base.with_(block_m=bm)
                    configs[f"sep+bm{bm}"] = sep.with_(block_m=bm)
                    configs[f"sep+bm{bm}+st4"] = sep.with_(block_m=bm, stages1=4, stages2=4)
        x = torch.randn(t, H, device=dev, dtype=torch.bfloat16)
        for active in map(int, args.actives.split(",")):
            if active > t * K:
                continue
            for kind in args.routings.split(","):
                if kind == "balanced":
                    w, ids = routing_with_active(t, K, E, active, seed=active, device=dev)
                else:
                    w, ids = skewed_routing(t, active, seed=active, device=dev)
                assert len(set(ids.flatten().tolist())) == active
                ref = None
                for name, cfg in configs.items():
                    calls = [lambda c=c, cfg=cfg: fused_experts_triton(x, c[0], c[1], w, ids, config=cfg) for c in copies]
                    out = calls[0]()
                    if ref is None:
                        ref = out
                    err = ((out.float() - ref.float()).norm() / ref.float().norm()).item()
                    us = time_per_call(calls * 2, dev) * 1e6
                    tbps = active * 3 * H * I * 2 / (us * 1e-6) / 1e12
                    rows.append({"batch": t, "active": active, "routing": kind, "config": name, "us": us,
                                 "TBps": tbps, "rel_err_vs_default": err})
                    print(json.dumps(rows[-1]), flush=True)
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "moe_configs.json"), "w") as f:
            json.dump({"gpu": torch.cuda.get_device_name(), "rows": rows}, f, indent=2)
    print(f"\n{'batch':>5}{'A':>4} {'routing':<9}" + "".join(f"{n:>14}" for n in dict.fromkeys(r["config"] for r in rows)))
    keys = sorted({(r["batch"], r["active"], r["routing"]) for r in rows})
    for key in keys:
        cells = {r["config"]: r["us"] for r in rows if (r["batch"], r["active"], r["routing"]) == key}
        best = min(cells, key=cells.get)
        line = "".join(f"{cells[n]:>13.1f}{'*' if n == best else ' '}" if n in cells else f"{'':>14}"
                       for n in dict.fromkeys(r["config"] for r in rows))
        print(f"{key[0]:>5}{key[1]:>4} {key[2]:<9}{line}")


if __name__ == "__main__":
    main()
