"""Document-QA request shapes, arrivals and JSON-lines round trips."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from lynx.errors import RequestError
from lynx.workloads import DatasetError, Request, load_requests, make_docqa_workload, poisson_arrivals, save_requests
from lynx.workloads.image_sizes import SIZE_BOUNDS, sample_image_size


def test_prompt_is_image_tokens_plus_40_to_70_text_tokens() -> None:
    reqs = make_docqa_workload("chartqa", 300, "qwen2.5-vl", image_sizes=[(800, 600)], seed=1)
    assert all(40 <= r.prompt_len - 609 <= 70 for r in reqs)
    assert all(r.prompt_token_ids is None and r.arrival_time == 0.0 for r in reqs)


def test_output_lengths_per_answer_mode() -> None:
    direct = [r.max_tokens for r in make_docqa_workload("docvqa", 2000, answer_mode="direct", seed=2)]
    cot = [r.max_tokens for r in make_docqa_workload("docvqa", 2000, answer_mode="cot", seed=2)]
    assert min(direct) == 1 and max(direct) <= 16 and 3.0 < statistics.mean(direct) < 4.5
    assert 150 <= min(cot) and max(cot) <= 500 and 300 < statistics.mean(cot) < 350


def test_front_ends_shape_prompts() -> None:
    qwen = make_docqa_workload("docvqa", 500, "qwen2.5-vl", seed=3)
    capped = make_docqa_workload("docvqa", 500, "qwen2.5-vl", seed=3, frontend_options={"max_pixels": 1280 * 28 * 28})
    internvl = make_docqa_workload("docvqa", 500, "internvl", seed=3)
    assert max(r.prompt_len for r in capped) <= 1280 + 70
    assert statistics.mean(r.prompt_len for r in qwen) > 2 * statistics.mean(r.prompt_len for r in capped)
    # Same seed -> same images, text and outputs whatever the front-end.
    assert [r.max_tokens for r in qwen] == [r.max_tokens for r in internvl]
    assert all(40 <= (r.prompt_len % 256) + 256 * ((r.prompt_len % 256) < 40) <= 70 for r in internvl)
    charts = make_docqa_workload("chartqa", 500, "qwen2.5-vl", seed=3)
    assert statistics.mean(r.prompt_len for r in charts) < statistics.mean(r.prompt_len for r in qwen) / 3


def test_deterministic_and_seeded() -> None:
    a = make_docqa_workload("docvqa", 50, "kimi-vl", "cot", rate=2.0, seed=5, vocab_size=1000)
    assert a == make_docqa_workload("docvqa", 50, "kimi-vl", "cot", rate=2.0, seed=5, vocab_size=1000)
    assert a != make_docqa_workload("docvqa", 50, "kimi-vl", "cot", rate=2.0, seed=6, vocab_size=1000)
    lengths = make_docqa_workload("docvqa", 50, "kimi-vl", "cot", seed=5)
    assert [(r.prompt_len, r.max_tokens) for r in a] == [(r.prompt_len, r.max_tokens) for r in lengths]


def test_token_ids_in_vocabulary() -> None:
    reqs = make_docqa_workload("chartqa", 20, "deepseek-vl2", seed=0, vocab_size=151936)
    for r in reqs:
        assert r.prompt_token_ids is not None and len(r.prompt_token_ids) == r.prompt_len
        assert all(0 <= t < 151936 for t in r.prompt_token_ids)


def test_poisson_arrivals() -> None:
    times = poisson_arrivals(5000, 4.0, random.Random(0))
    assert times[0] == 0.0 and all(b >= a for a, b in zip(times, times[1:]))
    assert statistics.mean(b - a for a, b in zip(times, times[1:])) == pytest.approx(0.25, rel=0.05)
    assert poisson_arrivals(3, None, random.Random(0)) == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        poisson_arrivals(3, 0.0, random.Random(0))
    online = make_docqa_workload("docvqa", 100, rate=10.0, seed=1)
    assert online[-1].arrival_time > 0 and sorted(r.arrival_time for r in online) == [r.arrival_time for r in online]


@pytest.mark.parametrize("seed", range(20))
def test_image_sizes_within_documented_ranges(seed: int) -> None:
    rng = random.Random(seed)
    for task in ("docvqa", "chartqa"):
        min_w, min_h, max_w, max_h = SIZE_BOUNDS[task]
        for _ in range(100):
            w, h = sample_image_size(task, rng)
            assert min_w <= w <= max_w and min_h <= h <= max_h


def test_save_load_round_trip(tmp_path: Path) -> None:
    reqs = make_docqa_workload("docvqa", 10, rate=1.0, seed=0, vocab_size=50) + make_docqa_workload(
        "chartqa", 5, seed=0
    )
    path = tmp_path / "w.jsonl"
    assert save_requests(path, reqs) == 15
    assert load_requests(path) == reqs


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "line 2: invalid JSON"),
        ("[1, 2]", "line 2: expected an object"),
        ('{"prompt_len": 3}', "line 2: missing field(s) ['max_tokens']"),
        ('{"prompt_len": 3, "max_tokens": 1, "extra": 1}', "line 2: unknown field(s) ['extra']"),
        ('{"prompt_len": 0, "max_tokens": 1}', "line 2: prompt_len must be a positive integer"),
        (
            '{"prompt_len": 2, "max_tokens": 1, "prompt_token_ids": [1]}',
            "line 2: prompt_token_ids has 1 tokens but prompt_len is 2",
        ),
        (
            '{"prompt_len": 1, "max_tokens": 1, "prompt_token_ids": ["a"]}',
            "line 2: prompt_token_ids must be a list of integers",
        ),
        (
            '{"prompt_len": 1, "max_tokens": 1, "arrival_time": -1}',
            "line 2: arrival_time must be a non-negative number",
        ),
    ],
)
def test_load_requests_errors_name_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt_len": 3, "max_tokens": 2}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        load_requests(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_request_validation_and_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(RequestError):
        Request(None, 5, 0)
    with pytest.raises(DatasetError, match="file not found"):
        load_requests(tmp_path / "missing.jsonl")
    for kwargs, match in [
        ({"task": "vqa"}, "unknown task"),
        ({"answer_mode": "long"}, "answer_mode"),
        ({"frontend": "llava"}, "front-end"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"image_sizes": []}, "image_sizes"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_docqa_workload(n=1, **kwargs)
