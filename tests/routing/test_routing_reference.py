"""The implementation against the plain-Python reference of method.md, exactly."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given

from lynx.routing import count_active_experts, default_routing_params, select_experts
from lynx.routing.lynx import (
    affinity_bins,
    packed_key_fits,
    preference_order_lexicographic,
    preference_order_packed,
)
from lynx.routing.scores import rank_experts

from .cases import SETTINGS, Case, cases, make_logits, make_valid
from .reference import (
    distinct_experts,
    lynx_reference,
    oea_reference,
    topk_reference,
    weights_reference,
)


def _reference(case: Case, rows: list[list[float]]) -> list[list[int]]:
    p = default_routing_params(case.policy, case.num_experts, case.top_k) | case.params
    if case.policy == "lynx":
        return lynx_reference(rows, case.top_k, p["alpha"], p["beta"])
    if case.policy == "oea":
        return oea_reference(rows, case.top_k, p["k0"])
    return topk_reference(rows, case.top_k)


def _valid_rows(case: Case) -> list[list[float]]:
    return case.logits.float()[case.valid_mask()].tolist()


@SETTINGS
@given(cases(max_rows=32))
def test_matches_reference_exactly(case: Case) -> None:
    weights, ids = select_experts(case.logits, valid=case.valid, **case.kwargs())
    rows = _valid_rows(case)
    expected = _reference(case, rows)
    valid = case.valid_mask()
    assert ids[valid].tolist() == expected
    for z, chosen, w in zip(rows, expected, weights[valid].tolist()):
        ref = weights_reference(z, chosen, case.top_k, case.scoring, case.renormalize)
        assert all(math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-7) for a, b in zip(w, ref))


@pytest.mark.parametrize("policy", ["lynx", "oea"])
@pytest.mark.parametrize("shape", [(16, 128, 8), (8, 64, 8), (12, 8, 2), (16, 160, 6)])
def test_mean_active_experts_matches_reference(policy: str, shape: tuple) -> None:
    batch, n, k = shape
    got = want = 0
    for seed in range(8):
        logits = make_logits(seed, batch, n, "skewed")
        valid = make_valid(seed, batch, "random" if seed % 2 else "all")
        _, ids = select_experts(logits, k, policy, valid=valid)
        got += int(count_active_experts(ids, valid, num_experts=n))
        case = Case(logits, k, policy, "softmax", True, valid)
        want += distinct_experts(_reference(case, _valid_rows(case)))
    assert got == want


def test_lynx_beyond_int64_bound_uses_exact_fallback() -> None:
    # beta=12 at 64 rows: (beta+1) * 64**13 >> 2**63, so the packed key would overflow.
    assert not packed_key_fits(64, 12)
    for seed in range(3):
        logits = make_logits(seed, 64, 16, "gaussian")
        case = Case(logits, 4, "lynx", "softmax", True, None, {"alpha": 8.0, "beta": 12})
        _, ids = select_experts(logits, valid=None, **case.kwargs())
        assert ids.tolist() == _reference(case, _valid_rows(case))


@SETTINGS
@given(cases(policies=("lynx",)))
def test_packed_and_lexicographic_orders_agree(case: Case) -> None:
    p = default_routing_params("lynx", case.num_experts, case.top_k) | case.params
    q = affinity_bins(case.logits, p["alpha"], p["beta"])
    valid = case.valid_mask()
    order, _ = rank_experts(case.logits)
    packed = preference_order_packed(q, valid, valid.sum(), p["beta"], order)
    lexi = preference_order_lexicographic(q, valid, p["beta"], order)
    assert torch.equal(packed[valid], lexi[valid])


@pytest.mark.parametrize("beta", [4, 8, 12])
def test_packed_key_exact_at_the_bound(beta: int) -> None:
    # The largest row count the packed key accepts, with the extreme votes: every token
    # puts expert 0 in bin 0 and the rest in the lowest bin, except one dissenter.
    rows = 2
    while packed_key_fits(rows + 1, beta):
        rows += 1
    q = torch.full((rows, 6), -beta)  # [T, N]
    q[:, 0] = 0
    q[0, 3] = 0
    valid = torch.ones(rows, dtype=torch.bool)
    order = torch.randperm(6).expand(rows, 6)  # any per-token ranking
    packed = preference_order_packed(q, valid, valid.sum(), beta, order)
    lexi = preference_order_lexicographic(q, valid, beta, order)
    assert torch.equal(packed, lexi)
