"""Replayable benchmark requests: shapes (prompt/output lengths), arrival times, JSONL I/O."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from lynx.errors import RequestError
from lynx.workloads.dataset_io import DatasetError, read_text


@dataclass(frozen=True)
class Request:
    """One request of a workload.

    Attributes:
        prompt_token_ids: Concrete prompt tokens, or ``None`` for a length-only workload
            (the benchmark then makes up ``prompt_len`` tokens itself).
        prompt_len: Prompt length in tokens (equals ``len(prompt_token_ids)`` when given).
        max_tokens: Output tokens to generate (benchmarks replay this exact length).
        arrival_time: Seconds after the start of the run at which the request arrives;
            all zero for offline (batch) workloads.
    """

    prompt_token_ids: list[int] | None
    prompt_len: int
    max_tokens: int
    arrival_time: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.prompt_len, bool) or not isinstance(self.prompt_len, int) or self.prompt_len < 1:
            raise RequestError(f"prompt_len must be a positive integer, got {self.prompt_len!r}")
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise RequestError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")
        if not isinstance(self.arrival_time, (int, float)) or not self.arrival_time >= 0:
            raise RequestError(f"arrival_time must be a non-negative number, got {self.arrival_time!r}")
        if self.prompt_token_ids is not None and len(self.prompt_token_ids) != self.prompt_len:
            raise RequestError(
                f"prompt_token_ids has {len(self.prompt_token_ids)} tokens but prompt_len is {self.prompt_len}"
            )


def poisson_arrivals(n: int, rate: float | None, rng: random.Random) -> list[float]:
    """Arrival times of ``n`` requests of a Poisson process with ``rate`` requests/second.

    The first request arrives at t=0 (so a run starts immediately) and gaps are
    exponential with mean ``1/rate``. ``rate=None`` means offline: every arrival is 0.
    """
    if rate is None:
        return [0.0] * n
    if not rate > 0:
        raise ValueError(f"rate must be positive requests/second, got {rate!r}")
    times, t = [], 0.0
    for i in range(n):
        if i:
            t += rng.expovariate(rate)
        times.append(t)
    return times


def save_requests(path: str | Path, requests: Iterable[Request]) -> int:
    """Write requests as JSON lines, one object per request; returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for req in requests:
            f.write(json.dumps(asdict(req), separators=(",", ":")) + "\n")
            n += 1
    return n


def load_requests(path: str | Path) -> list[Request]:
    """Read a workload written by :func:`save_requests`.

    Raises:
        DatasetError: The file is missing, or a line is not a valid request (the message
            gives the line number and the problem).
    """
    requests = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"line {lineno}: invalid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DatasetError(path, f"line {lineno}: expected an object, got {type(obj).__name__}")
        missing = [k for k in ("prompt_len", "max_tokens") if k not in obj]
        if missing:
            raise DatasetError(path, f"line {lineno}: missing field(s) {missing}")
        unknown = sorted(set(obj) - {"prompt_token_ids", "prompt_len", "max_tokens", "arrival_time"})
        if unknown:
            raise DatasetError(path, f"line {lineno}: unknown field(s) {unknown}")
        ids = obj.get("prompt_token_ids")
        if ids is not None and not (
            isinstance(ids, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in ids)
        ):
            raise DatasetError(path, f"line {lineno}: prompt_token_ids must be a list of integers or null")
        try:
            requests.append(Request(ids, obj["prompt_len"], obj["max_tokens"], obj.get("arrival_time", 0.0)))
        except RequestError as exc:
            raise DatasetError(path, f"line {lineno}: {exc}") from None
    return requests
