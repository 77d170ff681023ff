"""The batched per-step expert tally equals per-layer counting."""

from __future__ import annotations

import pytest
import torch

from lynx.routing import count_active_experts, select_experts
from lynx.routing.tally import ExpertTally


@pytest.mark.parametrize("policy", ["topk", "lynx", "oea"])
@pytest.mark.parametrize("pad", [0, 3])
def test_tally_matches_per_layer_counts(policy, pad):
    g = torch.Generator().manual_seed(7)
    layers, t, n, k = 3, 12, 32, 4
    tally = ExpertTally(layers, n, k, max_tokens=t + pad, device=torch.device("cpu"), keep_logits=policy != "topk")
    valid = torch.arange(t + pad) < t
    tally.reset()
    want = []
    for layer in range(layers):
        logits = torch.randn(t + pad, n, generator=g) * 2 + torch.randn(n, generator=g) * 2  # [T, N]
        _, ids = select_experts(logits, k, policy=policy, valid=valid)
        tally.record(layer, ids, logits, policy)
        _, plain = select_experts(logits, k, policy="topk", valid=valid)
        want.append([int(count_active_experts(plain, valid, num_experts=n)),
                     int(count_active_experts(ids, valid, num_experts=n))])
    assert tally.finalize(policy, t + pad, valid).tolist() == want
    # reset clears the previous step
    tally.reset()
    assert tally.hits.sum() == 0
