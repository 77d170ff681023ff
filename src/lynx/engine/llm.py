"""Offline batched generation: the :class:`LLM` entry point."""

from __future__ import annotations

from typing import Any, Sequence as Seq

from tqdm.auto import tqdm

from lynx.engine.config import EngineConfig
from lynx.engine.llm_engine import LLMEngine
from lynx.engine.outputs import RequestOutput, StepStats
from lynx.engine.sampling_params import SamplingParams
from lynx.errors import RequestError


class LLM:
    """Load a checkpoint and generate for many prompts at once.

    >>> llm = LLM("tiny-moe", routing="lynx")            # doctest: +SKIP
    >>> llm.generate(["Hello"], SamplingParams(max_tokens=8, temperature=0))  # doctest: +SKIP

    ``model`` is a Hugging Face checkpoint directory or a built-in name (``tiny-moe``,
    ``tiny-dense``). ``routing`` picks the expert-selection policy for decode batches
    (``topk``, ``lynx``, ``oea``); remaining keyword arguments that are not engine
    options (see :class:`EngineConfig`) are routing parameters (``alpha``, ``beta``,
    ``k0``), validated against the policy.
    """

    def __init__(self, model: str, routing: str = "topk", device: str = "auto", dtype: str = "auto",
                 **kwargs: Any) -> None:
        engine_keys = set(EngineConfig.__dataclass_fields__) - {"model", "routing", "device", "dtype"}
        engine_kwargs = {k: v for k, v in kwargs.items() if k in engine_keys}
        routing_params = {k: v for k, v in kwargs.items() if k not in engine_keys}
        routing_params.update(engine_kwargs.pop("routing_params", {}) or {})
        config = EngineConfig(model=str(model), routing=routing, device=device, dtype=dtype,
                              routing_params=routing_params, **engine_kwargs)
        self.engine = LLMEngine(config)

    @property
    def tokenizer(self) -> Any:
        return self.engine.tokenizer

    def generate(
        self,
        prompts: Seq[str] | Seq[list[int]] | str,
        sampling_params: SamplingParams | Seq[SamplingParams] | None = None,
        use_tqdm: bool = False,
    ) -> list[RequestOutput]:
        """Generate for every prompt (text or token ids); outputs in prompt order."""
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        if prompts and isinstance(prompts[0], int):
            raise RequestError("prompts must be a list of strings or a list of token-id lists")
        if sampling_params is None or isinstance(sampling_params, SamplingParams):
            params = [sampling_params or SamplingParams()] * len(prompts)
        else:
            params = list(sampling_params)
            if len(params) != len(prompts):
                raise RequestError(f"got {len(params)} sampling params for {len(prompts)} prompts")
        # Validate every prompt before queueing any, so a bad one leaves no work behind.
        ids = []
        for p in prompts:
            tokens = self.engine.tokenize(p) if isinstance(p, str) else list(p)
            self.engine._validate_prompt(tokens)
            ids.append(tokens)
        order = [self.engine.add_request(t, sp, prompt_text=p if isinstance(p, str) else None)
                 for t, sp, p in zip(ids, params, prompts)]
        finished: dict[str, RequestOutput] = {}
        bar = tqdm(total=len(order), desc="generate", disable=not use_tqdm)
        while len(finished) < len(order) and self.engine.has_unfinished():
            for out in self.engine.step():
                if out.finished and out.request_id not in finished:
                    finished[out.request_id] = out
                    bar.update(1)
        bar.close()
        self.engine.collect_inflight()  # a last step of discarded rows: counted now, not in the next run
        for rid in order:
            self.engine.release(rid)
        return [finished[rid] for rid in order]

    def set_routing(self, routing: str, **params: Any) -> None:
        """Switch the decode routing policy without reloading the weights."""
        self.engine.set_routing(routing, **params)

    def stats(self) -> dict[str, Any]:
        """Routing and step figures since creation or the last :meth:`reset_stats`."""
        return self.engine.stats()

    def step_stats(self) -> list[StepStats]:
        return list(self.engine.step_stats)

    def reset_stats(self) -> None:
        self.engine.collect_inflight()
        self.engine.step_stats.clear()
