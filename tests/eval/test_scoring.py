"""Task -> metric dispatch and per-subset aggregation."""

from __future__ import annotations

import pytest

from lynx.eval.scoring import aggregate, metric_name, score


def test_task_metrics() -> None:
    assert metric_name("docvqa") == "anls"
    assert metric_name("chartqa") == "relaxed_accuracy"
    assert score("docvqa", "12/15/89", ["12/15/88"]) == pytest.approx(0.875)
    assert score("chartqa", "12.5", ["12"]) == 1.0
    assert score("chartqa", "1,000", ["1000"]) == 0.0
    with pytest.raises(ValueError, match="unknown task"):
        score("vqav2", "a", ["a"])


def test_aggregate_overall_and_subsets() -> None:
    agg = aggregate([(("human",), 1.0), (("human",), 0.0), (("augmented",), 1.0), (("augmented",), 1.0)])
    assert agg.n == 4
    assert agg.overall == 0.75
    assert agg.subsets == {"augmented": {"score": 1.0, "n": 2}, "human": {"score": 0.5, "n": 2}}


def test_aggregate_counts_a_multi_tag_sample_in_each_tag_once() -> None:
    agg = aggregate([(("form", "table/list"), 0.5), (("form",), 1.0), (("form", "form"), 0.0)])
    assert agg.overall == pytest.approx(0.5)
    assert agg.subsets["form"] == {"score": 0.5, "n": 3}
    assert agg.subsets["table/list"] == {"score": 0.5, "n": 1}
    assert agg.to_dict()["n"] == 3


def test_aggregate_of_nothing() -> None:
    agg = aggregate([])
    assert (agg.overall, agg.n, agg.subsets) == (0.0, 0, {})
