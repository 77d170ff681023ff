"""The PyTorch reference (CPU path) and the CPU-runnable backends against independent oracles."""

from __future__ import annotations

import pytest
import torch
from moe_cases import make_case, per_token_oracle, rel_err

from lynx.kernels import fused_experts, fused_experts_reference, resolve_backend, set_default_backend
from lynx.kernels.dispatch import grouped_mm_available

SHAPES = [
    # (T, k, E, H, I, active experts)
    (1, 1, 4, 16, 8, None),
    (1, 4, 8, 32, 16, None),
    (7, 2, 8, 32, 24, None),
    (16, 4, 32, 64, 32, 6),  # most experts get no token
    (33, 3, 5, 24, 40, None),  # I > H, odd sizes
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}k{}E{}H{}I{}a{}".format(*s))
def test_reference_matches_float64_per_token_loop(shape: tuple) -> None:
    t, k, e, h, i, active = shape
    pad = (0, t - 1) if t > 2 else ()
    case = make_case(t, k, e, h, i, active=active, pad_rows=pad, seed=t * 31 + e)
    out = fused_experts_reference(*case.args())
    oracle = per_token_oracle(case)
    assert out.dtype == torch.float32 and out.shape == (t, h)
    assert torch.allclose(out.double(), oracle, rtol=1e-5, atol=1e-6)
    for row in pad:
        assert torch.equal(out[row], torch.zeros(h))


def test_padding_rows_are_exact_zero_even_with_nan_hidden() -> None:
    case = make_case(6, 2, 8, 16, 8, pad_rows=(1, 4), poison=True)
    out = fused_experts_reference(*case.args())
    assert torch.isfinite(out).all()  # poisoned experts and padding hidden states never used
    assert torch.equal(out[1], torch.zeros(16)) and torch.equal(out[4], torch.zeros(16))
    assert rel_err(out, per_token_oracle(case)) < 1e-6


def test_empty_batch() -> None:
    case = make_case(0, 2, 4, 16, 8)
    assert fused_experts_reference(*case.args()).shape == (0, 16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_reference_bit_identical_to_transformers(dtype: torch.dtype) -> None:
    """Same ops in the same order as transformers' eager Qwen3MoeExperts (its router hands it
    model-dtype weights, which is what ``w.to(dtype)`` in the reference reproduces)."""
    qwen3 = pytest.importorskip("transformers.models.qwen3_moe.modeling_qwen3_moe")
    from transformers import Qwen3MoeConfig

    cfg = Qwen3MoeConfig(hidden_size=32, moe_intermediate_size=16, num_experts=8, num_experts_per_tok=3)
    experts = qwen3.Qwen3MoeExperts(cfg)
    case = make_case(11, 3, 8, 32, 16, active=5, seed=3)
    with torch.no_grad():
        experts.gate_up_proj.copy_(case.w13)
        experts.down_proj.copy_(case.w2)
        experts = experts.to(dtype)
        hf = experts(case.hidden.to(dtype), case.topk_ids, case.topk_weights.to(dtype))
    ours = fused_experts_reference(
        case.hidden.to(dtype), experts.gate_up_proj, experts.down_proj, case.topk_weights, case.topk_ids
    )
    assert torch.equal(hf, ours)


@pytest.mark.skipif(not grouped_mm_available(), reason="this torch has no grouped_mm")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grouped_mm_backend_on_cpu(dtype: torch.dtype) -> None:
    case = make_case(9, 3, 16, 32, 16, active=7, pad_rows=(2,), poison=True)
    case.hidden, case.w13, case.w2 = case.hidden.to(dtype), case.w13.to(dtype), case.w2.to(dtype)
    try:
        out = fused_experts(*case.args(), backend="grouped_mm")
    except (RuntimeError, NotImplementedError) as exc:  # e.g. a torch without the CPU kernel
        pytest.skip(f"grouped_mm unsupported here: {exc}")
    assert out.dtype == dtype and torch.isfinite(out.float()).all()
    assert torch.equal(out[2].float(), torch.zeros(32))
    assert rel_err(out, per_token_oracle(case)) < (1e-5 if dtype == torch.float32 else 2e-2)


def test_auto_dispatch_on_cpu_is_reference() -> None:
    case = make_case(4, 2, 8, 16, 8)
    assert resolve_backend("auto", case.hidden, 8) == "reference"
    assert torch.equal(fused_experts(*case.args()), fused_experts_reference(*case.args()))
    with pytest.raises(ValueError):
        fused_experts(*case.args(), backend="cutlass")


def test_set_default_backend() -> None:
    case = make_case(2, 2, 4, 16, 8)
    set_default_backend("reference")
    try:
        assert resolve_backend("auto", case.hidden, 4) == "reference"
        with pytest.raises(ValueError):
            set_default_backend("nope")
    finally:
        set_default_backend("auto")
