"""Self-attention over a paged KV cache.

The cache of one layer is two tensors ``[num_blocks, block_size, Hkv, D]``; a sequence's
tokens live in the blocks its block table lists. Prefill attends over the new tokens of
each sequence (every prefill starts at position 0: no prefix caching); decode reads each
sequence's cached tokens through its block table (a Triton split-K kernel on the GPU,
gather + mask + SDPA on the CPU), with static shapes so it can be captured in a CUDA graph.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lynx.context import get_context
from lynx.kernels.dense import dense_linear
from lynx.kernels.paged_attention import (
    fused_rope_attention_applies,
    paged_decode_attention,
    paged_decode_attention_rope,
)
from lynx.layers.norm import RMSNorm
from lynx.layers.rotary import RotaryEmbedding
from lynx.models.config import ModelConfig


def _window_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int | None) -> torch.Tensor:
    """Causal (and sliding-window) mask ``[Lq, Lk]``: True where a query may attend."""
    diff = q_pos[:, None] - k_pos[None, :]  # [Lq, Lk]
    mask = diff >= 0
    if window is not None:
        mask &= diff < window  # keys within the last `window` positions, self included
    return mask


def prefill_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: list[int], scale: float, window: int | None
) -> torch.Tensor:
    """Causal attention per sequence; ``q [T, Hq, D]``, ``k, v [T, Hkv, D]`` -> ``[T, Hq, D]``."""
    out = torch.empty_like(q)
    for start, end in zip(cu_seqlens[:-1], cu_seqlens[1:]):
        qi = q[start:end].transpose(0, 1)  # [Hq, L, D]
        ki = k[start:end].transpose(0, 1)  # [Hkv, L, D]
        vi = v[start:end].transpose(0, 1)  # [Hkv, L, D]
        length = end - start
        if window is None or window >= length:
            o = F.scaled_dot_product_attention(qi, ki, vi, is_causal=True, scale=scale, enable_gqa=True)
        else:
            pos = torch.arange(length, device=q.device)
            mask = _window_mask(pos, pos, window)  # [L, L]
            o = F.scaled_dot_product_attention(qi, ki, vi, attn_mask=mask, scale=scale, enable_gqa=True)
        out[start:end] = o.transpose(0, 1)  # [L, Hq, D]
    return out


class Attention(nn.Module):
    """Multi-head attention with grouped KV heads, optional q/k norms and sliding window."""

    def __init__(self, cfg: ModelConfig, layer_idx: int, rotary: RotaryEmbedding) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim
        self.scale = self.head_dim**-0.5
        self.qkv_proj = nn.Linear(cfg.hidden_size, self.q_size + 2 * self.kv_size, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(self.q_size, cfg.hidden_size, bias=cfg.o_bias)
        self.qk_norm = cfg.qk_norm
        if cfg.qk_norm == "head":
            self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps)
        elif cfg.qk_norm == "full":
            self.q_norm = RMSNorm(self.q_size, cfg.rms_norm_eps)
            self.k_norm = RMSNorm(self.kv_size, cfg.rms_norm_eps)
        self.clip_qkv = cfg.clip_qkv
        self.window = cfg.sliding_window if cfg.layer_types[layer_idx] == "sliding_attention" else None
        self.rotary = rotary
        # Set by the model runner once the cache is allocated: [num_blocks, bs, Hkv, D] each.
        self.k_cache = torch.empty(0)
        self.v_cache = torch.empty(0)

    def forward(self, positions: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        qkv = dense_linear(x, self.qkv_proj.weight, self.qkv_proj.bias, "qkv")  # [T, (Hq + 2 Hkv) D]
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        if self.qk_norm == "full":  # OLMoE normalises over all heads before the split
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip_qkv is not None:
            q, k, v = (z.clamp(-self.clip_qkv, self.clip_qkv) for z in (q, k, v))
        q = q.view(t, self.num_heads, self.head_dim)  # [T, Hq, D]
        k = k.view(t, self.num_kv_heads, self.head_dim)  # [T, Hkv, D]
        v = v.view(t, self.num_kv_heads, self.head_dim)  # [T, Hkv, D]
        # Qwen3 normalises each head; fused with the rotation (one kernel on the GPU).
        per_head = self.qk_norm == "head"
        ctx = get_context()
        cached = self.k_cache.numel() > 0 and ctx.slot_mapping is not None
        if (not ctx.is_prefill and cached and self.qk_norm != "full"
                and fused_rope_attention_applies(q, k, v, self.k_cache, self.v_cache, self.rotary.cos)):
            # default (LYNX_FUSED_ROPE_ATTENTION=0: off): norm, rotary at context_lens - 1 (the
            # decode positions), K/V store and attention in one launch
            assert ctx.block_tables is not None and ctx.context_lens is not None
            o = paged_decode_attention_rope(
                q, k, v, self.k_cache, self.v_cache, ctx.slot_mapping, ctx.block_tables, ctx.context_lens,
                self.rotary.cos, self.rotary.sin, self.q_norm.weight if per_head else None,
                self.k_norm.weight if per_head else None, self.q_norm.eps if per_head else 0.0,
                self.scale, self.window,
            )
            return dense_linear(o.reshape(t, self.q_size), self.o_proj.weight, self.o_proj.bias, "o_proj")  # [T, H]
        q, k = self.rotary(
            positions, q, k, self.q_norm.weight if per_head else None, self.k_norm.weight if per_head else None,
            self.q_norm.eps if per_head else 0.0,
            v if cached else None, self.k_cache if cached else None, self.v_cache if cached else None,
            ctx.slot_mapping if cached else None,
        )
        if ctx.is_prefill:
            assert ctx.cu_seqlens is not None
            o = prefill_attention(q, k, v, ctx.cu_seqlens, self.scale, self.window)
        else:
            assert ctx.block_tables is not None and ctx.context_lens is not None
            o = paged_decode_attention(
                q, self.k_cache, self.v_cache, ctx.block_tables, ctx.context_lens, self.scale, self.window
            )
        return dense_linear(o.reshape(t, self.q_size), self.o_proj.weight, self.o_proj.bias, "o_proj")  # [T, H]
