"""Block-aligned routing metadata (pure-torch reference) checked against its definition."""

from __future__ import annotations

import pytest
import torch
from moe_cases import make_case

from lynx.kernels.moe_align import max_num_blocks, moe_align_reference


def check_alignment(ids: torch.Tensor, weights: torch.Tensor, num_experts: int, block_m: int) -> None:
    """Assert every documented invariant of AlignedRouting for these inputs."""
    r = moe_align_reference(ids, weights, num_experts, block_m)
    num_pairs = ids.numel()
    max_blocks = max_num_blocks(num_pairs, num_experts, block_m)
    assert r.sorted_pair_ids.shape == (max_blocks * block_m,) and r.block_expert.shape == (max_blocks,)
    used = int(r.num_slots)
    assert used % block_m == 0 and used <= max_blocks * block_m
    slots = r.sorted_pair_ids.long()
    assert (slots[used:] == num_pairs).all()  # unused tail is padding
    flat_ids, flat_w = ids.reshape(-1), weights.reshape(-1)
    kept = sorted(p for p in range(num_pairs) if flat_w[p] != 0)
    real = slots[:used][slots[:used] < num_pairs].tolist()
    assert sorted(real) == kept  # each kept pair exactly once, dropped pairs never
    for b in range(max_blocks):
        block = slots[b * block_m : (b + 1) * block_m]
        expert = int(r.block_expert[b])
        if b * block_m >= used:
            assert expert == -1
            continue
        members = block[block < num_pairs]
        assert len(members) > 0  # padding never fills a whole block
        assert (flat_ids[members] == expert).all()
        assert members.tolist() == sorted(members.tolist())  # ascending pair order
    used_experts = r.block_expert[: used // block_m].tolist()
    assert used_experts == sorted(used_experts)  # segments in ascending expert order
    assert len(set(used_experts)) == len(set(flat_ids[flat_w != 0].tolist()))


@pytest.mark.parametrize("block_m", [1, 4, 16])
@pytest.mark.parametrize(
    "t,k,e,active", [(1, 1, 4, None), (1, 8, 128, None), (16, 8, 128, 10), (64, 2, 8, None), (5, 3, 300, None)]
)
def test_alignment_invariants(t: int, k: int, e: int, active: int | None, block_m: int) -> None:
    case = make_case(t, k, e, 8, 8, active=active, pad_rows=(t - 1,) if t > 1 else (), seed=e + t)
    check_alignment(case.topk_ids, case.topk_weights, e, block_m)


def test_duplicate_ids_and_single_token() -> None:
    # a token listing an expert twice (not produced by top-k, still well defined): both pairs kept
    ids = torch.tensor([[2, 2, 0], [0, 1, 2]])
    check_alignment(ids, torch.ones(2, 3), 3, 4)
    r = moe_align_reference(ids, torch.ones(2, 3), 3, 4)
    assert r.sorted_pair_ids[:12].tolist() == [2, 3, 6, 6, 4, 6, 6, 6, 0, 1, 5, 6]
    check_alignment(torch.tensor([[7]]), torch.tensor([[0.5]]), 8, 16)  # T = 1, k = 1, last expert


def test_all_pairs_dropped() -> None:
    ids = torch.tensor([[0, 1], [2, 3]])
    r = moe_align_reference(ids, torch.zeros(2, 2), 4, 16)
    assert int(r.num_slots) == 0 and (r.block_expert == -1).all() and (r.sorted_pair_ids == 4).all()


def test_block_bound_is_tight_for_decode() -> None:
    # 16 tokens x 8 slots with block 16: at most one block per active expert (<= 128)
    assert max_num_blocks(128, 128, 16) == 128
    assert max_num_blocks(16, 128, 16) == 16  # T=2, k=8: at most 16 active experts
    # an expert with 17 pairs needs two blocks: bound must allow it
    ids = torch.zeros(17, 1, dtype=torch.long)
    r = moe_align_reference(ids, torch.ones(17, 1), 4, 16)
    assert int(r.num_slots) == 32 and r.block_expert.tolist()[:2] == [0, 0]
    assert r.block_expert.numel() >= 2
