"""Random MoE inputs and an independent float64 oracle shared by the kernel tests."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MoECase:
    """One fused_experts input set (``pad_rows`` tokens have all-zero routing weights)."""

    hidden: torch.Tensor  # [T, H]
    w13: torch.Tensor  # [E, 2I, H]
    w2: torch.Tensor  # [E, H, I]
    topk_weights: torch.Tensor  # [T, k] float32
    topk_ids: torch.Tensor  # [T, k] int64
    pad_rows: list[int]

    def args(self) -> tuple[torch.Tensor, ...]:
        return self.hidden, self.w13, self.w2, self.topk_weights, self.topk_ids


def make_case(
    num_tokens: int,
    top_k: int,
    num_experts: int,
    hidden_size: int,
    inter_size: int,
    *,
    dtype: torch.dtype = torch.float32,
    active: int | None = None,
    pad_rows: tuple[int, ...] = (),
    seed: int = 0,
    poison: bool = False,
) -> MoECase:
    """Duplicate-free ids drawn from ``active`` experts (default: all); ``poison`` fills the
    weights of experts no kept pair uses, and the hidden rows of padding tokens, with NaN,
    so any backend that computes with them produces NaN somewhere."""
    gen = torch.Generator().manual_seed(seed)
    active = num_experts if active is None else active
    pool = torch.randperm(num_experts, generator=gen)[:active]  # [A] experts that may be hit
    rows = [pool[torch.randperm(active, generator=gen)[:top_k]] for _ in range(num_tokens)]
    ids = torch.stack(rows) if rows else torch.empty(0, top_k, dtype=torch.long)  # [T, k]
    weights = torch.rand(num_tokens, top_k, generator=gen) + 0.05  # [T, k], never 0 by accident
    weights = weights / weights.sum(-1, keepdim=True)
    hidden = torch.randn(num_tokens, hidden_size, generator=gen)
    w13 = torch.randn(num_experts, 2 * inter_size, hidden_size, generator=gen) / hidden_size**0.5
    w2 = torch.randn(num_experts, hidden_size, inter_size, generator=gen) / inter_size**0.5
    for row in pad_rows:
        weights[row] = 0.0
        if poison:
            hidden[row] = float("nan")
    if poison:
        used = torch.zeros(num_experts, dtype=torch.bool)
        used[ids[weights != 0]] = True
        w13[~used] = float("nan")
        w2[~used] = float("nan")
    return MoECase(hidden.to(dtype), w13.to(dtype), w2.to(dtype), weights, ids, list(pad_rows))


def per_token_oracle(case: MoECase) -> torch.Tensor:
    """``[T, H]`` float64, written independently of the library: token by token, slot by slot."""
    hidden, w13, w2 = case.hidden.double(), case.w13.double(), case.w2.double()
    inter = w2.shape[2]
    out = torch.zeros(hidden.shape, dtype=torch.float64)
    for t in range(hidden.shape[0]):
        for j in range(case.topk_ids.shape[1]):
            weight = float(case.topk_weights[t, j])
            if weight == 0.0:
                continue
            e = int(case.topk_ids[t, j])
            gate = w13[e, :inter] @ hidden[t]  # [I]
            up = w13[e, inter:] @ hidden[t]  # [I]
            act = gate * torch.sigmoid(gate) * up  # [I]
            out[t] += weight * (w2[e] @ act)  # [H]
    return out


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative Frobenius error (NaN if ``out`` has any NaN)."""
    ref = ref.double()
    return float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))
