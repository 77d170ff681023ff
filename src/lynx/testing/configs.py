"""Tiny configurations of every supported architecture, and named variants of them.

:data:`BASE_CONFIGS` gives each architecture a tiny but *characteristic* configuration
(the keyword arguments of its transformers config class): explicit ``head_dim`` that is
not ``hidden / heads`` for the Qwen3 family, non-default rope theta everywhere, the Qwen2
MoE shared expert with some dense layers, and so on.

:data:`VARIANTS` names each configuration detail a loader must honour, one per entry, as
``{"architecture": ..., **config_overrides}``; the base configuration of every
architecture is a variant too, so iterating over ``VARIANTS`` covers everything. Rope
settings are written in the transformers-5 form (``rope_parameters``, with
``rope_theta`` inside); the builder converts them for older transformers.
"""

from __future__ import annotations

from typing import Any

# Shared by all architectures: 4 query heads sharing 2 kv heads (GQA).
_COMMON: dict[str, Any] = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}


def _rope(theta: float, **scaling: Any) -> dict[str, Any]:
    return {"rope_type": "default", "rope_theta": theta, **scaling}


BASE_CONFIGS: dict[str, dict[str, Any]] = {
    # Qwen3-30B-A3B-like: q/k RMSNorm per head, head_dim 16 != 32/4, renormalised top-k.
    "Qwen3MoeForCausalLM": dict(
        _COMMON,
        head_dim=16,
        intermediate_size=64,  # dense MLP width, used only by mlp_only_layers
        moe_intermediate_size=32,
        num_experts=8,
        num_experts_per_tok=2,
        norm_topk_prob=True,
        rope_parameters=_rope(1_000_000.0),
    ),
    # Qwen1.5-MoE-like: shared expert with sigmoid gate, qkv bias, no renormalisation;
    # decoder_sparse_step=2 makes layers 0 and 2 dense and only layer 1 sparse.
    "Qwen2MoeForCausalLM": dict(
        _COMMON,
        num_hidden_layers=3,
        intermediate_size=64,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=48,
        num_experts=8,
        num_experts_per_tok=2,
        norm_topk_prob=False,
        qkv_bias=True,
        decoder_sparse_step=2,
        rope_parameters=_rope(100_000.0),
    ),
    "MixtralForCausalLM": dict(
        _COMMON,
        intermediate_size=32,  # width of one expert
        num_local_experts=8,
        num_experts_per_tok=2,
        sliding_window=None,
        rope_parameters=_rope(1_000_000.0),
    ),
    # OLMoE: q/k RMSNorm over *all* heads (not per head), no renormalisation.
    "OlmoeForCausalLM": dict(
        _COMMON,
        intermediate_size=16,  # width of one expert
        num_experts=8,
        num_experts_per_tok=2,
        norm_topk_prob=False,
        rope_parameters=_rope(50_000.0),
    ),
    # Qwen3-0.6B-like: tied embeddings, explicit head_dim, q/k norm.
    "Qwen3ForCausalLM": dict(
        _COMMON,
        head_dim=16,
        intermediate_size=64,
        tie_word_embeddings=True,
        rope_parameters=_rope(1_000_000.0),
    ),
    "Qwen2ForCausalLM": dict(
        _COMMON,
        intermediate_size=64,
        tie_word_embeddings=False,
        rope_parameters=_rope(1_000_000.0),
    ),
    "LlamaForCausalLM": dict(
        _COMMON,
        intermediate_size=64,
        rope_parameters=_rope(500_000.0),
    ),
}

ARCHITECTURES: tuple[str, ...] = tuple(BASE_CONFIGS)

_LLAMA3_SCALING = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 64,  # tiny, so scaling changes short positions too
}

VARIANTS: dict[str, dict[str, Any]] = {
    "qwen3-moe": {"architecture": "Qwen3MoeForCausalLM"},
    "qwen3-moe-tied": {"architecture": "Qwen3MoeForCausalLM", "tie_word_embeddings": True},
    # Layer 0 uses the dense MLP (intermediate_size) instead of routed experts.
    "qwen3-moe-mlp-only": {"architecture": "Qwen3MoeForCausalLM", "mlp_only_layers": [0]},
    "qwen3-moe-topk-unnormalised": {"architecture": "Qwen3MoeForCausalLM", "norm_topk_prob": False},
    "qwen2-moe": {"architecture": "Qwen2MoeForCausalLM"},
    # Every layer sparse except layer 1 (mlp_only_layers beats decoder_sparse_step).
    "qwen2-moe-mlp-only": {
        "architecture": "Qwen2MoeForCausalLM",
        "decoder_sparse_step": 1,
        "mlp_only_layers": [1],
    },
    "mixtral": {"architecture": "MixtralForCausalLM"},
    # Every layer attends to the last 8 positions only.
    "mixtral-sliding": {"architecture": "MixtralForCausalLM", "sliding_window": 8},
    "olmoe": {"architecture": "OlmoeForCausalLM"},
    # q, k and v are clamped to [-clip_qkv, clip_qkv] after the q/k norms.
    "olmoe-clip-qkv": {"architecture": "OlmoeForCausalLM", "clip_qkv": 0.5},
    "qwen3": {"architecture": "Qwen3ForCausalLM"},
    "qwen3-untied": {"architecture": "Qwen3ForCausalLM", "tie_word_embeddings": False},
    "qwen2": {"architecture": "Qwen2ForCausalLM"},
    "qwen2-tied": {"architecture": "Qwen2ForCausalLM", "tie_word_embeddings": True},
    # Layers >= max_window_layers (here 1 and 2) use an 8-token window; layer 0 is full.
    "qwen2-sliding": {
        "architecture": "Qwen2ForCausalLM",
        "num_hidden_layers": 3,
        "use_sliding_window": True,
        "sliding_window": 8,
        "max_window_layers": 1,
    },
    "llama": {"architecture": "LlamaForCausalLM"},
    "llama-tied": {"architecture": "LlamaForCausalLM", "tie_word_embeddings": True},
    # Biases on q/k/v *and* o (attention_bias) and on the MLP projections (mlp_bias).
    "llama-bias": {"architecture": "LlamaForCausalLM", "attention_bias": True, "mlp_bias": True},
    "llama-rope-llama3": {
        "architecture": "LlamaForCausalLM",
        "rope_parameters": {"rope_theta": 500_000.0, **_LLAMA3_SCALING},
    },
    "llama-rope-linear": {
        "architecture": "LlamaForCausalLM",
        "rope_parameters": {"rope_type": "linear", "rope_theta": 10_000.0, "factor": 4.0},
    },
    "llama-rope-yarn": {
        "architecture": "LlamaForCausalLM",
        "rope_parameters": {
            "rope_type": "yarn",
            "rope_theta": 10_000.0,
            "factor": 4.0,
            "original_max_position_embeddings": 128,
        },
    },
}
