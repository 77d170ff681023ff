"""The decoder-only transformer every supported architecture runs through.

Architectures differ only in details captured by :class:`ModelConfig` (q/k norms,
biases, sliding windows, which layers are sparse, shared experts), so one readable
implementation serves Qwen3-MoE, Qwen2-MoE, Mixtral, OLMoE, Qwen3, Qwen2 and Llama.
"""

from __future__ import annotations

import torch
from torch import nn

from lynx.layers.attention import Attention
from lynx.layers.mlp import GatedMLP
from lynx.layers.moe import SparseMoE
from lynx.layers.norm import RMSNorm
from lynx.layers.rotary import RotaryEmbedding
from lynx.models.config import ModelConfig


class DecoderLayer(nn.Module):
    """Pre-norm attention block followed by a pre-norm (dense or sparse) MLP block."""

    def __init__(self, cfg: ModelConfig, layer_idx: int, rotary: RotaryEmbedding, moe_index: int | None) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg, layer_idx, rotary)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp: nn.Module
        if moe_index is not None:
            self.mlp = SparseMoE(cfg, moe_index)
        else:
            self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act, cfg.mlp_bias)

    def forward(
        self, positions: torch.Tensor, x: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` is the previous block's output, ``residual`` the stream before it (None at
        layer 0); adding them is fused into this layer's first norm."""
        if residual is None:
            residual, h = x, self.input_layernorm(x)  # [T, H]
        else:
            h, residual = self.input_layernorm(x, residual)  # [T, H] each
        h = self.self_attn(positions, h)
        h, residual = self.post_attention_layernorm(h, residual)
        return self.mlp(h), residual  # [T, H] each


class DecoderForCausalLM(nn.Module):
    """Token ids ``[T]`` (a flat batch of sequences) -> hidden states ``[T, H]``.

    The batch layout (which tokens belong to which sequence, where their KV lives, the
    phase) comes from :mod:`lynx.context`; :meth:`compute_logits` applies the LM head to
    the rows that need a next token only.
    """

    def __init__(self, cfg: ModelConfig, max_len: int | None = None) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        table = min(cfg.max_position_embeddings, max_len) if max_len else cfg.max_position_embeddings
        self.rotary = RotaryEmbedding(cfg.rope, cfg.head_dim, table, cfg.max_position_embeddings)
        moe_indices = _moe_indices(cfg)
        self.layers = nn.ModuleList(
            DecoderLayer(cfg, i, self.rotary, moe_indices[i]) for i in range(cfg.num_layers)
        )
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the LM head with the embeddings when the config ties them."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)  # [T, H]
        residual: torch.Tensor | None = None
        for layer in self.layers:
            x, residual = layer(positions, x, residual)
        return self.norm(x, residual)[0]  # [T, H]

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``[B, V]`` logits in the model dtype: greedy decoding takes the argmax as is (the
        same index as in float32), the sampler upcasts, so no float32 copy is written."""
        return self.lm_head(hidden)  # [B, V]


def _moe_indices(cfg: ModelConfig) -> list[int | None]:
    out: list[int | None] = []
    n = 0
    for is_moe in cfg.moe_layers:
        out.append(n if is_moe else None)
        n += int(is_moe)
    return out
