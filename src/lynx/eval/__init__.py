"""Accuracy evaluation of document QA: benchmark metrics, scoring and the ``lynx eval`` runner."""

from lynx.eval.metrics import anls, exact_match, levenshtein, normalize_answer, relaxed_accuracy
from lynx.eval.prompts import INSTRUCTION, build_prompt, postprocess
from lynx.eval.scoring import Aggregate, aggregate, metric_name, score

__all__ = [
    "INSTRUCTION",
    "Aggregate",
    "aggregate",
    "anls",
    "build_prompt",
    "exact_match",
    "levenshtein",
    "metric_name",
    "normalize_answer",
    "postprocess",
    "relaxed_accuracy",
    "score",
]
