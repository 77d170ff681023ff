"""Per-task scoring and per-subset aggregation of document-QA predictions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from lynx.eval.metrics import anls, relaxed_accuracy

#: Metric name and function of each task, as the benchmarks report them.
TASK_METRICS: dict[str, tuple[str, Callable[[str, Sequence[str]], float]]] = {
    "docvqa": ("anls", anls),
    "chartqa": ("relaxed_accuracy", relaxed_accuracy),
}


def metric_name(task: str) -> str:
    """Name of the headline metric of ``task`` (``"anls"`` or ``"relaxed_accuracy"``)."""
    return _entry(task)[0]


def score(task: str, prediction: str, answers: Sequence[str]) -> float:
    """Score one prediction with the task's metric (best over the gold answers)."""
    return _entry(task)[1](prediction, answers)


@dataclass(frozen=True)
class Aggregate:
    """Mean scores overall and per group.

    ``overall`` is the mean over samples (each counted once). ``subsets`` maps each group to
    ``{"score": mean, "n": count}``; a sample with several groups (DocVQA question types)
    counts in each, so subset counts can add up to more than ``n``. For ChartQA, whose two
    subsets are the same size in the official test split, the overall mean equals the
    average of the human and augmented accuracies that papers report.
    """

    overall: float
    n: int
    subsets: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable form."""
        return {"overall": self.overall, "n": self.n, "subsets": self.subsets}


def aggregate(records: Iterable[tuple[Sequence[str], float]]) -> Aggregate:
    """Aggregate ``(groups, score)`` pairs into overall and per-group means."""
    total, n = 0.0, 0
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for groups, value in records:
        total += value
        n += 1
        for group in dict.fromkeys(groups):  # a repeated group must not count twice
            sums[group] += value
            counts[group] += 1
    subsets = {g: {"score": sums[g] / counts[g], "n": counts[g]} for g in sorted(sums)}
    return Aggregate(overall=total / n if n else 0.0, n=n, subsets=subsets)


def _entry(task: str) -> tuple[str, Callable[[str, Sequence[str]], float]]:
    try:
        return TASK_METRICS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_METRICS)}") from None
