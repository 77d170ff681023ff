"""Paged decode attention: V loaded with K (``early_v``) vs after the scores, on the H200.

    PYTHONPATH=src python scripts/gpu_attention_early_v.py

Qwen3-30B-A3B heads (32 query, 4 KV, dim 128), bf16, pages of 16 tokens, per-call time in
a CUDA graph over 24 layers' worth of KV caches (so each call reads its KV from HBM).
"""

from __future__ import annotations

import torch

from lynx.kernels.kernel_bench import time_per_call
from lynx.kernels.paged_attention_triton import _num_sms, default_config, paged_decode_attention_triton


def main() -> None:
    dev = torch.device("cuda")
    hq, hkv, d, page, layers = 32, 4, 128, 16, 24
    print(f"{'B':>4}{'ctx':>6}{'width':>7}{'late_v us':>11}{'early_v us':>12}{'ratio':>7}")
    for b, ctx, width in ((1, 300, 512), (16, 300, 512), (64, 300, 512), (16, 300, 8192), (64, 2048, 8192)):
        pages_per_seq = -(-width // page)
        blocks = b * pages_per_seq + 1
        caches = [(torch.randn(blocks, page, hkv, d, device=dev, dtype=torch.bfloat16),
                   torch.randn(blocks, page, hkv, d, device=dev, dtype=torch.bfloat16)) for _ in range(layers)]
        tables = torch.arange(b * pages_per_seq, device=dev, dtype=torch.int32).view(b, pages_per_seq)
        lens = torch.full((b,), ctx, device=dev, dtype=torch.int32)
        q = torch.randn(b, hq, d, device=dev, dtype=torch.bfloat16)
        base = default_config(b, hq, hkv, d, width, _num_sms(dev))
        times = {}
        outs = {}
        for early in (False, True):
            cfg = base.with_(early_v=early)
            calls = [lambda c=c, cfg=cfg: paged_decode_attention_triton(q, c[0], c[1], tables, lens, d**-0.5, None, cfg)
                     for c in caches]
            outs[early] = calls[0]()
            times[early] = time_per_call(calls, dev) * 1e6
        assert torch.equal(outs[True], outs[False]) or (outs[True] - outs[False]).abs().max() < 1e-2
        print(f"{b:>4}{ctx:>6}{width:>7}{times[False]:>11.2f}{times[True]:>12.2f}{times[False] / times[True]:>7.2f}")
        del caches


if __name__ == "__main__":
    main()
