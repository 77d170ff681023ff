"""The serving engine: requests in, one scheduled forward pass per :meth:`step`, outputs out."""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lynx.engine.block_manager import BlockManager, blocks_for
from lynx.engine.config import EngineConfig
from lynx.engine.model_runner import LaunchedStep, ModelRunner, StepOutput
from lynx.engine.outputs import RequestMetrics, RequestOutput, StepStats, summarize_steps
from lynx.engine.sampling_params import SamplingParams
from lynx.engine.scheduler import Scheduler
from lynx.engine.sequence import PENDING, STOP_SLOTS, Sequence
from lynx.errors import CheckpointError, LynxError, RequestError
from lynx.models.config import ModelConfig, load_config_dict, parse_model_config
from lynx.routing import RoutingConfig

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise LynxError(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)


def resolve_dtype(name: str, model_cfg: ModelConfig, device: torch.device) -> torch.dtype:
    """``auto``: the checkpoint's dtype on GPU; float32 on CPU (bf16 matmuls are slow there)."""
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cpu":
        return torch.float32
    return _DTYPES.get(str(model_cfg.torch_dtype), torch.bfloat16)


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as e:  # transformers raises many types for a missing/broken tokenizer
        raise CheckpointError(f"cannot load the tokenizer from {model_dir}: {e}") from None


def _resolve_checkpoint(config: EngineConfig) -> tuple[Path | None, dict[str, Any]]:
    """(checkpoint dir or None for a preset, raw config dict) for ``config.model``."""
    from lynx.embedded import resolve_model
    from lynx.models.presets import is_preset, preset_config

    if is_preset(config.model) and not Path(config.model).exists():
        if config.load_format != "dummy":
            raise LynxError(
                f"{config.model!r} is a shape preset without weights: use load_format='dummy' to time it"
            )
        return None, preset_config(config.model)
    model_dir = resolve_model(config.model)
    return model_dir, load_config_dict(model_dir)


def _eos_ids(model_dir: Path | None, model_cfg: ModelConfig, tokenizer: Any) -> set[int]:
    ids = set(model_cfg.eos_token_ids)
    gen = model_dir / "generation_config.json" if model_dir else None
    if gen is not None and gen.is_file():
        eos = json.loads(gen.read_text()).get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [] if eos is None else [eos])
    if tokenizer is not None and tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


@dataclass(slots=True)
class _Inflight:
    step: LaunchedStep
    launched_at: float  # perf_counter() when its launch began


