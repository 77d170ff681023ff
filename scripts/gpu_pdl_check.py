"""GPU check of programmatic dependent launch (``LYNX_PDL=1``): the same greedy tokens as without it.

    PYTHONPATH=src python scripts/gpu_pdl_check.py [--model qwen3-30b-a3b] [--batches 16,64]

PDL changes only when kernels may start, never what they compute, so a decode with it must
give bit-identical greedy tokens; a kernel that read an input before its ``griddepcontrol.wait``
(a race with the previous kernel) would show up as differing tokens. Each variant runs in a
child process (its own engine, CUDA graphs captured with its launches), over the same random
prompts, every routing policy and batch size; the parent compares the tokens of each
variant with its reference:

* ``skinny`` (``LYNX_DENSE_GEMM=skinny``, no PDL) vs ``pdl`` (the same with ``LYNX_PDL=1``:
  the skinny GEMM then bulk-prefetches its weights into L2 before it waits);
* ``base`` (cuBLAS, ``LYNX_PDL=0``) vs ``pdl_cublas`` (``LYNX_PDL=1``, cuBLAS: the default).

``--pairs`` picks them (default both); ``LYNX_PDL_WAIT_ONLY`` passes through to every child.

Dummy weights (the preset's shapes, calibrated routers), bf16. The table (tokens equal,
median decode step ms) is printed last; records go to ``$OUT/pdl_check.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

VARIANTS = {"skinny": {"LYNX_PDL": "0", "LYNX_DENSE_GEMM": "skinny"}, "pdl": {"LYNX_PDL": "1", "LYNX_DENSE_GEMM": "skinny"},
            "base": {"LYNX_PDL": "0", "LYNX_DENSE_GEMM": "cublas"},
            "pdl_cublas": {"LYNX_PDL": "1", "LYNX_DENSE_GEMM": "cublas"}}


def child(args: argparse.Namespace) -> None:
    import torch
    from gpu_cuda_graphs import decode_ms  # sibling script (this directory is on sys.path)

    from lynx import LLM, SamplingParams

    batches = [int(b) for b in args.batches.split(",")]
    routings = args.routings.split(",")
    llm = LLM(args.model, routing=routings[0], device="cuda", dtype="bfloat16", load_format="dummy",
              max_model_len=args.prompt_len + args.new_tokens + 16, max_num_seqs=max(batches),
              gpu_memory_utilization=0.9)
    vocab = llm.engine.model_config.vocab_size
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, vocab, (args.prompt_len,), generator=gen).tolist() for _ in range(max(batches))]
    params = SamplingParams(max_tokens=args.new_tokens, temperature=0, ignore_eos=True)
    out = {}
    for routing in routings:
        if routing != routings[0]:
            llm.set_routing(routing)
        for batch in batches:
            llm.reset_stats()
            tokens = [o.token_ids for o in llm.generate(prompts[:batch], params)]
            out[f"{routing}:{batch}"] = dict(tokens=tokens, step_ms=decode_ms(llm))
    with open(args.child_out, "w") as f:
        json.dump(out, f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen3-30b-a3b")
    ap.add_argument("--batches", default="16,64")
    ap.add_argument("--routings", default="topk,lynx")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--pairs", default="skinny:pdl,base:pdl_cublas", help="reference:variant,...")
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_out:
        child(args)
        return 0
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    bad = [p for p in pairs if len(p) != 2 or not set(p) <= set(VARIANTS)]
    if bad:
        ap.error(f"--pairs: {bad} are not reference:variant of {', '.join(VARIANTS)}")
    names = list(dict.fromkeys(n for pair in pairs for n in pair))
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            path = os.path.join(tmp, f"{name}.json")
            env = {k: v for k, v in os.environ.items() if k not in ("LYNX_PDL", "LYNX_DENSE_GEMM")}
            env.update(VARIANTS[name])
            cmd = [sys.executable, __file__, "--child-out", path, "--model", args.model, "--batches", args.batches,
                   "--routings", args.routings, "--prompt-len", str(args.prompt_len),
                   "--new-tokens", str(args.new_tokens)]
            print(f"== {name}: {VARIANTS[name] or '(defaults)'}", flush=True)
            proc = subprocess.run(cmd, env=env)
            if proc.returncode != 0:
                print(f"{name}: child failed (exit {proc.returncode})", flush=True)
                continue
            with open(path) as f:
                results[name] = json.load(f)
    rows, ok = [], True
    for ref, var in pairs:
        if ref not in results or var not in results:
            ok = False
            rows.append(dict(ref=ref, variant=var, error="a child failed"))
            continue
        for key, want in results[ref].items():
            got = results[var][key]
            same = sum(a == b for a, b in zip(got["tokens"], want["tokens"]))
            rows.append(dict(ref=ref, variant=var, case=key, equal_seqs=same, seqs=len(want["tokens"]),
                             ref_ms=want["step_ms"], variant_ms=got["step_ms"]))
            ok &= same == len(want["tokens"])
    if os.environ.get("OUT"):
        with open(os.path.join(os.environ["OUT"], "pdl_check.json"), "w") as f:
            json.dump(dict(model=args.model, rows=rows, ok=ok), f, indent=2)
    print(f"\n{'ref':<8}{'variant':<12}{'case':<10}{'equal':>8}{'ref ms':>9}{'var ms':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['ref']:<8}{r['variant']:<12}{r['error']}")
        else:
            print(f"{r['ref']:<8}{r['variant']:<12}{r['case']:<10}{r['equal_seqs']:>4}/{r['seqs']:<3}"
                  f"{r['ref_ms']:>9.3f}{r['variant_ms']:>9.3f}")
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
