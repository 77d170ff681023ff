"""Document-QA serving workloads: request shapes of VLM DocVQA/ChartQA traffic.

A request's prompt is the image's vision tokens (see :mod:`lynx.workloads.image_tokens`)
plus text: 20-30 question tokens, 10-15 instruction tokens and 10-25 chat-template tokens,
each drawn uniformly (40-70 in total). Output lengths follow the two answer modes:

* ``"direct"`` (lmms-eval: "Answer the question using a single word or phrase.", up to 16
  new tokens for ChartQA): ``k`` tokens with ``P(k)`` proportional to ``0.75**(k-1)`` for
  ``k = 1..16`` (mean about 3.7), covering 1-8-token answers plus the end-of-turn token.
* ``"cot"`` (lm-eval's chain-of-thought ChartQA prompt ending in "Final Answer: ..."):
  uniform in 150-500 tokens.

Image sizes are drawn as in :mod:`lynx.workloads.image_sizes` unless given.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from lynx.workloads.image_sizes import sample_image_size
from lynx.workloads.image_tokens import VisionFrontend, get_frontend
from lynx.workloads.requests import Request, poisson_arrivals

ANSWER_MODES = ("direct", "cot")
TEXT_TOKEN_RANGES = {"question": (20, 30), "instruction": (10, 15), "chat_template": (10, 25)}
DIRECT_MAX_TOKENS = 16
DIRECT_DECAY = 0.75
COT_TOKEN_RANGE = (150, 500)


def text_tokens(rng: random.Random) -> int:
    """Non-image prompt tokens of one request (question + instruction + chat template)."""
    return sum(rng.randint(lo, hi) for lo, hi in TEXT_TOKEN_RANGES.values())


def output_tokens(answer_mode: str, rng: random.Random) -> int:
    """Output length of one request in the given answer mode (see module docstring)."""
    if answer_mode == "direct":
        weights = [DIRECT_DECAY**k for k in range(DIRECT_MAX_TOKENS)]
        return rng.choices(range(1, DIRECT_MAX_TOKENS + 1), weights=weights)[0]
    if answer_mode == "cot":
        return rng.randint(*COT_TOKEN_RANGE)
    raise ValueError(f"unknown answer_mode {answer_mode!r}; expected one of {ANSWER_MODES}")


def make_docqa_workload(
    task: str = "docvqa",
    n: int = 100,
    frontend: str | VisionFrontend = "qwen2.5-vl",
    answer_mode: str = "direct",
    rate: float | None = None,
    seed: int = 0,
    vocab_size: int | None = None,
    *,
    frontend_options: dict[str, int | bool] | None = None,
    image_sizes: Sequence[tuple[int, int]] | None = None,
) -> list[Request]:
    """Build ``n`` requests shaped like VLM document-QA traffic.

    Args:
        task: ``"docvqa"`` (pages) or ``"chartqa"`` (charts); selects the image-size model.
        n: Number of requests.
        frontend: Built-in front-end name (``"qwen2.5-vl"``, ``"qwen3-vl"``, ``"internvl"``,
            ``"deepseek-vl2"``, ``"kimi-vl"``) or any :class:`VisionFrontend`.
        answer_mode: ``"direct"`` (1-16 output tokens) or ``"cot"`` (150-500).
        rate: Poisson arrival rate in requests/second for online runs; ``None`` = offline.
        seed: Seeds everything. Sizes, lengths and arrivals use separate streams, so the
            same seed gives the same images whatever the front-end or ``vocab_size``.
        vocab_size: If given, each request gets ``prompt_len`` token ids uniform in
            ``[0, vocab_size)``; otherwise ``prompt_token_ids`` is ``None``.
        frontend_options: Overrides for a named front-end, e.g. ``{"max_pixels": 1003520}``.
        image_sizes: Real ``(width, height)`` sizes to use (cycled) instead of sampling.

    Returns:
        The requests, in arrival order.
    """
    if task not in ("docvqa", "chartqa"):
        raise ValueError(f"unknown task {task!r}; expected 'docvqa' or 'chartqa'")
    if answer_mode not in ANSWER_MODES:
        raise ValueError(f"unknown answer_mode {answer_mode!r}; expected one of {ANSWER_MODES}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if vocab_size is not None and vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    if image_sizes is not None and not image_sizes:
        raise ValueError("image_sizes must not be empty")
    if isinstance(frontend, str):
        fe = get_frontend(frontend, **(frontend_options or {}))
    elif frontend_options:
        raise ValueError("frontend_options only apply to a named front-end")
    else:
        fe = frontend
    # Independent streams: changing one knob (e.g. the rate) leaves the other draws intact.
    size_rng = random.Random(f"docqa-sizes-{task}-{seed}")
    length_rng = random.Random(f"docqa-lengths-{task}-{answer_mode}-{seed}")
    arrivals = poisson_arrivals(n, rate, random.Random(f"docqa-arrivals-{seed}"))
    token_rng = np.random.default_rng([seed, 0x70CE75])
    requests = []
    for i in range(n):
        width, height = image_sizes[i % len(image_sizes)] if image_sizes else sample_image_size(task, size_rng)
        prompt_len = fe.image_tokens(width, height) + text_tokens(length_rng)
        max_tokens = output_tokens(answer_mode, length_rng)
        ids = token_rng.integers(0, vocab_size, size=prompt_len).tolist() if vocab_size else None
        requests.append(Request(ids, prompt_len, max_tokens, arrivals[i]))
    return requests
