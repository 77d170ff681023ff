"""Synthetic DocVQA-style documents: extractive answers, determinism, variety."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynx.eval.metrics import anls
from lynx.workloads import DatasetError, DocQASample, generate_docvqa, load_samples, save_samples
from lynx.workloads.image_sizes import SIZE_BOUNDS
from lynx.workloads.synthetic import DOCUMENT_KINDS


def norm(text: str) -> str:
    return " ".join(text.lower().split())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**63), n=st.integers(1, 12))
def test_every_answer_variant_occurs_in_the_context(seed: int, n: int) -> None:
    for s in generate_docvqa(n, seed):
        assert s.context and s.question.endswith("?")
        assert s.answers and len(set(s.answers)) == len(s.answers)
        for answer in s.answers:
            assert answer.strip() and norm(answer) in norm(s.context), (s.meta, answer)
        assert s.subset in DOCUMENT_KINDS and s.task == "docvqa"
        min_w, min_h, max_w, max_h = SIZE_BOUNDS["docvqa"]
        assert s.image_size is not None
        assert min_w <= s.image_size[0] <= max_w and min_h <= s.image_size[1] <= max_h
        # The oracle answer scores 1 under the task metric.
        assert anls(s.answers[0], s.answers) == 1.0


def test_answer_variants_of_amounts_and_codes() -> None:
    samples = list(generate_docvqa(3000, seed=7, kinds=["invoice"]))
    totals = [s for s in samples if s.meta["field"] == "total"]
    assert totals
    for s in totals:
        dollars, plain = s.answers
        assert re.fullmatch(r"\$\d{1,3}(,\d{3})*\.\d\d", dollars) and dollars == "$" + plain
    numbers = [s for s in samples if s.meta["field"] == "invoice_number" and "-" in s.answers[0]]
    assert numbers and all(s.answers[0].endswith("-" + s.answers[1]) for s in numbers)


def test_deterministic_prefix_stable_and_unbounded() -> None:
    a = list(generate_docvqa(50, seed=3))
    assert a == list(generate_docvqa(50, seed=3))
    assert a[:20] == list(generate_docvqa(20, seed=3))
    assert a != list(generate_docvqa(50, seed=4))
    assert len({s.id for s in a}) == 50
    many = list(itertools.islice(generate_docvqa(None, seed=3), 1500))
    assert many[:50] == a and len(many) == 1500


def test_train_and_test_splits_are_different_streams() -> None:
    train = {s.context for s in generate_docvqa(200, seed=0)}
    test = {s.context for s in generate_docvqa(200, seed=0, split="test")}
    assert not train & test
    assert next(generate_docvqa(1, seed=0, split="test")).id == "synthetic-docvqa-test-0-0"


def test_variety() -> None:
    samples = list(generate_docvqa(2000, seed=11))
    assert {s.subset for s in samples} == set(DOCUMENT_KINDS)
    assert len({(s.subset, s.meta["field"]) for s in samples}) >= 50
    templates = {re.sub(r"\d", "#", s.question) for s in samples}
    assert len(templates) >= 300
    assert len({s.context for s in samples}) == len(samples)


def test_kind_filter_and_bad_arguments() -> None:
    assert {s.subset for s in generate_docvqa(100, seed=1, kinds=["letter", "memo"])} == {"letter", "memo"}
    with pytest.raises(ValueError, match="unknown document kinds"):
        list(generate_docvqa(1, kinds=["novel"]))
    with pytest.raises(ValueError, match="n must be"):
        list(generate_docvqa(-1))


def test_save_and_load_samples_round_trip(tmp_path: Path) -> None:
    samples = list(generate_docvqa(25, seed=5)) + [
        DocQASample("q1", "Q?", ["a"], tags=("form", "layout"), image_size=(10, 20), meta={"x": 1})
    ]
    path = tmp_path / "train.jsonl"
    assert save_samples(path, samples) == 26
    assert load_samples(path) == samples
    path.write_text('{"id": "x"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1: not a sample record"):
        load_samples(path)
