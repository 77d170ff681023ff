"""Decode steps replayed from captured CUDA graphs, one graph per batch-size bucket.

A decode step of a small batch is dominated by kernel-launch overhead unless it is
replayed from a graph. Each bucket's graph reads static input buffers; a batch of ``n``
sequences runs in the smallest bucket ``>= n`` with padding rows that write their K/V to
a trash slot, attend to one cached slot and are marked invalid, so the routing policy
gives them no weight and no say in the active expert set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from lynx.context import ForwardContext, forward_context
from lynx.engine.sequence import STOP_SLOTS, Sequence, stop_table

if TYPE_CHECKING:
    from lynx.engine.model_runner import ModelRunner


def batch_buckets(max_batch: int) -> list[int]:
    """1, 2, 4, 8, then steps of 8 to 64, then of 16/32: few graphs, little padding."""
    sizes = [1, 2, 4, 8] + list(range(16, 65, 8)) + list(range(80, 129, 16)) + list(range(160, 513, 32))
    out = [b for b in sizes if b < max_batch] + [min(max_batch, 512)]
    return sorted(set(out))


def stage_decode_inputs(
    seqs: list[Sequence], src_rows: list[int] | None, stop_ids: list[list[int]] | None,
    np64: np.ndarray, np32: np.ndarray, bmax: int, bucket: int, width: int, block_size: int, trash_slot: int,
) -> None:
    """Write one decode step's inputs into the host mirrors of the graphs' static buffers.

    ``np64`` is ``[ids | positions | slots | source rows]`` (``bmax`` each) then ``[bmax,
    STOP_SLOTS]`` stop ids; ``np32`` is ``[context lens (bmax) | block tables [bmax, width]]``.
    Rows ``n..bucket-1`` become padding: trash KV slot, one attended position (block 0), no
    pending token, no stop ids (the graph also marks them invalid: no routing say).
    """
    n = len(seqs)
    ids, pos, slots, src = np64[: 4 * bmax].reshape(4, bmax)
    stops = np64[4 * bmax :].reshape(bmax, STOP_SLOTS)
    ctx_lens, tables = np32[:bmax], np32[bmax:].reshape(bmax, width)
    for i, seq in enumerate(seqs):
        p = len(seq) - 1
        ids[i], pos[i], ctx_lens[i] = max(seq.last_token, 0), p, p + 1  # a PENDING id comes from the device
        table = seq.block_table
        slots[i] = table[p // block_size] * block_size + p % block_size
        tables[i, : len(table)] = table  # columns past the context are never read
    src[:n] = src_rows if src_rows is not None else -1
    stops[:bucket] = -1
    if stop_ids is not None and any(stop_ids):
        stops[:n] = stop_table(stop_ids, n)
    ids[n:bucket], pos[n:bucket], slots[n:bucket], ctx_lens[n:bucket], src[n:bucket] = 0, 0, trash_slot, 1, -1
    tables[n:bucket, 0] = 0


class DecodeGraphs:
    """Captures and replays the decode forward (model, routing, LM head)."""

    def __init__(self, runner: ModelRunner, max_batch: int) -> None:
        self.runner = runner
        self.buckets = batch_buckets(max_batch)
        b = self.buckets[-1]
        dev = runner.device
        self.width = -(-runner.max_model_len // runner.block_size)  # block-table columns
        # Inputs live in two static device buffers filled from pinned host mirrors with
        # one copy each per step: [ids | positions | slots | source rows | stop ids] int64
        # and [context lens | tables] int32. The host mirrors alternate between two copies:
        # with overlapped decode the host stages step n+1 while step n's copy may not have run.
        words = (4 + STOP_SLOTS) * b
        self.host64 = [torch.zeros(words, dtype=torch.int64, pin_memory=True) for _ in range(2)]
        self.host32 = [torch.zeros(b * (1 + self.width), dtype=torch.int32, pin_memory=True) for _ in range(2)]
        self.turn = 0
        self.dev64 = torch.zeros(words, dtype=torch.int64, device=dev)
        self.dev32 = torch.zeros(b * (1 + self.width), dtype=torch.int32, device=dev)
        self.input_ids, self.positions, self.slot_mapping, self.src_rows = self.dev64[: 4 * b].view(4, b)  # [b] each
        self.stop_ids = self.dev64[4 * b :].view(b, STOP_SLOTS)  # [b, S], -1 padded
        self.context_lens = self.dev32[:b]  # [b]
        self.block_tables = self.dev32[b:].view(b, self.width)  # [b, width]
        self.valid = torch.zeros(b, dtype=torch.bool, device=dev)
        self.tally = runner.new_tally(b, is_prefill=False)
        self.expert_counts: torch.Tensor | None = None
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.logits: dict[int, torch.Tensor] = {}
        self.pool = None
        self.max_batch = b
        self.context_lens.fill_(1)
        self.slot_mapping.fill_(runner.trash_slot)
        self.src_rows.fill_(-1)
        self.stop_ids.fill_(-1)
        self._capture_all()

    def can_run(self, n: int) -> bool:
        return n <= self.buckets[-1]

    def _forward(self, b: int) -> torch.Tensor:
        r = self.runner
        ids, valid = r.input_ids(self.input_ids[:b], self.src_rows[:b], self.stop_ids[:b], self.valid[:b])  # [b] each
        ctx = ForwardContext(
            is_prefill=False, slot_mapping=self.slot_mapping[:b], block_tables=self.block_tables[:b],
            context_lens=self.context_lens[:b], valid=valid, routing_policy=r.routing_policy,
            routing_params=r.routing_params, expert_tally=self.tally,
        )
        if self.tally is not None:
            self.tally.reset()
        with forward_context(ctx):
            hidden = self.runner.model(ids, self.positions[:b])  # [b, H]
        self.expert_counts = self.runner.finish_tally(ctx, b)  # the same static buffer every bucket
        return self.runner.model.compute_logits(hidden)  # [b, V]

    @torch.inference_mode()
    def _capture_all(self) -> None:
        self.valid.fill_(True)  # realistic routing during capture warm-up
        for b in reversed(self.buckets):  # largest first so smaller ones reuse its pool
            self._forward(b)  # warm-up: lazy init, autotuning
            torch.cuda.synchronize(self.runner.device)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self.pool):
                self.logits[b] = self._forward(b)
            if self.pool is None:
                self.pool = graph.pool()
            self.graphs[b] = graph
        self.valid.fill_(False)
        torch.cuda.synchronize(self.runner.device)

    def run(self, seqs: list[Sequence], src_rows: list[int] | None = None,
            stop_ids: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stage the inputs of ``seqs`` and replay their bucket's graph.

        ``src_rows``: per sequence, the previous step's row holding its pending last token
        (see :meth:`ModelRunner.launch`), or -1 when the host knows it; ``stop_ids``: the
        pending token values that mean the sequence has stopped (:meth:`ModelRunner.input_ids`).
        """
        n = len(seqs)
        b = next(x for x in self.buckets if x >= n)
        host64, host32 = self.host64[self.turn], self.host32[self.turn]
        self.turn ^= 1
        stage_decode_inputs(seqs, src_rows, stop_ids, host64.numpy(), host32.numpy(), self.max_batch, b,
                            self.width, self.runner.block_size, self.runner.trash_slot)
        bmax = self.max_batch
        self.dev64.copy_(host64, non_blocking=True)
        self.dev32[: bmax + b * self.width].copy_(host32[: bmax + b * self.width], non_blocking=True)
        self.valid[:n].fill_(True)
        self.valid[n:].fill_(False)
        self.graphs[b].replay()
        return self.logits[b][:n], self.expert_counts
