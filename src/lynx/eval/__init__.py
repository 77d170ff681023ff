"""Accuracy evaluation of document QA: benchmark metrics and per-subset scoring."""

from lynx.eval.metrics import anls, exact_match, levenshtein, normalize_answer, relaxed_accuracy
from lynx.eval.scoring import Aggregate, aggregate, metric_name, score

__all__ = [
    "Aggregate",
    "aggregate",
    "anls",
    "exact_match",
    "levenshtein",
    "metric_name",
    "normalize_answer",
    "relaxed_accuracy",
    "score",
]
