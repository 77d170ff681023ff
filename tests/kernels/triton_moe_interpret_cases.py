"""Triton fused-MoE kernels in Triton's CPU interpreter (run by test_triton_moe_interpret.py).

Not collected directly (the name does not start with ``test_``): ``TRITON_INTERPRET=1`` has
to be set before the kernels are defined, so the outer test runs this file with pytest in
a subprocess whose environment has it.
"""

from __future__ import annotations

import os

import pytest
import torch
from moe_cases import make_case, per_token_oracle, rel_err

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("needs TRITON_INTERPRET=1 (run via test_triton_moe_interpret.py)", allow_module_level=True)
pytest.importorskip("triton")

from lynx.kernels.moe_interpret import patch_interpreter_sort, use_numpy_sort  # noqa: E402
from lynx.kernels.triton_interpret import patch_interpreter  # noqa: E402

patch_interpreter()
patch_interpreter_sort()  # NumPy tl.sort: the interpreter's bitonic network is minutes per test

from lynx.kernels import fused_experts  # noqa: E402
from lynx.kernels import triton_moe as tm  # noqa: E402
from lynx.kernels.moe_align import moe_align_reference  # noqa: E402
from lynx.kernels.moe_align_legacy import moe_align_legacy  # noqa: E402
from lynx.kernels.moe_config import TritonMoEConfig  # noqa: E402
from lynx.kernels.triton_moe import fused_experts_triton  # noqa: E402
from lynx.kernels.triton_moe_align import SMALL_MAX_PAIRS, moe_align_triton  # noqa: E402

# small tiles so that the tiny shapes still span several N tiles, K tiles and M blocks
SMALL = TritonMoEConfig(block_m=16, block_n1=16, block_k1=32, block_n2=16, block_k2=16, block_h_sum=32)


def assert_same_routing(got, want) -> None:  # noqa: ANN001
    assert torch.equal(got.num_slots, want.num_slots), (got.num_slots, want.num_slots)
    assert torch.equal(got.block_expert, want.block_expert)
    assert torch.equal(got.sorted_pair_ids, want.sorted_pair_ids)


