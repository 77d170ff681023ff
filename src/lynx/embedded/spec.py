"""Specifications of the built-in models and the ``config.json`` they are written with.

A built-in model is fully described by a :class:`BuiltinSpec`: architecture sizes, the
seed of its weights and a version. Materialised checkpoints live in a folder named
``<name>-<version>``, so changing anything that alters the files (sizes, the weight
recipe in :mod:`lynx.embedded.weights`, the tokenizer) must bump ``version``.

``config.json`` is written the way the Hub's real Qwen3 checkpoints have it
(``num_experts``, ``rope_theta`` + ``rope_scaling: null``, ``torch_dtype``), not the way
transformers 5 would re-save it (see :mod:`lynx.testing.checkpoints`), because those are
the files users point Lynx at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lynx.testing.tokenizer import BOS_TOKEN_ID, EOS_TOKEN_ID


@dataclass(frozen=True)
class BuiltinSpec:
    """One built-in model: a Qwen3-MoE-style checkpoint or its dense counterpart."""

    name: str
    version: str
    description: str
    architecture: str  # "Qwen3MoeForCausalLM" | "Qwen3ForCausalLM"
    seed: int
    vocab_size: int = 2048
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 8
    num_kv_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 512  # dense MLP width
    num_experts: int = 0  # 0: dense model
    top_k: int = 0
    moe_intermediate_size: int = 0
    max_position_embeddings: int = 4096
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    dtype: str = "bfloat16"

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def dirname(self) -> str:
        """Folder name of the materialised checkpoint inside the cache."""
        return f"{self.name}-{self.version}"

    def hf_config(self) -> dict[str, Any]:
        """The ``config.json`` contents, keys as in the Hub's Qwen3 / Qwen3-MoE configs."""
        cfg: dict[str, Any] = {
            "architectures": [self.architecture],
            "attention_bias": False,
            "attention_dropout": 0.0,
            "bos_token_id": BOS_TOKEN_ID,
            "eos_token_id": EOS_TOKEN_ID,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "hidden_size": self.hidden_size,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "max_window_layers": self.num_layers,
            "model_type": "qwen3_moe" if self.is_moe else "qwen3",
            "num_attention_heads": self.num_heads,
            "num_hidden_layers": self.num_layers,
            "num_key_value_heads": self.num_kv_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_scaling": None,
            "rope_theta": self.rope_theta,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "torch_dtype": self.dtype,
            "use_cache": True,
            "use_sliding_window": False,
            "vocab_size": self.vocab_size,
        }
        if self.is_moe:
            cfg.update(
                decoder_sparse_step=1,
                mlp_only_layers=[],
                moe_intermediate_size=self.moe_intermediate_size,
                norm_topk_prob=True,
                num_experts=self.num_experts,
                num_experts_per_tok=self.top_k,
                output_router_logits=False,
                router_aux_loss_coef=0.001,
            )
        return dict(sorted(cfg.items()))

    def generation_config(self) -> dict[str, Any]:
        """``generation_config.json``: greedy by default, stop at ``<|endoftext|>``."""
        return {
            "bos_token_id": BOS_TOKEN_ID,
            "eos_token_id": EOS_TOKEN_ID,
            "pad_token_id": EOS_TOKEN_ID,
        }


# Active parameters per token are matched: the MoE activates top_k * moe_intermediate_size
# = 4 * 128 = 512 expert columns per layer, the dense model has intermediate_size 512.
TINY_MOE = BuiltinSpec(
    name="tiny-moe",
    version="v1",
    description=(
        "Random (untrained) Qwen3-MoE-style model: 4 layers, hidden 256, 32 experts top-4, "
        "vocab 2048. Router logits are deliberately skewed so a batch of 16 decode tokens "
        "touches about half the experts, like trained MoEs."
    ),
    architecture="Qwen3MoeForCausalLM",
    seed=20240601,
    num_experts=32,
    top_k=4,
    moe_intermediate_size=128,
)

TINY_DENSE = BuiltinSpec(
    name="tiny-dense",
    version="v1",
    description=(
        "Random (untrained) dense Qwen3-style counterpart of tiny-moe with the same active "
        "parameters per token (MLP width 512)."
    ),
    architecture="Qwen3ForCausalLM",
    seed=20240602,
)

BUILTIN_MODELS: dict[str, BuiltinSpec] = {spec.name: spec for spec in (TINY_MOE, TINY_DENSE)}
