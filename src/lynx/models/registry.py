"""Supported architectures and what distinguishes them.

Each Hugging Face ``architectures`` name maps to an :class:`ArchSpec`: attention details
(q/k norm, biases), which layers are sparse, how the MoE is configured, and the names its
checkpoint gives the MoE weights. All of them run through one decoder implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lynx.errors import UnsupportedArchitectureError
from lynx.models.config import MoEConfig


def _sliding_all(cfg: dict[str, Any], layers: int) -> list[str]:
    # Mixtral has no switch: a sliding_window value enables it on every layer.
    on = cfg.get("sliding_window") is not None and cfg.get("use_sliding_window", True)
    return ["sliding_attention" if on else "full_attention"] * layers


def _sliding_all_if_enabled(cfg: dict[str, Any], layers: int) -> list[str]:
    # Qwen3-MoE: every layer when use_sliding_window is set (off by default).
    on = bool(cfg.get("use_sliding_window")) and cfg.get("sliding_window") is not None
    return ["sliding_attention" if on else "full_attention"] * layers


def _sliding_from(cfg: dict[str, Any], layers: int) -> list[str]:
    # Qwen2/Qwen3: layers at or above max_window_layers use the window when enabled.
    on = bool(cfg.get("use_sliding_window")) and cfg.get("sliding_window") is not None
    first = int(cfg.get("max_window_layers", layers) or 0)
    return ["sliding_attention" if on and i >= first else "full_attention" for i in range(layers)]


def _sliding_qwen2_moe(cfg: dict[str, Any], layers: int) -> list[str]:
    on = bool(cfg.get("use_sliding_window")) and bool(cfg.get("sliding_window"))
    first = int(cfg.get("max_window_layers", layers) or 0)
    return ["sliding_attention" if on and (i + 1) % 2 and i < first else "full_attention" for i in range(layers)]


def _no_moe(cfg: dict[str, Any], layers: int) -> tuple[MoEConfig | None, list[bool]]:
    return None, [False] * layers


def _qwen_moe(cfg: dict[str, Any], layers: int, shared: bool) -> tuple[MoEConfig | None, list[bool]]:
    n = int(cfg.get("num_experts") or cfg.get("num_local_experts") or 0)
    step = int(cfg.get("decoder_sparse_step", 1) or 1)
    dense = set(cfg.get("mlp_only_layers") or [])
    flags = [n > 0 and i not in dense and (i + 1) % step == 0 for i in range(layers)]
    moe = MoEConfig(
        num_experts=n,
        top_k=int(cfg["num_experts_per_tok"]),
        intermediate_size=int(cfg["moe_intermediate_size"]),
        renormalize=bool(cfg.get("norm_topk_prob", False)),
        shared_expert_intermediate_size=int(cfg.get("shared_expert_intermediate_size") or 0) if shared else 0,
    )
    return moe, flags


def _mixtral_moe(cfg: dict[str, Any], layers: int) -> tuple[MoEConfig | None, list[bool]]:
    moe = MoEConfig(
        num_experts=int(cfg.get("num_local_experts") or cfg.get("num_experts")),
        top_k=int(cfg["num_experts_per_tok"]),
        intermediate_size=int(cfg["intermediate_size"]),
        renormalize=True,  # Mixtral always renormalises over its top-2
    )
    return moe, [True] * layers


def _olmoe_moe(cfg: dict[str, Any], layers: int) -> tuple[MoEConfig | None, list[bool]]:
    moe = MoEConfig(
        num_experts=int(cfg.get("num_experts") or cfg.get("num_local_experts")),
        top_k=int(cfg["num_experts_per_tok"]),
        intermediate_size=int(cfg["intermediate_size"]),
        renormalize=bool(cfg.get("norm_topk_prob", False)),
    )
    return moe, [True] * layers


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """What one architecture needs beyond the shared decoder."""

    name: str
    qk_norm: str  # none | head | full
    qkv_bias: bool | None  # None: follow config "attention_bias"
    o_bias_follows_attention_bias: bool
    layer_types: Callable[[dict[str, Any], int], list[str]]
    moe_config: Callable[[dict[str, Any], int], tuple[MoEConfig | None, list[bool]]]
    moe_prefix: str = "mlp"  # checkpoint module holding router + experts
    expert_names: tuple[str, str, str] = ("gate_proj", "up_proj", "down_proj")


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("Qwen3MoeForCausalLM", "head", None, True, _sliding_all_if_enabled,
                 lambda c, n: _qwen_moe(c, n, shared=False)),
        ArchSpec("Qwen2MoeForCausalLM", "none", True, False, _sliding_qwen2_moe,
                 lambda c, n: _qwen_moe(c, n, shared=True)),
        ArchSpec("MixtralForCausalLM", "none", False, False, _sliding_all, _mixtral_moe,
                 moe_prefix="block_sparse_moe", expert_names=("w1", "w3", "w2")),
        ArchSpec("OlmoeForCausalLM", "full", None, True, lambda c, n: ["full_attention"] * n, _olmoe_moe),
        ArchSpec("Qwen3ForCausalLM", "head", None, True, _sliding_from, _no_moe),
        ArchSpec("Qwen2ForCausalLM", "none", True, False, _sliding_from, _no_moe),
        ArchSpec("LlamaForCausalLM", "none", None, True, lambda c, n: ["full_attention"] * n, _no_moe),
    )
}


def get_arch_spec(name: str) -> ArchSpec:
    """The spec for an ``architectures`` name, or an error listing the supported ones."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise UnsupportedArchitectureError(
            f"architecture {name!r} is not supported; supported architectures: "
            + ", ".join(sorted(ARCHITECTURES))
        ) from None
