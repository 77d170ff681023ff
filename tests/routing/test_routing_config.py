"""RoutingConfig, parameter validation (with its messages) and the defaults table."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from lynx.errors import RoutingConfigError
from lynx.routing import POLICIES, RoutingConfig, default_routing_params, select_experts

LOGITS = torch.randn(4, 16)


def test_unknown_policy_lists_the_valid_ones() -> None:
    with pytest.raises(RoutingConfigError, match=r"unknown routing policy 'fast'.*topk, lynx, oea"):
        RoutingConfig("fast")
    with pytest.raises(RoutingConfigError, match=r"valid policies: topk, lynx, oea"):
        select_experts(LOGITS, 2, "fast")


def test_unknown_parameter_names_it_and_the_accepted_ones() -> None:
    with pytest.raises(RoutingConfigError, match=r"'gamma'.*'lynx'.*accepted: alpha, beta"):
        RoutingConfig("lynx", {"gamma": 1})
    with pytest.raises(RoutingConfigError, match=r"'alpha'.*'oea'.*accepted: k0"):
        select_experts(LOGITS, 2, "oea", alpha=1.0)
    with pytest.raises(RoutingConfigError, match=r"'k0'.*'topk'.*accepted: none"):
        select_experts(LOGITS, 2, "topk", k0=1)


@pytest.mark.parametrize("alpha", [0, -1.0, math.inf, math.nan, True, "3"])
def test_alpha_must_be_positive_and_finite(alpha: object) -> None:
    with pytest.raises(RoutingConfigError, match=r"alpha must be a finite number > 0"):
        RoutingConfig("lynx", {"alpha": alpha})
    with pytest.raises(RoutingConfigError, match=r"alpha must be a finite number > 0"):
        select_experts(LOGITS, 2, "lynx", alpha=alpha)


@pytest.mark.parametrize("beta", [0, -2, 1.5, 2.0, True])
def test_beta_must_be_an_integer_at_least_one(beta: object) -> None:
    with pytest.raises(RoutingConfigError, match=r"beta must be an integer >= 1"):
        RoutingConfig("lynx", {"beta": beta})


@pytest.mark.parametrize("k0", [0, 5, 2.0])
def test_k0_must_lie_in_one_to_top_k(k0: object) -> None:
    with pytest.raises(RoutingConfigError, match=r"k0 must be an integer with 1 <= k0 <= top_k"):
        RoutingConfig("oea", {"k0": k0}).resolve(num_experts=16, top_k=4)
    with pytest.raises(RoutingConfigError, match=r"1 <= k0 <= top_k \(= 4\)"):
        select_experts(LOGITS, 4, "oea", k0=k0)


def test_k0_upper_bound_is_checked_at_resolve_time() -> None:
    cfg = RoutingConfig("oea", {"k0": 6})  # fine until the model's top_k is known
    assert cfg.resolve(num_experts=128, top_k=8) == {"k0": 6}
    with pytest.raises(RoutingConfigError, match=r"k0 <= top_k \(= 4\), got 6"):
        cfg.resolve(num_experts=128, top_k=4)


def test_unknown_scoring_lists_the_valid_ones() -> None:
    with pytest.raises(RoutingConfigError, match=r"'relu'; valid scorings: softmax, sigmoid"):
        select_experts(LOGITS, 2, scoring="relu")


def test_bad_top_k() -> None:
    with pytest.raises(RoutingConfigError, match=r"1 <= top_k <= num_experts"):
        select_experts(LOGITS, 17)
    with pytest.raises(RoutingConfigError, match=r"1 <= top_k <= num_experts"):
        select_experts(LOGITS, 0)


def test_routing_config_is_frozen_slotted_and_hashable() -> None:
    cfg = RoutingConfig("lynx", {"beta": 2, "alpha": 3})
    assert POLICIES == ("topk", "lynx", "oea")
    assert cfg.params == (("alpha", 3), ("beta", 2))
    assert cfg == RoutingConfig("lynx", (("beta", 2), ("alpha", 3)))
    assert hash(cfg) == hash(RoutingConfig("lynx", {"alpha": 3, "beta": 2}))
    assert not hasattr(cfg, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.policy = "topk"  # type: ignore[misc]
    with pytest.raises(RoutingConfigError, match="mapping"):
        RoutingConfig("lynx", 3)  # type: ignore[arg-type]


def test_resolve_fills_defaults_and_keeps_overrides() -> None:
    assert RoutingConfig().resolve(128, 8) == {}
    assert RoutingConfig("lynx").resolve(128, 8) == {"alpha": 3.0, "beta": 2}
    resolved = RoutingConfig("lynx", {"beta": 3}).resolve(128, 8)
    assert resolved == {"alpha": 3.0, "beta": 3} and isinstance(resolved["alpha"], float)
    assert RoutingConfig("oea").resolve(128, 8) == {"k0": 5}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((8, 2), (0.7, 1)),  # Mixtral-8x7B
        ((64, 8), (3.0, 4)),  # Qwen2-57B-A14B
        ((128, 8), (3.0, 2)),  # Qwen3-30B-A3B, Qwen3-235B
        ((160, 6), (1.1, 2)),  # DeepSeek-Coder-V2
        ((128, 4), (3.0, 2)),  # GPT-OSS-120B
        ((16, 4), (0.7, 1)),  # rule: coarse experts
        ((32, 4), (3.0, 2)),  # rule: fine-grained experts
        ((256, 8), (3.0, 2)),
    ],
)
def test_lynx_defaults(shape: tuple[int, int], expected: tuple[float, int]) -> None:
    p = default_routing_params("lynx", *shape)
    assert (p["alpha"], p["beta"]) == expected
    assert default_routing_params("lynx", *shape, architecture="Qwen3MoeForCausalLM") == p


@pytest.mark.parametrize(("k", "k0"), [(1, 1), (2, 1), (4, 3), (6, 4), (8, 5), (16, 10)])
def test_oea_default_k0(k: int, k0: int) -> None:
    assert default_routing_params("oea", 128, k) == {"k0": k0}
    assert default_routing_params("topk", 128, k) == {}
