"""Runs the model for one scheduled batch: builds its tensors and context, samples.

Owns the weights, the paged KV cache and (on CUDA) the captured decode graphs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from lynx.context import ForwardContext, forward_context
from lynx.engine.config import EngineConfig
from lynx.engine.cuda_graphs import DecodeGraphs
from lynx.engine.sampler import SamplingBatch, sample
from lynx.engine.sequence import Sequence, stop_table
from lynx.models.config import ModelConfig
from lynx.models.loader import load_model
from lynx.routing.tally import ExpertTally

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StepOutput:
    """What one forward pass produced."""

    token_ids: list[int]  # one sampled token per sequence, in batch order
    expert_counts: list[list[int]] | None  # [num_moe_layers][before, after] distinct experts


@dataclass(slots=True)
class LaunchedStep:
    """A step whose results are on their way to the host.

    ``host`` receives ``[tokens | expert counts]`` by an asynchronous copy that ``event``
    marks; :meth:`wait` blocks on that copy only, so the host can stage and launch the
    next step first (overlapped decode).
    """

    seqs: list[Sequence]
    host: torch.Tensor  # [n + 2 * num_moe_layers] int64 (pinned on CUDA)
    event: torch.cuda.Event | None
    num_moe_layers: int
    has_counts: bool

    def row_of(self) -> dict[int, int]:
        """``seq_id -> row`` of this step's batch (where its token sits on the device)."""
        return {seq.seq_id: i for i, seq in enumerate(self.seqs)}

    def wait(self) -> StepOutput:
        if self.event is not None:
            self.event.synchronize()
        flat = self.host.tolist()
        n = len(self.seqs)
        if not self.has_counts:
            return StepOutput(flat[:n], None)
        return StepOutput(flat[:n], [flat[n + 2 * i : n + 2 * i + 2] for i in range(self.num_moe_layers)])


