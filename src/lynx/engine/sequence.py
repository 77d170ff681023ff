"""Per-request state as it moves through the scheduler."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

from lynx.engine.sampling_params import SamplingParams


# Stands for a token that an in-flight decode step is still computing on the device
# (overlapped decode, see LLMEngine): it holds the position, the value comes later.
PENDING = -1
# Stop ids per sequence that a decode step checks on the device for a pending token (a
# static width, for CUDA graphs; see ModelRunner.input_ids).
STOP_SLOTS = 8


def stop_table(stop_ids: list[list[int]] | None, rows: int) -> list[list[int]]:
    """``[rows, STOP_SLOTS]`` stop ids padded with -1 (never a token id)."""
    table = [[-1] * STOP_SLOTS for _ in range(rows)]
    for row, ids in zip(table, stop_ids or []):
        if len(ids) > STOP_SLOTS:
            raise ValueError(f"{len(ids)} stop ids for one row; at most {STOP_SLOTS} are checked on the device")
        row[: len(ids)] = ids
    return table


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(slots=True)
class Sequence:
    """One request: its tokens (prompt + generated), KV blocks and timing."""

    seq_id: int
    request_id: str
    token_ids: list[int]
    num_prompt_tokens: int
    params: SamplingParams
    seed: int  # resolved seed: the request's or one drawn by the engine
    prompt: str | None = None
    status: SequenceStatus = SequenceStatus.WAITING
    block_table: list[int] = field(default_factory=list)
    num_cached_tokens: int = 0  # tokens whose K/V are in the cache
    num_pending: int = 0  # trailing PENDING placeholders (0 or 1: one decode step in flight)
    arrival_time: float = field(default_factory=time.monotonic)
    first_token_time: float | None = None
    finish_time: float | None = None
    finish_reason: str | None = None  # "stop" | "length" | "abort"
    num_preemptions: int = 0
    text: str = ""

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_resolved(self) -> int:
        """Tokens whose values are known on the host (all but the pending ones)."""
        return len(self.token_ids) - self.num_pending

    @property
    def output_token_ids(self) -> list[int]:
        """Generated tokens known so far (pending ones excluded)."""
        return self.token_ids[self.num_prompt_tokens : self.num_resolved]

    @property
    def num_output_tokens(self) -> int:
        """Generated tokens known so far (pending ones excluded)."""
        return self.num_resolved - self.num_prompt_tokens

    @property
    def num_scheduled_outputs(self) -> int:
        """Generated tokens including those still being computed."""
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def last_token(self) -> int:
        """The newest token, or :data:`PENDING` while a decode step computes it."""
        return self.token_ids[-1]

    def resolve(self, token: int) -> None:
        """Replace the oldest pending placeholder with its value."""
        assert self.num_pending > 0, "no pending token to resolve"
        self.token_ids[len(self.token_ids) - self.num_pending] = token
        self.num_pending -= 1

    def drop_pending(self) -> None:
        """Forget placeholders of steps that ran after the sequence finished."""
        if self.num_pending:
            del self.token_ids[len(self.token_ids) - self.num_pending :]
            self.num_pending = 0

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED
