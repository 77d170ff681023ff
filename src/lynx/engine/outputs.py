"""Results handed back to callers: per-request outputs and per-step statistics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class RequestMetrics:
    """Timing of one request (seconds, monotonic clock)."""

    arrival_time: float
    first_token_time: float | None
    finish_time: float | None
    num_prompt_tokens: int
    num_output_tokens: int
    num_preemptions: int

    @property
    def ttft(self) -> float | None:
        """Time to first token."""
        return None if self.first_token_time is None else self.first_token_time - self.arrival_time

    @property
    def tpot(self) -> float | None:
        """Mean time per output token after the first."""
        if self.finish_time is None or self.first_token_time is None or self.num_output_tokens < 2:
            return None
        return (self.finish_time - self.first_token_time) / (self.num_output_tokens - 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ttft": self.ttft, "tpot": self.tpot}


@dataclass(slots=True)
class RequestOutput:
    """The generation of one request; ``token_ids`` excludes the prompt."""

    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    finished: bool
    finish_reason: str | None  # "stop" | "length" | "abort"
    metrics: RequestMetrics


@dataclass(slots=True)
class StepStats:
    """One engine step: phase, batch, time and the experts each MoE layer touched."""

    step: int
    phase: str  # "prefill" | "decode"
    batch_size: int
    num_tokens: int
    duration_s: float
    # per MoE layer: distinct experts under plain top-k and under the active policy
    experts_before: list[int] = field(default_factory=list)
    experts_after: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_steps(steps: list[StepStats]) -> dict[str, Any]:
    """Aggregate routing figures over decode steps (the iterations the policy acts on)."""
    decode = [s for s in steps if s.phase == "decode"]
    out: dict[str, Any] = {
        "num_steps": len(steps),
        "num_decode_steps": len(decode),
        "num_prefill_steps": len(steps) - len(decode),
        "mean_decode_batch_size": _mean([s.batch_size for s in decode]),
        "decode_time_s": sum(s.duration_s for s in decode),
        "prefill_time_s": sum(s.duration_s for s in steps if s.phase == "prefill"),
    }
    with_counts = [s for s in decode if s.experts_after]
    if with_counts:
        layers = len(with_counts[0].experts_after)
        before = [_mean([s.experts_before[i] for s in with_counts]) for i in range(layers)]
        after = [_mean([s.experts_after[i] for s in with_counts]) for i in range(layers)]
        out.update(
            mean_active_experts_before=_mean(before),
            mean_active_experts_after=_mean(after),
            active_experts_before_per_layer=before,
            active_experts_after_per_layer=after,
        )
    return out


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None
