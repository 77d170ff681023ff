"""Per-step tally of the experts each MoE layer touched, before and after the policy.

Counting distinct experts inside every layer would cost several small launches per layer
(about a millisecond per Qwen3-30B-A3B decode step on an H200). Instead the routing call
itself marks, in a static ``[layers, 2, N]`` buffer, the experts that the policy gives a
valid row (row 1) and those plain top-k would have given (row 0, what the batch would have
read): the Triton routing kernel with a few stores in its last launch, the PyTorch path
with scatters (:func:`mark_experts`). One reduction per step then yields every layer's
counts. Under a policy other than top-k, working out each row's plain top-k inside the
kernel would cost another selection pass per layer; the kernel stores the router logits
instead and :meth:`ExpertTally.finalize` ranks all layers at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lynx.routing.scores import expert_order


@dataclass(frozen=True, slots=True)
class LayerTally:
    """One MoE layer's part of an :class:`ExpertTally`, handed to ``select_experts``."""

    hits: torch.Tensor  # [2, N] int32: 1 = touched (row 0 plain top-k, row 1 the policy)
    logits: torch.Tensor | None  # [Tmax, N] float32: router logits, if row 0 is counted later


def mark_experts(tally: LayerTally, before: torch.Tensor, after: torch.Tensor, valid: torch.Tensor,
                 logits: torch.Tensor) -> None:
    """PyTorch side of the tally: mark ``after`` (``[T, k]``) and, unless the tally keeps
    ``logits`` (``[T, N]``) for later, ``before``; padding rows (``valid [T]`` False)
    write 0 through a max, so they never mark anything. No host sync."""
    k = before.shape[1]
    live = valid.to(tally.hits.dtype).repeat_interleave(k)  # [T*k] 1 on valid rows
    tally.hits[1].scatter_reduce_(0, after.reshape(-1), live, reduce="amax")  # [N] <- [T*k]
    if tally.logits is None:
        tally.hits[0].scatter_reduce_(0, before.reshape(-1), live, reduce="amax")
    else:
        tally.logits[: logits.shape[0]].copy_(logits)


class ExpertTally:
    """Static buffers for ``num_layers`` MoE layers of ``num_experts`` experts (top-``top_k``).

    ``max_tokens > 0`` keeps the router logits of up to that many rows per layer, so that
    plain top-k is counted once per step in :meth:`finalize` (for policies other than top-k).
    """

    def __init__(self, num_layers: int, num_experts: int, top_k: int, device: torch.device,
                 max_tokens: int = 0) -> None:
        self.top_k = top_k
        self.hits = torch.zeros(num_layers, 2, num_experts, dtype=torch.int32, device=device)  # [L, 2, N]
        self.logits = (torch.zeros(num_layers, max_tokens, num_experts, dtype=torch.float32, device=device)
                       if max_tokens else None)  # [L, Tmax, N]
        self.counts = torch.zeros(num_layers, 2, dtype=torch.int64, device=device)  # [L, 2]

    def layer(self, index: int) -> LayerTally:
        """MoE layer ``index``'s buffers, for :func:`lynx.routing.select_experts`."""
        return LayerTally(self.hits[index], None if self.logits is None else self.logits[index])

    def reset(self) -> None:
        self.hits.zero_()

    def finalize(self, num_rows: int, valid: torch.Tensor | None) -> torch.Tensor:
        """``[L, 2]`` int64 distinct experts per layer (plain top-k, policy) for this step
        of ``num_rows`` rows (``valid [>= num_rows]`` bool, ``None``: all valid)."""
        if self.logits is not None:
            lg = self.logits[:, :num_rows]  # [L, T, N]
            top = expert_order(lg)[..., : self.top_k]  # [L, T, k], the policies' ranking and tie rule
            live = torch.ones(num_rows, dtype=torch.int32, device=lg.device) if valid is None else valid[:num_rows]
            live = live.to(torch.int32)[None, :, None].expand_as(top)  # [L, T, k]
            self.hits[:, 0].scatter_reduce_(1, top.flatten(1), live.flatten(1), reduce="amax")  # [L, N]
        torch.sum(self.hits, dim=-1, out=self.counts)
        return self.counts
