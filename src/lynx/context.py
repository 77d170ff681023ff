"""Per-step batch metadata, set by the model runner and read by the layers.

One object describes the batch of a forward pass (phase, KV-cache slots, block tables,
routing policy, padding), so layers take plain tensors and stay free of engine types.
This mirrors nano-vllm's context: a module-level value set around each forward.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch

from lynx.routing.tally import ExpertTally


@dataclass(slots=True)
class ForwardContext:
    """Metadata of one forward pass.

    ``is_prefill`` is True when the batch holds any prompt tokens; batch-aware routing
    only runs in decode-only batches (method.md, "phase awareness").
    """

    is_prefill: bool
    slot_mapping: torch.Tensor | None = None  # [T] int64: KV-cache slot of each token
    cu_seqlens: list[int] | None = None  # prefill: host offsets of each sequence, len B+1
    block_tables: torch.Tensor | None = None  # decode: [B, M] int32 block ids per sequence
    context_lens: torch.Tensor | None = None  # decode: [B] int32 tokens in cache incl. this one
    valid: torch.Tensor | None = None  # [T] bool, False on CUDA-graph padding rows
    routing_policy: str = "topk"
    routing_params: dict[str, Any] = field(default_factory=dict)
    expert_tally: ExpertTally | None = None  # per-step distinct-expert counts (before/after policy)

    def policy_for_batch(self) -> tuple[str, dict[str, Any]]:
        """The policy this batch routes with: plain top-k for any batch with prompt tokens."""
        if self.is_prefill:
            return "topk", {}
        return self.routing_policy, self.routing_params


_CONTEXT = ForwardContext(is_prefill=True)


def get_context() -> ForwardContext:
    return _CONTEXT


def set_context(ctx: ForwardContext) -> None:
    global _CONTEXT
    _CONTEXT = ctx


def reset_context() -> None:
    set_context(ForwardContext(is_prefill=True))


@contextmanager
def forward_context(ctx: ForwardContext) -> Iterator[ForwardContext]:
    """Set ``ctx`` for the duration of a forward pass."""
    prev = get_context()
    set_context(ctx)
    try:
        yield ctx
    finally:
        set_context(prev)
