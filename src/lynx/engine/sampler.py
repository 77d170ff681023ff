"""Batched token sampling on the device, reproducible per request.

Randomness comes from a counter-based hash of (request seed, position, token id) rather
than a stateful generator, so a seeded request samples the same tokens whatever else is
in its batch, after preemption, and with or without CUDA graphs, and no per-request
generator or host synchronisation is needed. Sampling uses the exponential race:
``argmax(p / E)`` with ``E ~ Exp(1)`` draws from ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_M32 = 0xFFFFFFFF
# Odd constants below 2**31 so products with 32-bit values stay inside int64.
_C1, _C2, _C3 = 0x7FEB352D, 0x4C2F6B95, 0x2545F491


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit avalanche mix of int64 values in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = (x * _C1) & _M32
    x = x ^ (x >> 15)
    x = (x * _C2) & _M32
    return x ^ (x >> 16)


def hash_uniform(seeds: torch.Tensor, positions: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """Uniform floats in (0, 1) ``[B, V]`` from ``seeds [B]``, ``positions [B]``, ``token_ids [B, V]``."""
    row = _mix((seeds & _M32) ^ _mix((positions * _C3) & _M32))  # [B]
    x = _mix(row[:, None] ^ ((token_ids * _C1) & _M32))  # [B, V]
    x = _mix(x ^ (seeds[:, None] >> 32))  # use the seed's high bits too
    return ((x >> 8).to(torch.float32) + 0.5) * (1.0 / (1 << 24))


@dataclass(slots=True)
class SamplingBatch:
    """Per-row sampling settings as device tensors, plus host flags that pick the path."""

    temperature: torch.Tensor  # [B] float32 (0 = greedy)
    top_p: torch.Tensor  # [B] float32
    top_k: torch.Tensor  # [B] int64 (0 = off)
    seeds: torch.Tensor  # [B] int64
    positions: torch.Tensor  # [B] int64: position of the token being sampled
    all_greedy: bool
    any_filter: bool  # any top-k / top-p: needs the sorted path


def sample(logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
    """Next token per row ``[B]`` from ``logits [B, V]`` (any float dtype; sampled in float32)."""
    greedy = logits.argmax(dim=-1)  # [B]
    if batch.all_greedy:
        return greedy
    logits = logits.float()  # [B, V]
    temp = batch.temperature.clamp(min=1e-5)[:, None]  # [B, 1]
    scaled = logits / temp  # [B, V]
    if batch.any_filter:
        scaled, order = scaled.sort(dim=-1, descending=True)  # [B, V] each
        probs = scaled.softmax(dim=-1)  # [B, V]
        rank = torch.arange(logits.shape[1], device=logits.device)  # [V]
        k = torch.where(batch.top_k > 0, batch.top_k, logits.shape[1])[:, None]  # [B, 1]
        outside_p = (probs.cumsum(dim=-1) - probs) >= batch.top_p[:, None]  # mass before this token
        drop = (rank[None, :] >= k) | outside_p  # [B, V]; rank 0 is never dropped
        scaled = scaled.masked_fill(drop, float("-inf"))
    else:
        order = torch.arange(logits.shape[1], device=logits.device).expand_as(logits)  # [B, V]
    probs = scaled.softmax(dim=-1)  # [B, V]
    u = hash_uniform(batch.seeds, batch.positions, order)  # [B, V]
    choice = (probs / -torch.log(u)).argmax(dim=-1)  # [B] exponential race
    sampled = order.gather(1, choice[:, None]).squeeze(1)  # [B]
    return torch.where(batch.temperature == 0, greedy, sampled)
