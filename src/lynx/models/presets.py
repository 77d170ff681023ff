"""Public configurations of real models, for timing them without their weights.

Each preset is the ``config.json`` a checkpoint of that model carries (the fields Lynx
reads), so ``LLM("qwen3-30b-a3b", load_format="dummy")`` builds the real-size model with
random weights (see :mod:`lynx.models.dummy`). Results from such runs are timings of the
shape, never accuracy or routing statistics of the real model.
"""

from __future__ import annotations

from typing import Any

_QWEN_VOCAB = 151_936


def _qwen3_moe() -> dict[str, Any]:
    return {
        "architectures": ["Qwen3MoeForCausalLM"], "hidden_size": 2048, "num_hidden_layers": 48,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "intermediate_size": 6144,
        "moe_intermediate_size": 768, "num_experts": 128, "num_experts_per_tok": 8, "norm_topk_prob": True,
        "decoder_sparse_step": 1, "mlp_only_layers": [], "vocab_size": _QWEN_VOCAB, "rope_theta": 1_000_000.0,
        "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "eos_token_id": 151645,
    }


def _olmoe() -> dict[str, Any]:
    return {
        "architectures": ["OlmoeForCausalLM"], "hidden_size": 2048, "num_hidden_layers": 16,
        "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 1024, "num_experts": 64,
        "num_experts_per_tok": 8, "norm_topk_prob": False, "vocab_size": 50304, "rope_theta": 10000.0,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
        "clip_qkv": None, "torch_dtype": "bfloat16", "eos_token_id": 50279,
    }


def _mixtral() -> dict[str, Any]:
    return {
        "architectures": ["MixtralForCausalLM"], "hidden_size": 4096, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
        "num_local_experts": 8, "num_experts_per_tok": 2, "vocab_size": 32000, "rope_theta": 1_000_000.0,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "sliding_window": None,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "eos_token_id": 2,
    }


def _qwen2_moe() -> dict[str, Any]:
    return {
        "architectures": ["Qwen2MoeForCausalLM"], "hidden_size": 3584, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "intermediate_size": 18944,
        "moe_intermediate_size": 2560, "shared_expert_intermediate_size": 20480, "num_experts": 64,
        "num_experts_per_tok": 8, "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
        "vocab_size": _QWEN_VOCAB, "rope_theta": 1_000_000.0, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "use_sliding_window": False, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "eos_token_id": 151643,
    }


def _qwen3_dense(hidden: int, layers: int, heads: int, ffn: int, tied: bool) -> dict[str, Any]:
    return {
        "architectures": ["Qwen3ForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "num_attention_heads": heads, "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": ffn,
        "vocab_size": _QWEN_VOCAB, "rope_theta": 1_000_000.0, "max_position_embeddings": 40960,
        "rms_norm_eps": 1e-6, "use_sliding_window": False, "tie_word_embeddings": tied,
        "torch_dtype": "bfloat16", "eos_token_id": 151645,
    }


PRESETS: dict[str, dict[str, Any]] = {
    "qwen3-30b-a3b": _qwen3_moe(),
    "olmoe-1b-7b": _olmoe(),
    "mixtral-8x7b": _mixtral(),
    "qwen2-57b-a14b": _qwen2_moe(),
    "qwen3-32b": _qwen3_dense(5120, 64, 64, 25600, tied=False),
    "qwen3-4b": _qwen3_dense(2560, 36, 32, 9728, tied=True),
}


def is_preset(name: str) -> bool:
    return name.lower() in PRESETS


def preset_config(name: str) -> dict[str, Any]:
    """A copy of the preset's ``config.json`` dictionary."""
    from lynx.errors import LynxError

    try:
        return dict(PRESETS[name.lower()])
    except KeyError:
        raise LynxError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None
