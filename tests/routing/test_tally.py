"""The batched per-step expert tally equals per-layer counting."""

from __future__ import annotations

import pytest
import torch

from lynx.routing import count_active_experts, select_experts
from lynx.routing.tally import ExpertTally, mark_experts


@pytest.mark.parametrize("policy", ["topk", "lynx", "oea"])
@pytest.mark.parametrize("pad", [0, 3])
def test_tally_matches_per_layer_counts(policy, pad):
    g = torch.Generator().manual_seed(7)
    layers, t, n, k = 3, 12, 32, 4
    tally = ExpertTally(layers, n, device=torch.device("cpu"))
    valid = torch.arange(t + pad) < t
    tally.reset()
    want = []
    for layer in range(layers):
        logits = torch.randn(t + pad, n, generator=g) * 2 + torch.randn(n, generator=g) * 2  # [T, N]
        if pad:  # padding rows prefer experts no valid row uses: marking them would show
            logits[t:] = -1e4
            logits[t:, : k + 1] = 1e4
        _, ids = select_experts(logits, k, policy=policy, valid=valid, expert_hits=tally.layer(layer))
        _, plain = select_experts(logits, k, policy="topk", valid=valid)
        want.append([int(count_active_experts(plain, valid, num_experts=n)),
                     int(count_active_experts(ids, valid, num_experts=n))])
    assert tally.finalize().tolist() == want
    assert want[0][1] <= want[0][0] or policy == "topk"
    # reset clears the previous step
    tally.reset()
    assert tally.hits.sum() == 0


def test_mark_experts_only_counts_valid_rows():
    hits = torch.zeros(2, 6, dtype=torch.int32)
    before = torch.tensor([[0, 1], [4, 5]])
    after = torch.tensor([[0, 2], [3, 5]])
    mark_experts(hits, before, after, torch.tensor([True, False]))
    assert hits.tolist() == [[1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0]]
    mark_experts(hits, before, after, torch.tensor([False, True]))  # accumulates
    assert hits.tolist() == [[1, 1, 0, 0, 1, 1], [1, 0, 1, 1, 0, 1]]
