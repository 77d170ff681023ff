"""Synthetic ChartQA-style tables: every answer recomputed independently from the CSV."""

from __future__ import annotations

import csv
import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynx.eval.metrics import relaxed_accuracy
from lynx.workloads import generate_chartqa
from lynx.workloads.image_sizes import SIZE_BOUNDS
from lynx.workloads.synthetic import QUESTION_KINDS
from lynx.workloads.synthetic.chart_table import format_number


def parse(context: str) -> dict[tuple[str, str], float]:
    """CSV context -> {(label, series): value}, read only from the text the model sees."""
    header, *rows = list(csv.reader(io.StringIO(context)))
    return {(row[0], col): float(cell) for row in rows for col, cell in zip(header[1:], row[1:])}


def expected(meta: dict, table: dict[tuple[str, str], float]) -> str | float:
    values = [table[tuple(cell)] for cell in meta["cells"]]
    labels = [cell[0] for cell in meta["cells"]]
    op = meta["op"]
    if op in ("value", "max", "min"):
        return {"value": values[0], "max": max(values), "min": min(values)}[op]
    if op in ("argmax", "argmin"):
        pick = max(values) if op == "argmax" else min(values)
        return labels[values.index(pick)]
    if op == "greater":
        return "Yes" if values[0] > values[1] else "No"
    if op == "difference":
        return abs(values[0] - values[1])
    if op == "sum":
        return sum(values)
    if op == "average":
        return sum(values) / len(values)
    if op == "count_above":
        return float(sum(v > meta["threshold"] for v in values))
    raise AssertionError(f"unexpected op {op}")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**63), n=st.integers(1, 15))
def test_answers_are_computable_from_the_csv_context(seed: int, n: int) -> None:
    for s in generate_chartqa(n, seed):
        table = parse(s.context)
        values = list(table.values())
        assert len(set(values)) == len(values)  # distinct cells: no ambiguous extremum
        (answer,) = s.answers
        truth = expected(s.meta, table)
        if isinstance(truth, str):
            assert answer == truth
        else:
            # Rounded to at most 2 decimals, so well within ChartQA's 5 % tolerance.
            assert abs(float(answer) - truth) <= 0.005 + 1e-9, (s.question, answer, truth)
            assert relaxed_accuracy(answer, format_number(truth, 6)) == 1.0
        assert s.subset in QUESTION_KINDS and s.task == "chartqa"
        min_w, min_h, max_w, max_h = SIZE_BOUNDS["chartqa"]
        assert s.image_size and min_w <= s.image_size[0] <= max_w and min_h <= s.image_size[1] <= max_h


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**63))
def test_questions_name_the_cells_they_read(seed: int) -> None:
    for s in generate_chartqa(10, seed):
        if s.meta["op"] in ("value", "greater", "difference") or (
            s.meta["op"] in ("sum", "argmax") and len(s.meta["cells"]) == 2
        ):
            for label, _ in s.meta["cells"]:
                assert label in s.question


def test_all_question_kinds_and_answer_types_occur() -> None:
    samples = list(generate_chartqa(1500, seed=2))
    assert {s.subset for s in samples} == set(QUESTION_KINDS)
    answers = [s.answers[0] for s in samples]
    numeric = [a for a in answers if a.replace(".", "", 1).isdigit()]
    assert {"Yes", "No"} <= set(answers)
    assert 0.4 * len(answers) < len(numeric) < 0.95 * len(answers)  # numbers and labels both common
    assert len({s.context.split("\n", 1)[0] for s in samples}) >= 20  # many different headers


def test_deterministic_prefix_stable_unbounded_and_split() -> None:
    a = list(generate_chartqa(40, seed=9))
    assert a == list(generate_chartqa(40, seed=9))
    assert a[:10] == list(generate_chartqa(10, seed=9))
    assert list(itertools.islice(generate_chartqa(None, seed=9), 40)) == a
    assert {s.context for s in a}.isdisjoint(s.context for s in generate_chartqa(40, seed=9, split="test"))


def test_kind_filter_and_bad_arguments() -> None:
    assert {s.subset for s in generate_chartqa(50, seed=1, kinds=["sum"])} == {"sum"}
    with pytest.raises(ValueError, match="unknown question kinds"):
        list(generate_chartqa(1, kinds=["ratio"]))


@pytest.mark.parametrize(
    ("value", "decimals", "text"), [(12.5, 2, "12.5"), (12.0, 1, "12"), (0.004, 2, "0"), (1234.567, 0, "1235")]
)
def test_format_number(value: float, decimals: int, text: str) -> None:
    assert format_number(value, decimals) == text
