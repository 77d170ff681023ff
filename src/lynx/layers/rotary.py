"""Rotary position embeddings with the scaling variants found in supported configs."""

from __future__ import annotations

import math

import torch
from torch import nn

from lynx.kernels.rope import qk_norm_rope
from lynx.models.config import RopeConfig


def rope_inv_freq(rope: RopeConfig, head_dim: int, max_position: int) -> tuple[torch.Tensor, float]:
    """Inverse frequencies ``[rot_dim // 2]`` and the cos/sin scale for a rope config."""
    dim = int(head_dim * rope.partial_rotary_factor)
    exponents = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim  # [dim/2]
    inv_freq = 1.0 / (rope.theta**exponents)  # [dim/2]
    scale = 1.0
    if rope.rope_type == "linear":
        inv_freq = inv_freq / rope.factor
    elif rope.rope_type == "llama3":
        old_len = rope.original_max_position_embeddings or max_position
        low_wavelen = old_len / rope.low_freq_factor
        high_wavelen = old_len / rope.high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
        smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
        smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    elif rope.rope_type == "yarn":
        inv_freq, scale = _yarn(rope, dim, max_position)
    return inv_freq, scale


def _yarn(rope: RopeConfig, dim: int, max_position: int) -> tuple[torch.Tensor, float]:
    factor = rope.factor
    orig = rope.original_max_position_embeddings or max_position

    def mscale(s: float, m: float = 1.0) -> float:
        return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0

    scale = rope.attention_factor
    if scale is None:
        if rope.mscale and rope.mscale_all_dim:
            scale = mscale(factor, rope.mscale) / mscale(factor, rope.mscale_all_dim)
        else:
            scale = mscale(factor)

    def correction_dim(rotations: float) -> float:
        return (dim * math.log(orig / (rotations * 2 * math.pi))) / (2 * math.log(rope.theta))

    low, high = correction_dim(rope.beta_fast), correction_dim(rope.beta_slow)
    if rope.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)  # [dim/2]
    pos_freqs = rope.theta ** (torch.arange(0, dim, 2).float() / dim)  # [dim/2]
    extrapolation = 1.0 / pos_freqs
    interpolation = 1.0 / (factor * pos_freqs)
    keep = 1 - ramp  # 1: extrapolate (high frequencies), 0: interpolate
    return interpolation * (1 - keep) + extrapolation * keep, float(scale)


class RotaryEmbedding(nn.Module):
    """Precomputed cos/sin tables indexed by position (static, CUDA-graph friendly)."""

    def __init__(self, rope: RopeConfig, head_dim: int, max_position: int, config_max_position: int) -> None:
        super().__init__()
        # max_position: table size (the engine's max model length); config_max_position:
        # the config's max_position_embeddings, which some scalings use as a fallback.
        self.rope, self.head_dim, self.max_position = rope, head_dim, max_position
        self.config_max_position = config_max_position
        self.rot_dim = 2 * (int(head_dim * rope.partial_rotary_factor) // 2)
        self.register_buffer("cos", torch.empty(max_position, self.rot_dim), persistent=False)
        self.register_buffer("sin", torch.empty(max_position, self.rot_dim), persistent=False)
        if self.cos.device.type != "meta":
            self.reset_tables()

    def reset_tables(self) -> None:
        """(Re)compute the tables in float32 on the buffers' device (after meta init)."""
        inv_freq, scale = rope_inv_freq(self.rope, self.head_dim, self.config_max_position)
        pos = torch.arange(self.max_position, dtype=torch.float32)  # [P]
        freqs = pos[:, None] * inv_freq[None, :]  # [P, rot/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [P, rot]
        device = self.cos.device
        self.cos = (emb.cos() * scale).to(device=device, dtype=torch.float32)
        self.sin = (emb.sin() * scale).to(device=device, dtype=torch.float32)

    def forward(
        self, positions: torch.Tensor, q: torch.Tensor, k: torch.Tensor,
        q_norm_weight: torch.Tensor | None = None, k_norm_weight: torch.Tensor | None = None, eps: float = 0.0,
        v: torch.Tensor | None = None, k_cache: torch.Tensor | None = None, v_cache: torch.Tensor | None = None,
        slots: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q [T, Hq, D]`` and ``k [T, Hkv, D]`` at ``positions [T]``, after an
        optional per-head RMSNorm (Qwen3's q/k norms); with ``v``, the caches and
        ``slots``, also write K and V to the paged cache."""
        return qk_norm_rope(q, k, positions, self.cos, self.sin, q_norm_weight, k_norm_weight, eps,
                            v, k_cache, v_cache, slots)