class ModelRunner:
    """Model + KV cache on one device."""

    def __init__(self, cfg: EngineConfig, model_cfg: ModelConfig, model_dir: Path | None,
                 device: torch.device, dtype: torch.dtype, max_model_len: int) -> None:
        self.cfg, self.model_cfg = cfg, model_cfg
        self.device, self.dtype = device, dtype
        self.max_model_len = max_model_len
        self.block_size = cfg.block_size
        self.model = load_model(model_dir, model_cfg, device, dtype, max_len=max_model_len,
                                load_format=cfg.load_format, seed=cfg.seed)
        self.num_moe_layers = model_cfg.num_moe_layers if model_cfg.is_moe else 0
        self.routing_policy, self.routing_params = cfg.routing, dict(cfg.routing_params)
        self.num_blocks = self._decide_num_blocks()
        self._allocate_kv_cache()
        # The last decode step's sampled tokens, by batch row: the next step's input ids
        # are gathered from here on the device, so the host never waits for them.
        self.last_tokens = torch.zeros(cfg.max_num_seqs, dtype=torch.int64, device=device)
        self.graphs: DecodeGraphs | None = None
        if device.type == "cuda" and not cfg.enforce_eager:
            self.graphs = DecodeGraphs(self, max_batch=cfg.max_num_seqs)

    def set_routing(self, policy: str, params: dict) -> None:
        self.routing_policy, self.routing_params = policy, dict(params)
        if self.graphs is not None:  # the policy is baked into the captured graphs
            self.graphs = None
            torch.cuda.empty_cache()
            self.graphs = DecodeGraphs(self, max_batch=self.cfg.max_num_seqs)

    # ---- memory -------------------------------------------------------------------
    @property
    def bytes_per_block(self) -> int:
        c = self.model_cfg
        elem = torch.empty((), dtype=self.dtype).element_size()
        return 2 * c.num_layers * self.block_size * c.num_kv_heads * c.head_dim * elem

    def _decide_num_blocks(self) -> int:
        if self.cfg.num_kv_blocks is not None:
            return self.cfg.num_kv_blocks
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            _, total = torch.cuda.mem_get_info(self.device)
            reserve = self._profile_activation_bytes()
            budget = total * self.cfg.gpu_memory_utilization - torch.cuda.memory_allocated(self.device) - reserve
        else:
            budget = self.cfg.kv_cache_bytes
        blocks = int(budget // self.bytes_per_block)
        # Never allocate much more than every sequence at full length could use.
        cap = self.cfg.max_num_seqs * -(-self.max_model_len // self.block_size)
        return max(0, min(blocks, cap))

    def _profile_activation_bytes(self) -> int:
        """Peak extra memory of the largest prefill the scheduler may build."""
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        n = min(self.cfg.max_num_batched_tokens, self.max_model_len * self.cfg.max_num_seqs)
        lens = [min(self.max_model_len, n - i) for i in range(0, n, self.max_model_len)]
        cu = [0]
        for length in lens:
            cu.append(cu[-1] + length)
        ids = torch.zeros(n, dtype=torch.long, device=self.device)
        pos = torch.cat([torch.arange(length, device=self.device) for length in lens])
        with forward_context(ForwardContext(is_prefill=True, cu_seqlens=cu)):
            hidden = self.model(ids, pos)
            self.model.compute_logits(hidden[torch.tensor(cu[1:], device=self.device) - 1])
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device) - before
        return int(peak * 1.1) + (256 << 20)  # margin for graphs and sampling

    def _allocate_kv_cache(self) -> None:
        c = self.model_cfg
        # One extra block at the end takes writes of CUDA-graph padding rows.
        self.trash_slot = self.num_blocks * self.block_size
        shape = (c.num_layers, 2, self.num_blocks + 1, self.block_size, c.num_kv_heads, c.head_dim)
        self.kv_cache = torch.zeros(shape, dtype=self.dtype, device=self.device)
        for i, layer in enumerate(self.model.layers):
            layer.self_attn.k_cache = self.kv_cache[i, 0]
            layer.self_attn.v_cache = self.kv_cache[i, 1]

    # ---- batches --------------------------------------------------------------------
    def _slots(self, seq: Sequence, start: int, end: int) -> list[int]:
        bs = self.block_size
        return [seq.block_table[p // bs] * bs + p % bs for p in range(start, end)]

    def _tensor(self, data: list, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor(data, dtype=dtype, pin_memory=self.device.type == "cuda").to(self.device, non_blocking=True)

    def new_tally(self, max_tokens: int, is_prefill: bool) -> ExpertTally | None:
        """Buffers for a step's expert counts (None when stats are off or no MoE)."""
        if not (self.cfg.record_stats and self.num_moe_layers):
            return None
        moe = self.model_cfg.moe
        assert moe is not None
        keep_logits = not is_prefill and self.routing_policy != "topk"  # prefill routes with top-k
        return ExpertTally(self.num_moe_layers, moe.num_experts, moe.top_k, self.device,
                           max_tokens if keep_logits else 0)

    @staticmethod
    def finish_tally(ctx: ForwardContext, num_rows: int) -> torch.Tensor | None:
        return None if ctx.expert_tally is None else ctx.expert_tally.finalize(num_rows, ctx.valid)

    def prepare_prefill(self, seqs: list[Sequence]) -> tuple[torch.Tensor, torch.Tensor, ForwardContext, list[int]]:
        ids: list[int] = []
        pos: list[int] = []
        slots: list[int] = []
        cu = [0]
        for seq in seqs:
            ids.extend(seq.token_ids)  # every prefill starts at 0 (recompute after preemption)
            pos.extend(range(len(seq)))
            slots.extend(self._slots(seq, 0, len(seq)))
            cu.append(cu[-1] + len(seq))
        ctx = ForwardContext(
            is_prefill=True, slot_mapping=self._tensor(slots, torch.int64), cu_seqlens=cu,
            routing_policy=self.routing_policy, routing_params=self.routing_params,
            expert_tally=self.new_tally(len(ids), is_prefill=True),
        )
        return self._tensor(ids, torch.int64), self._tensor(pos, torch.int64), ctx, [c - 1 for c in cu[1:]]

    def input_ids(self, host_ids: torch.Tensor, src_rows: torch.Tensor, stop_ids: torch.Tensor,
                  valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode input ids ``[n]`` and the rows still live ``[n]`` bool, on the device.

        ``src_rows[i] >= 0``: row ``i``'s input is a token the previous step computed (in
        that row of :attr:`last_tokens`) and the host has not seen yet, else ``host_ids[i]``.
        If that pending token is one of ``stop_ids[i]`` (``[n, S]``, -1 padded) the
        request has already stopped: the row is marked not ``valid`` (no routing vote, no
        expert count) and its output is discarded by the engine.
        """
        gathered = self.last_tokens[src_rows.clamp(min=0)]  # [n]
        pending = src_rows >= 0  # [n]
        ids = torch.where(pending, gathered, host_ids)  # [n]
        stopped = (stop_ids == gathered[:, None]).any(dim=-1) & pending  # [n]
        return ids, valid & ~stopped

    def prepare_decode(self, seqs: list[Sequence], src_rows: list[int] | None = None,
                       stop_ids: list[list[int]] | None = None) -> tuple[torch.Tensor, torch.Tensor, ForwardContext]:
        """Eager decode inputs (CUDA graphs stage their own, see :mod:`cuda_graphs`)."""
        n = len(seqs)
        width = max(len(s.block_table) for s in seqs)  # block tables padded to the longest
        host_ids = self._tensor([max(s.last_token, 0) for s in seqs], torch.int64)
        src = self._tensor(src_rows if src_rows is not None else [-1] * n, torch.int64)
        stops = stop_table(stop_ids, n)
        ids, valid = self.input_ids(host_ids, src, self._tensor(stops, torch.int64),
                                    torch.ones(n, dtype=torch.bool, device=self.device))
        pos = [len(s) - 1 for s in seqs]
        slots = [self._slots(s, len(s) - 1, len(s))[0] for s in seqs]
        tables = [s.block_table + [0] * (width - len(s.block_table)) for s in seqs]
        ctx = ForwardContext(
            is_prefill=False, slot_mapping=self._tensor(slots, torch.int64),
            block_tables=self._tensor(tables, torch.int32), context_lens=self._tensor([len(s) for s in seqs], torch.int32),
            valid=valid, routing_policy=self.routing_policy, routing_params=self.routing_params,
            expert_tally=self.new_tally(len(seqs), is_prefill=False),
        )
        return ids, self._tensor(pos, torch.int64), ctx

    def sampling_batch(self, seqs: list[Sequence]) -> SamplingBatch:
        ps = [s.params for s in seqs]
        return SamplingBatch(
            temperature=self._tensor([p.temperature for p in ps], torch.float32),
            top_p=self._tensor([p.top_p for p in ps], torch.float32),
            top_k=self._tensor([p.top_k for p in ps], torch.int64),
            seeds=self._tensor([s.seed for s in seqs], torch.int64),
            positions=self._tensor([len(s) for s in seqs], torch.int64),
            all_greedy=all(p.greedy for p in ps),
            any_filter=any(p.top_k > 0 or p.top_p < 1 for p in ps if not p.greedy),
        )

    # ---- run ------------------------------------------------------------------------
    def run(self, seqs: list[Sequence], is_prefill: bool) -> StepOutput:
        """Run one step and wait for its tokens."""
        return self.launch(seqs, is_prefill).wait()

    @torch.inference_mode()
    def launch(self, seqs: list[Sequence], is_prefill: bool, src_rows: list[int] | None = None,
               stop_ids: list[list[int]] | None = None) -> LaunchedStep:
        """Enqueue one step (forward, sampling, copy of the results to the host).

        ``src_rows[i] >= 0`` says that sequence ``i``'s last token is still pending: the
        previous decode step computed it in that row of :attr:`last_tokens`; if it is one
        of ``stop_ids[i]`` the row is dropped on the device (see :meth:`input_ids`).
        """
        if is_prefill:
            ids, pos, ctx, last = self.prepare_prefill(seqs)
            with forward_context(ctx):
                hidden = self.model(ids, pos)  # [T, H]
            logits = self.model.compute_logits(hidden[self._tensor(last, torch.int64)])  # [B, V]
            counts = self.finish_tally(ctx, len(ids))
        elif self.graphs is not None and self.graphs.can_run(len(seqs)):
            logits, counts = self.graphs.run(seqs, src_rows, stop_ids)
        else:
            ids, pos, ctx = self.prepare_decode(seqs, src_rows, stop_ids)
            with forward_context(ctx):
                hidden = self.model(ids, pos)
            logits = self.model.compute_logits(hidden)
            counts = self.finish_tally(ctx, len(seqs))
        if all(s.params.greedy for s in seqs):  # no sampling tensors to build and copy
            tokens = logits.argmax(dim=-1)
        else:
            tokens = sample(logits, self.sampling_batch(seqs))
        tokens = tokens.to(torch.int64)  # [n]
        if not is_prefill:
            self.last_tokens[: len(seqs)].copy_(tokens)
        # One device-to-host copy for the tokens and the expert counts together.
        payload = tokens if counts is None else torch.cat((tokens, counts.flatten()))
        event = None
        if payload.is_cuda:
            host = torch.empty(payload.shape, dtype=torch.int64, pin_memory=True)
            host.copy_(payload, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host = payload
        return LaunchedStep(seqs, host, event, self.num_moe_layers, counts is not None)