def random_routing(seed: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """``(ids [T, k], weights [T, k], E, block_m)``: decode-sized, skewed, padded, sometimes duplicated."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda n: int(torch.randint(n, (1,), generator=gen))  # noqa: E731
    t = [1, 1 + r(8), 1 + r(64), 64][r(4)]
    e = [4, 8, 60, 128, 256][r(5)]
    k = min(e, [1, 2, 4, 8][r(4)])
    block_m = [4, 16, 32, 64][r(4)]
    active = max(k, 1 + r(e))  # often few experts: some experts get many pairs, most none
    pool = torch.randperm(e, generator=gen)[:active]
    if r(5) == 0:  # duplicates inside a token (not produced by top-k, still well defined)
        ids = pool[torch.randint(active, (t, k), generator=gen)]
    else:
        ids = torch.stack([pool[torch.randperm(active, generator=gen)[:k]] for _ in range(t)])
    weights = torch.rand(t, k, generator=gen) + 0.05
    pad = torch.rand(t, generator=gen) < 0.2  # padding tokens: all-zero rows
    weights[pad] = 0.0
    weights[torch.rand(t, k, generator=gen) < 0.05] = 0.0  # and a few single dropped pairs
    return ids, weights, e, block_m


@pytest.mark.parametrize("seed", range(40))
def test_align_kernel_equals_reference_random(seed: int) -> None:
    ids, weights, e, block_m = random_routing(seed)
    want = moe_align_reference(ids, weights, e, block_m)
    assert_same_routing(moe_align_triton(ids, weights, e, block_m), want)  # single-program kernel
    assert_same_routing(moe_align_triton(ids, weights, e, block_m, chunked=True), want)


@pytest.mark.parametrize(
    "t,k,e,block_m,active",
    [(1, 1, 4, 16, None), (1, 8, 128, 16, None), (16, 8, 128, 16, 12), (40, 2, 8, 16, None),
     (64, 8, 128, 32, None), (3, 4, 600, 16, None), (70, 4, 16, 64, 5), (64, 8, 128, 64, 8),
     (129, 8, 128, 64, None), (300, 8, 64, 16, 20), (20, 2, 2, 4, None)],
)
def test_align_kernel_equals_reference(t: int, k: int, e: int, block_m: int, active: int | None) -> None:
    case = make_case(t, k, e, 8, 8, active=active, pad_rows=(0,) if t > 1 else (), seed=t + e)
    want = moe_align_reference(case.topk_ids, case.topk_weights, e, block_m)
    got = moe_align_triton(case.topk_ids, case.topk_weights, e, block_m)  # chunked above SMALL_MAX_PAIRS
    assert got.num_pairs == want.num_pairs and got.block_m == block_m
    assert_same_routing(got, want)
    if t * k <= SMALL_MAX_PAIRS:
        assert_same_routing(moe_align_triton(case.topk_ids, case.topk_weights, e, block_m, chunked=True), want)
    if t * k <= 512:
        assert_same_routing(moe_align_legacy(case.topk_ids, case.topk_weights, e, block_m), want)


@pytest.mark.parametrize("seed", [0, 3, 7])
def test_align_with_tritons_own_sort(seed: int) -> None:
    """The rest of this file sorts with NumPy (speed); here Triton's bitonic tl.sort itself."""
    ids, weights, e, block_m = random_routing(seed)
    use_numpy_sort(False)
    try:
        got = moe_align_triton(ids, weights, e, block_m)
    finally:
        use_numpy_sort(True)
    assert_same_routing(got, moe_align_reference(ids, weights, e, block_m))


def test_align_edge_cases() -> None:
    for chunked in (False, True):
        ids = torch.tensor([[0, 1], [2, 3]])
        for weights in (torch.zeros(2, 2), torch.tensor([[0.0, 0.5], [0.0, 0.0]])):  # all / all-but-one dropped
            want = moe_align_reference(ids, weights, 4, 16)
            assert_same_routing(moe_align_triton(ids, weights, 4, 16, chunked=chunked), want)
        ids = torch.zeros(40, 1, dtype=torch.long)  # one expert, three blocks of 16
        assert_same_routing(moe_align_triton(ids, torch.ones(40, 1), 3, 16, chunked=chunked),
                            moe_align_reference(ids, torch.ones(40, 1), 3, 16))
        ids = torch.tensor([[5]])  # T = 1, k = 1, last expert
        assert_same_routing(moe_align_triton(ids, torch.ones(1, 1), 6, 16, chunked=chunked),
                            moe_align_reference(ids, torch.ones(1, 1), 6, 16))


CASES = [
    # (T, k, E, H, I, active, config)
    (1, 2, 8, 64, 32, None, None),  # default config: one K tile wider than H
    (5, 3, 8, 80, 48, None, SMALL),  # K tail (80 % 32) and N tail (48 % 16... none) paths
    (16, 4, 32, 64, 40, 6, SMALL),  # few active experts, N tail in both GEMMs (40 % 16)
    (21, 2, 8, 48, 32, None, SMALL.with_(block_m=16, ctas_per_sm=0)),  # experts span >1 block
    (21, 2, 8, 48, 32, None, SMALL.with_(block_m=32, ctas_per_sm=1)),  # persistent M loop
    (21, 2, 8, 48, 32, None, SMALL.with_(block_m=16, ctas_per_sm=1, ctas_per_sm2=0)),  # down grid != gate_up's
    # one N tile per kernel (H = I = 16): persistent grids of 12 (gate_up) and 8 (down) programs
    # on the interpreter's 4 "SMs", over 13 possible blocks: their scratch tables differ in size
    (40, 2, 8, 16, 16, None, SMALL.with_(block_m=16, ctas_per_sm=3, ctas_per_sm2=2)),
    (40, 2, 8, 48, 32, 2, SMALL),  # two experts, 40 pairs each: three blocks of 16 per expert
    (9, 8, 128, 32, 16, None, SMALL.with_(block_n2=32)),  # E = 128, the fused k-sum over 8 slots
]
MODES = {  # dtype: (align, fuse_sum) combinations
    torch.float32: [("fused", True), ("fused", False), ("kernel", True), ("kernel", False), ("legacy", False)],
    torch.bfloat16: [("fused", True), ("kernel", False), ("legacy", False)],
}


@pytest.mark.parametrize("case_args", CASES, ids=lambda c: "T{}k{}E{}H{}I{}a{}".format(*c[:6]))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_moe_matches_reference(case_args: tuple, dtype: torch.dtype) -> None:
    t, k, e, h, i, active, cfg = case_args
    pad = (1, t - 1) if t > 2 else ()
    case = make_case(t, k, e, h, i, dtype=dtype, active=active, pad_rows=pad, seed=t * 7 + h, poison=True)
    oracle = per_token_oracle(case)
    base = cfg or TritonMoEConfig(block_m=16)
    first = None
    for align, fuse_sum in MODES[dtype]:
        out = fused_experts_triton(*case.args(), config=base.with_(align=align, fuse_sum=fuse_sum))
        assert out.dtype == dtype and out.shape == (t, h)
        assert torch.isfinite(out.float()).all()  # NaN-poisoned inactive experts / padding never used
        for row in pad:
            assert torch.equal(out[row].float(), torch.zeros(h))
        err = rel_err(out, oracle)
        assert err < (1e-5 if dtype == torch.float32 else 2e-2), (align, fuse_sum, err)
        # every mode computes the same rows in the same order: bit-identical outputs
        first = out if first is None else first
        assert torch.equal(out, first), (align, fuse_sum)
    if cfg is None:  # the default config (fused align, fused sum) through the public entry point
        assert torch.equal(fused_experts_triton(*case.args()), first)


def test_fused_sum_counters_reset_for_replay() -> None:
    case = make_case(6, 2, 8, 32, 16, pad_rows=(2,), seed=5)
    cfg = SMALL.with_(fuse_sum=True)
    routing = tm.make_routing(case.topk_ids, case.topk_weights, 8, cfg)
    counters = torch.zeros(tm.sum_counters(32, cfg, torch.device("cpu")).numel(), dtype=torch.int32)
    inter = tm.gate_up_silu(case.hidden, case.w13, routing, cfg)  # no counters: leaves them alone
    outs = [tm.down_weighted(inter, case.w2, routing, cfg, counters)[1] for _ in range(2)]  # down alone, twice
    assert torch.equal(counters, torch.zeros_like(counters))
    assert torch.equal(outs[0], outs[1])
    assert rel_err(outs[0], per_token_oracle(case)) < 1e-5
    counters.fill_(7)  # garbage from an earlier allocation: gate_up zeroes it
    tm.gate_up_silu(case.hidden, case.w13, routing, cfg, counters)
    assert torch.equal(counters, torch.zeros_like(counters))


def test_explicit_triton_backend_dispatch() -> None:
    case = make_case(3, 2, 4, 32, 16)
    out = fused_experts(*case.args(), backend="triton")
    assert rel_err(out, per_token_oracle(case)) < 1e-5
