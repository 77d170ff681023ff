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

from lynx.kernels.triton_interpret import patch_interpreter  # noqa: E402

patch_interpreter()

from lynx.kernels import fused_experts  # noqa: E402
from lynx.kernels.moe_align import moe_align_reference  # noqa: E402
from lynx.kernels.moe_config import TritonMoEConfig  # noqa: E402
from lynx.kernels.triton_moe import fused_experts_triton  # noqa: E402
from lynx.kernels.triton_moe_align import moe_align_triton  # noqa: E402

# small tiles so that the tiny shapes still span several N tiles, K tiles and M blocks
SMALL = TritonMoEConfig(block_m=16, block_n1=16, block_k1=32, block_n2=16, block_k2=16, block_h_sum=32)


@pytest.mark.parametrize(
    "t,k,e,block_m,active",
    [(1, 1, 4, 16, None), (1, 8, 128, 16, None), (16, 8, 128, 16, 12), (40, 2, 8, 16, None),
     (64, 8, 128, 32, None), (3, 4, 600, 16, None), (70, 4, 16, 64, 5)],
)
def test_align_kernel_equals_reference(t: int, k: int, e: int, block_m: int, active: int | None) -> None:
    case = make_case(t, k, e, 8, 8, active=active, pad_rows=(0,) if t > 1 else (), seed=t + e)
    got = moe_align_triton(case.topk_ids, case.topk_weights, e, block_m)
    want = moe_align_reference(case.topk_ids, case.topk_weights, e, block_m)
    assert torch.equal(got.num_slots, want.num_slots)
    assert torch.equal(got.block_expert, want.block_expert)
    assert torch.equal(got.sorted_pair_ids, want.sorted_pair_ids)


CASES = [
    # (T, k, E, H, I, active, config)
    (1, 2, 8, 64, 32, None, None),  # default config: one K tile wider than H
    (5, 3, 8, 80, 48, None, SMALL),  # K tail (80 % 32) and N tail (48 % 16... none) paths
    (16, 4, 32, 64, 40, 6, SMALL),  # few active experts, N tail in both GEMMs (40 % 16)
    (21, 2, 8, 48, 32, None, SMALL.with_(block_m=16, ctas_per_sm=0)),  # experts span >1 block
    (21, 2, 8, 48, 32, None, SMALL.with_(block_m=32, ctas_per_sm=1)),  # persistent M loop
]


@pytest.mark.parametrize("case_args", CASES, ids=lambda c: "T{}k{}E{}H{}I{}a{}".format(*c[:6]))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_moe_matches_reference(case_args: tuple, dtype: torch.dtype) -> None:
    t, k, e, h, i, active, cfg = case_args
    pad = (1, t - 1) if t > 2 else ()
    case = make_case(t, k, e, h, i, dtype=dtype, active=active, pad_rows=pad, seed=t * 7 + h, poison=True)
    out = fused_experts_triton(*case.args(), config=cfg)
    assert out.dtype == dtype and out.shape == (t, h)
    assert torch.isfinite(out.float()).all()  # NaN-poisoned inactive experts / padding never used
    for row in pad:
        assert torch.equal(out[row].float(), torch.zeros(h))
    err = rel_err(out, per_token_oracle(case))
    assert err < (1e-5 if dtype == torch.float32 else 2e-2), err


def test_explicit_triton_backend_dispatch() -> None:
    case = make_case(3, 2, 4, 32, 16)
    out = fused_experts(*case.args(), backend="triton")
    assert rel_err(out, per_token_oracle(case)) < 1e-5
