"""Properties every routing policy must have, over random logits, masks and settings."""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

from lynx.routing import count_active_experts, default_routing_params, select_experts
from lynx.routing.lynx import affinity_bins

from .cases import SETTINGS, Case, cases, make_logits


def _scores(case: Case) -> torch.Tensor:
    z = case.logits.float()
    return torch.softmax(z, -1) if case.scoring == "softmax" else torch.sigmoid(z)


def _route(case: Case, logits: torch.Tensor | None = None, valid=...) -> tuple:
    logits = case.logits if logits is None else logits
    valid = case.valid if valid is ... else valid
    return select_experts(logits, valid=valid, **case.kwargs())


@SETTINGS
@given(cases())
def test_ids_weights_and_padding_contract(case: Case) -> None:
    weights, ids = _route(case)
    t, n, k = *case.logits.shape, case.top_k
    assert ids.shape == (t, k) and ids.dtype == torch.int64
    assert weights.shape == (t, k) and weights.dtype == torch.float32
    valid = case.valid_mask()
    z = case.logits.float()
    scores = _scores(case)
    top_mass = scores.sort(-1, descending=True).values[:, :k].sum(-1)
    for row in range(t):
        ids_row = ids[row].tolist()
        assert len(set(ids_row)) == k and all(0 <= e < n for e in ids_row)
        if not valid[row]:
            continue
        w = weights[row]
        assert (w >= 0).all()
        expected = 1.0 if case.renormalize else float(top_mass[row])
        assert math.isclose(float(w.sum()), expected, rel_tol=1e-5, abs_tol=1e-6)
        # Slots best first: logits non-increasing, equal logits in index order.
        keys = [(-float(z[row, e]), e) for e in ids_row]
        assert keys == sorted(keys)
    # Padding rows: weight 0, ids of the first valid row (row 0 if none is valid).
    first = int(valid.long().argmax())
    assert (weights[~valid] == 0).all()
    assert (ids[~valid] == ids[first]).all()


@SETTINGS
@given(cases())
def test_deterministic(case: Case) -> None:
    w1, i1 = _route(case)
    w2, i2 = _route(case)
    assert torch.equal(i1, i2) and torch.equal(w1, w2)


@SETTINGS
@given(cases(valid_modes=("one",)), st.booleans())
def test_single_valid_token_routes_as_topk(case: Case, alone: bool) -> None:
    valid = case.valid_mask()
    logits = case.logits[valid] if alone else case.logits
    mask = None if alone else valid
    w, i = select_experts(logits, valid=mask, **case.kwargs())
    plain = dict(case.kwargs(), policy="topk")
    for name in ("alpha", "beta", "k0"):
        plain.pop(name, None)
    w_ref, i_ref = select_experts(logits, valid=mask, **plain)
    assert torch.equal(i, i_ref) and torch.equal(w, w_ref)


@SETTINGS
@given(cases(valid_modes=("random", "one")))
def test_padding_rows_change_nothing(case: Case) -> None:
    valid = case.valid_mask()
    w_pad, i_pad = _route(case)
    w_dense, i_dense = _route(case, logits=case.logits[valid], valid=None)
    assert torch.equal(i_pad[valid], i_dense)
    # Ids are exact; weights only to the last bit: torch's CPU elementwise kernels (e.g.
    # sigmoid) may round an element differently depending on the tensor's length.
    torch.testing.assert_close(w_pad[valid], w_dense, rtol=1e-6, atol=1e-7)
    n = case.num_experts
    assert torch.equal(
        count_active_experts(i_pad, valid, num_experts=n),
        count_active_experts(i_dense, num_experts=n),
    )


@SETTINGS
@given(cases())
def test_count_active_experts_matches_python(case: Case) -> None:
    _, ids = _route(case)
    valid = case.valid_mask()
    expected = len({e for row, ok in zip(ids.tolist(), valid.tolist()) if ok for e in row})
    got = count_active_experts(ids, case.valid, num_experts=case.num_experts)
    assert got.dtype == torch.int64 and got.dim() == 0 and int(got) == expected


@SETTINGS
@given(cases(policies=("topk",)))
def test_topk_without_renormalisation_returns_raw_scores(case: Case) -> None:
    case.renormalize = False
    weights, ids = _route(case)
    valid = case.valid_mask()
    raw = _scores(case).gather(1, ids)
    assert torch.equal(weights[valid], raw[valid])
    ref = _scores(case).topk(case.top_k, dim=-1).values
    assert torch.equal(weights[valid], ref[valid])


@SETTINGS
@given(cases(policies=("lynx",)))
def test_lynx_keeps_top1_when_bin0_fits(case: Case) -> None:
    weights, ids = _route(case)
    n, k = case.num_experts, case.top_k
    p = default_routing_params("lynx", n, k) | case.params
    q = affinity_bins(case.logits.float(), p["alpha"], p["beta"])
    best = case.logits.float().argmax(-1)  # first maximum: the top-1 under our tie rule
    for row in torch.arange(len(ids))[case.valid_mask()].tolist():
        if int((q[row] == 0).sum()) <= k:
            assert int(ids[row, 0]) == int(best[row])


def test_lynx_reduces_active_experts_on_skewed_batches() -> None:
    n, k, batch = 128, 8, 16
    totals = {"topk": 0, "lynx": 0, "oea": 0}
    for seed in range(50):
        logits = make_logits(seed, batch, n, "skewed")
        for policy in totals:
            _, ids = select_experts(logits, k, policy)
            totals[policy] += int(count_active_experts(ids, num_experts=n))
    assert totals["lynx"] < totals["topk"] and totals["oea"] < totals["topk"]


def test_empty_batch() -> None:
    w, i = select_experts(torch.zeros(0, 8), 2, "lynx")
    assert w.shape == (0, 2) and i.shape == (0, 2)