class LLMEngine:
    """Continuous-batching engine over one model: ``add_request``, ``step``, ``abort``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.model_dir, raw = _resolve_checkpoint(config)
        self.model_config = parse_model_config(raw)
        config.routing_params = self._resolve_routing(config.routing, config.routing_params)
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.model_config, self.device)
        limit = self.model_config.max_position_embeddings
        if config.max_model_len is not None and config.max_model_len > limit:
            raise LynxError(f"max_model_len {config.max_model_len} exceeds the model's max_position_embeddings {limit}")
        self.max_model_len = config.max_model_len or min(limit, 8192)
        self.tokenizer = self._tokenizer()
        self.eos_ids = _eos_ids(self.model_dir, self.model_config, self.tokenizer)
        self.runner = ModelRunner(config, self.model_config, self.model_dir, self.device, self.dtype, self.max_model_len)
        if self.runner.num_blocks < 1:
            raise LynxError("the KV-cache budget holds no block: raise kv_cache_bytes / gpu_memory_utilization")
        self.blocks = BlockManager(self.runner.num_blocks, config.block_size)
        self.scheduler = Scheduler(self.blocks, config.max_num_seqs, max(config.max_num_batched_tokens, self.max_model_len),
                                   self.max_model_len)
        self.sequences: dict[str, Sequence] = {}
        self.step_stats: list[StepStats] = []
        self._ids = itertools.count()
        self._rng = random.Random(config.seed)
        # Overlapped decode pays off where launches are asynchronous: on CUDA unless configured.
        self.overlap_decode = (self.device.type == "cuda" if config.overlap_decode is None
                               else config.overlap_decode)
        self._inflight: _Inflight | None = None  # overlapped decode: the step launched last
        self._last_result: float | None = None  # when the previous decode step's results arrived
        self._carried: list[RequestOutput] = []  # outputs collected outside step(), returned by the next

    def _resolve_routing(self, policy: str, params: dict[str, Any]) -> dict[str, Any]:
        moe = self.model_config.moe
        routing = RoutingConfig(policy, dict(params))
        return routing.resolve(moe.num_experts, moe.top_k, self.model_config.architecture) if moe else {}

    def set_routing(self, policy: str, **params: Any) -> None:
        """Switch the decode routing policy of the loaded model (re-captures CUDA graphs)."""
        resolved = self._resolve_routing(policy, params)
        self.collect_inflight()  # the graphs it ran in are about to go
        self.config.routing, self.config.routing_params = policy, resolved
        self.runner.set_routing(policy, resolved)

    def _tokenizer(self) -> Any:
        """The checkpoint's tokenizer; dummy-weight runs may go without one (token ids only)."""
        if self.model_dir is None:
            return None
        try:
            return load_tokenizer(self.model_dir)
        except CheckpointError:
            if self.config.load_format == "dummy":
                return None
            raise

    # ---- requests -----------------------------------------------------------------
    def tokenize(self, prompt: str) -> list[int]:
        if self.tokenizer is None:
            raise RequestError("this model has no tokenizer: pass prompts as lists of token ids")
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def add_request(
        self, prompt: str | list[int], params: SamplingParams | None = None,
        request_id: str | None = None, arrival_time: float | None = None, prompt_text: str | None = None,
    ) -> str:
        """Queue a request; it joins the running batch at the next step. Returns its id.

        ``prompt_text`` records the text of an already tokenized prompt (for the outputs).
        """
        params = params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise RequestError(f"sampling params must be a SamplingParams, got {type(params).__name__}")
        text = prompt if isinstance(prompt, str) else prompt_text
        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        self._validate_prompt(ids)
        request_id = request_id if request_id is not None else f"req-{next(self._ids)}"
        if request_id in self.sequences:
            raise RequestError(f"request id {request_id!r} is already in use")
        seed = params.seed if params.seed is not None else self._rng.getrandbits(63)
        seq = Sequence(next(self._ids), request_id, ids, len(ids), params, seed, prompt=text)
        if arrival_time is not None:
            seq.arrival_time = arrival_time
        self.sequences[request_id] = seq
        self.scheduler.add(seq)
        return request_id

    def _validate_prompt(self, ids: list[int]) -> None:
        if not ids:
            raise RequestError("the prompt is empty")
        vocab = self.model_config.vocab_size
        if not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
            raise RequestError(f"prompt token ids must be integers in [0, {vocab})")
        if len(ids) >= self.max_model_len:
            raise RequestError(
                f"the prompt has {len(ids)} tokens but the context holds {self.max_model_len} "
                "(max_model_len), which must leave room for at least one generated token"
            )
        need = blocks_for(min(len(ids) + 1, self.max_model_len), self.config.block_size)
        if need > self.blocks.num_blocks:
            raise RequestError(
                f"the prompt needs {need} KV-cache blocks but the cache has only {self.blocks.num_blocks}"
            )

    def abort(self, request_id: str) -> bool:
        """Stop a request and free its cache; returns whether it was still active."""
        seq = self.scheduler.abort(request_id)
        if seq is not None:
            seq.finish_time = time.monotonic()
        return seq is not None

    def has_unfinished(self) -> bool:
        """Whether a request is still queued, running or has tokens in flight (or outputs
        collected outside :meth:`step` wait to be returned)."""
        inflight = self._inflight is not None and any(not s.is_finished for s in self._inflight.step.seqs)
        return self.scheduler.has_unfinished() or inflight or bool(self._carried)

    # ---- stepping --------------------------------------------------------------------
    def step(self) -> list[RequestOutput]:
        """Run one prefill or decode iteration; outputs of the requests it advanced.

        With overlapped decode a decode step is launched and the *previous* decode step's
        tokens are collected while it runs, so the GPU never waits for the host's
        scheduling and bookkeeping. Its input ids come from the device. A sequence whose
        pending token turns out to be a stop token still has a row in the step after: the
        device spots it (the row's stop ids) and marks the row invalid, so it has no say in
        batch-aware routing or the expert counts, and its output is discarded.
        """
        results, self._carried = self._carried, []
        seqs, is_prefill = self.scheduler.schedule()
        if self.scheduler.out_of_cache:
            results += self._end_out_of_cache()
        if not seqs:
            return results + self._collect_inflight()
        if is_prefill or not self.overlap_decode:
            results += self._collect_inflight()  # a prefill waits for the GPU anyway
            start = time.perf_counter()
            out = self.runner.run(seqs, is_prefill)
            return results + self._apply(seqs, out, is_prefill, time.perf_counter() - start)
        stops = [self._pending_stop_ids(s) for s in seqs]
        if any(x is None for x in stops):
            results += self._collect_inflight()  # a stop the device cannot check: resolve first
        if self._inflight is None:  # collected (here or for out-of-cache sequences): nothing pending
            seqs = [s for s in seqs if not s.is_finished]  # some may have stopped on a collected token
            stops = [[] for _ in seqs]
            if not seqs:
                return results
        inflight = self._inflight
        rows = inflight.step.row_of() if inflight is not None else {}
        src = [rows[s.seq_id] if s.num_pending else -1 for s in seqs]
        launched_at = time.perf_counter()
        step = self.runner.launch(seqs, False, src, stops)
        for seq in seqs:
            seq.num_cached_tokens = len(seq)  # the step writes the K/V of its last token
            seq.token_ids.append(PENDING)
            seq.num_pending += 1
        results += self._collect_inflight()
        self._inflight = _Inflight(step, launched_at)
        return results

    def _end_out_of_cache(self) -> list[RequestOutput]:
        """End the sequences the whole KV cache cannot hold any more (finish reason "length")."""
        seqs, self.scheduler.out_of_cache = self.scheduler.out_of_cache, []
        results = self._collect_inflight() if any(s.num_pending for s in seqs) else []  # keep their last token
        now = time.monotonic()
        for seq in seqs:
            if seq.is_finished:
                continue  # stopped on the token just collected
            seq.finish_reason, seq.finish_time = "length", now
            self.scheduler.finish(seq)
            results.append(self.output(seq))
        return results

    def _pending_stop_ids(self, seq: Sequence) -> list[int] | None:
        """Token ids that, as ``seq``'s pending token, would stop it (checked on the device);
        ``None`` if a stop cannot be decided there (stop strings, too many stop ids)."""
        if not seq.num_pending:
            return []
        p = seq.params
        if p.stop:
            return None
        if seq.num_scheduled_outputs < p.min_tokens:
            return []
        ids = sorted(set(p.stop_token_ids) | (set() if p.ignore_eos else self.eos_ids))
        return ids if len(ids) <= STOP_SLOTS else None  # more: collect first

    def collect_inflight(self) -> None:
        """Finish the decode step in flight now; its outputs come with the next :meth:`step`
        (callers that end a run, or reset statistics, so no step is left half-counted)."""
        self._carried += self._collect_inflight()

    def _collect_inflight(self) -> list[RequestOutput]:
        """Wait for the decode step in flight (if any) and apply its tokens."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return []
        out = inflight.step.wait()
        done = time.perf_counter()
        # Time between consecutive results: the GPU's step time while it is the bottleneck,
        # the host's loop time otherwise; the first step after a prefill counts from launch.
        since = inflight.launched_at if self._last_result is None else max(inflight.launched_at, self._last_result)
        self._last_result = done
        return self._apply(inflight.step.seqs, out, False, done - since)

    def _apply(self, seqs: list[Sequence], out: StepOutput, is_prefill: bool, duration: float) -> list[RequestOutput]:
        """Record a finished step's statistics and give each sequence its new token."""
        now = time.monotonic()
        if is_prefill:
            self._last_result = None
        counts = out.expert_counts or []
        live = sum(not s.is_finished for s in seqs)  # rows of requests that stopped meanwhile do not count
        if live:
            self.step_stats.append(StepStats(
                step=len(self.step_stats), phase="prefill" if is_prefill else "decode", batch_size=live,
                num_tokens=sum(len(s) for s in seqs) if is_prefill else live, duration_s=duration,
                experts_before=[c[0] for c in counts], experts_after=[c[1] for c in counts],
            ))
        results = []
        for seq, token in zip(seqs, out.token_ids):
            if seq.is_finished:
                continue  # stopped (or aborted) while this step was in flight: a discarded row
            if seq.num_pending:
                seq.resolve(token)
            else:
                seq.token_ids.append(token)
                seq.num_cached_tokens = len(seq) - 1
            if seq.first_token_time is None:
                seq.first_token_time = now
            self._check_finished(seq, token)
            if seq.finish_reason is not None:
                seq.finish_time = now
                seq.drop_pending()
                self.scheduler.finish(seq)
            results.append(self.output(seq))
        return results

    def _check_finished(self, seq: Sequence, token: int) -> None:
        p = seq.params
        n = seq.num_output_tokens
        if n >= p.min_tokens and not p.ignore_eos and token in self.eos_ids:
            seq.finish_reason = "stop"
        elif n >= p.min_tokens and token in p.stop_token_ids:
            seq.finish_reason = "stop"
        elif n >= p.max_tokens or seq.num_resolved >= self.max_model_len:
            seq.finish_reason = "length"
        if p.stop:
            seq.text = self._decode(seq)
            hits = [i for i in (seq.text.find(s) for s in p.stop) if i >= 0]
            if hits:
                seq.text = seq.text[: min(hits)]
                seq.finish_reason = "stop"

    def _decode(self, seq: Sequence) -> str:
        if self.tokenizer is None:
            return ""
        return self.tokenizer.decode(seq.output_token_ids, skip_special_tokens=True)

    def output(self, seq: Sequence) -> RequestOutput:
        done = seq.finish_reason is not None
        if done and not seq.params.stop:
            seq.text = self._decode(seq)
        return RequestOutput(
            request_id=seq.request_id, prompt=seq.prompt, prompt_token_ids=seq.token_ids[: seq.num_prompt_tokens],
            token_ids=list(seq.output_token_ids), text=seq.text, finished=done, finish_reason=seq.finish_reason,
            metrics=RequestMetrics(seq.arrival_time, seq.first_token_time, seq.finish_time, seq.num_prompt_tokens,
                                   seq.num_output_tokens, seq.num_preemptions),
        )

    def release(self, request_id: str) -> None:
        """Forget a finished request (callers collect outputs first)."""
        self.sequences.pop(request_id, None)

    def stats(self) -> dict[str, Any]:
        """Aggregate step statistics (routing figures over decode steps)."""
        out = summarize_steps(self.step_stats)
        out.update(routing=self.config.routing, routing_params=self.config.routing_params,
                   num_preemptions=self.scheduler.num_preemptions)
        return out
