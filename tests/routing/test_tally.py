"""The batched per-step expert tally equals per-layer counting."""

from __future__ import annotations

import pytest
import torch

from lynx.routing import count_active_experts, select_experts
from lynx.routing.tally import ExpertTally, LayerTally, mark_experts


@pytest.mark.parametrize("policy", ["topk", "lynx", "oea"])
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("keep_logits", [False, True])
def test_tally_matches_per_layer_counts(policy, pad, keep_logits):
    g = torch.Generator().manual_seed(7)
    layers, t, n, k = 3, 12, 32, 4
    # sized for more rows than the step has, like the graphs' shared tally across buckets
    tally = ExpertTally(layers, n, k, device=torch.device("cpu"), max_tokens=t + pad + 5 if keep_logits else 0)
    valid = torch.arange(t + pad) < t
    tally.reset()
    want = []
    for layer in range(layers):
        logits = torch.randn(t + pad, n, generator=g) * 2 + torch.randn(n, generator=g) * 2  # [T, N]
        logits[:t, n - k - 1 :] = -1e4  # no valid row wants the last k+1 experts...
        if pad:  # ...which padding rows prefer: marking them would show in both counts
            logits[t:] = -1e4
            logits[t:, n - k - 1 :] = 1e4
        _, ids = select_experts(logits, k, policy=policy, valid=valid, tally=tally.layer(layer))
        _, plain = select_experts(logits, k, policy="topk", valid=valid)
        want.append([int(count_active_experts(plain, valid, num_experts=n)),
                     int(count_active_experts(ids, valid, num_experts=n))])
    assert tally.finalize(t + pad, valid).tolist() == want
    assert policy == "topk" or any(b > a for b, a in want)  # the policies really shrink the set
    # reset clears the previous step
    tally.reset()
    assert tally.hits.sum() == 0


def test_mark_experts_only_counts_valid_rows():
    tally = LayerTally(torch.zeros(2, 6, dtype=torch.int32), None)
    before = torch.tensor([[0, 1], [4, 5]])
    after = torch.tensor([[0, 2], [3, 5]])
    logits = torch.zeros(2, 6)
    mark_experts(tally, before, after, torch.tensor([True, False]), logits)
    assert tally.hits.tolist() == [[1, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 0]]
    mark_experts(tally, before, after, torch.tensor([False, True]), logits)  # accumulates
    assert tally.hits.tolist() == [[1, 1, 0, 0, 1, 1], [1, 0, 1, 1, 0, 1]]
    kept = LayerTally(torch.zeros(2, 6, dtype=torch.int32), torch.full((4, 6), -1.0))
    mark_experts(kept, before, after, torch.tensor([True, True]), logits)
    assert kept.hits[0].sum() == 0 and kept.hits[1].sum() == 4  # plain top-k is left to finalize
    assert kept.logits[:2].eq(0).all() and kept.logits[2:].eq(-1).all()
