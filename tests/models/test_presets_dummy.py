"""Shape presets and dummy (random, calibrated) weights."""

from __future__ import annotations

import pytest
import torch

from lynx import LLM, SamplingParams
from lynx.errors import LynxError
from lynx.models import parse_model_config
from lynx.models.dummy import TARGET_RATIO, calibrated_router, expected_uniform_experts, mean_distinct
from lynx.models.presets import PRESETS, preset_config

# Published totals / active parameters (billions) of the real models.
PUBLISHED = {
    "qwen3-30b-a3b": (30.5, 3.3),
    "olmoe-1b-7b": (6.9, 1.3),
    "mixtral-8x7b": (46.7, 12.9),
    "qwen2-57b-a14b": (57.4, 14.2),
    "qwen3-32b": (32.8, 32.8),
    "qwen3-4b": (4.0, 4.0),
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts_match_published(name):
    total, active = parse_model_config(preset_config(name)).param_counts()
    want_total, want_active = PUBLISHED[name]
    assert total / 1e9 == pytest.approx(want_total, rel=0.03)
    assert active / 1e9 == pytest.approx(want_active, rel=0.06)


def test_preset_needs_dummy_load_format():
    with pytest.raises(LynxError, match="shape preset without weights: use load_format='dummy'"):
        LLM("qwen3-30b-a3b", device="cpu")


def test_dummy_weights_calibrated_router_skew():
    llm = LLM("tiny-moe", load_format="dummy", device="cpu", dtype="float32", seed=3)
    prompts = [[(37 * i + j) % 2000 + 2 for j in range(5)] for i in range(16)]
    llm.generate(prompts, SamplingParams(max_tokens=8, temperature=0, ignore_eos=True))
    stats = llm.stats()
    cfg = llm.engine.model_config.moe
    target = TARGET_RATIO * expected_uniform_experts(cfg.num_experts, cfg.top_k, 16)
    # Calibrated on prefill inputs; decode batches differ, but stay skewed, far below uniform.
    assert cfg.top_k < stats["mean_active_experts_before"] < 0.85 * expected_uniform_experts(cfg.num_experts, cfg.top_k, 16)
    assert target < 0.85 * expected_uniform_experts(cfg.num_experts, cfg.top_k, 16)


@pytest.mark.parametrize("num_experts, top_k", [(128, 8), (64, 8), (8, 2), (32, 4)])
def test_calibrated_router_hits_target_on_its_inputs(num_experts, top_k):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 64, generator=gen) + 2.0 * torch.randn(64, generator=gen)  # shared part
    w = calibrated_router(x, num_experts, top_k, gen)
    target = TARGET_RATIO * expected_uniform_experts(num_experts, top_k, 16)
    assert mean_distinct(x @ w.T, top_k, 16) == pytest.approx(target, rel=0.05, abs=0.3)


def test_dummy_weights_are_deterministic_and_not_zero():
    a = LLM("tiny-moe", load_format="dummy", device="cpu", dtype="float32", seed=1)
    b = LLM("tiny-moe", load_format="dummy", device="cpu", dtype="float32", seed=1)
    for (name, p), (_, q) in zip(a.engine.runner.model.named_parameters(), b.engine.runner.model.named_parameters()):
        assert p.float().abs().sum() > 0, name
        assert p.equal(q), name
