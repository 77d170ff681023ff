"""The one sample type shared by the DocVQA/ChartQA loaders and the synthetic generators."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lynx.workloads.dataset_io import DatasetError, read_text

#: Tasks a sample can belong to; the task decides the metric (ANLS vs relaxed accuracy).
TASKS = ("docvqa", "chartqa")


@dataclass
class DocQASample:
    """One document/chart question with its gold answers.

    Attributes:
        id: Unique id within the dataset (DocVQA ``questionId``; ChartQA ``<subset>-<index>``).
        question: The question text.
        answers: Every accepted gold answer (DocVQA has several; ChartQA one).
        context: Text standing in for the image: ordered OCR lines (DocVQA) or the
            chart's data table as CSV (ChartQA); ``None`` when not available.
        image: Path of the image as given by the dataset (relative paths are kept as is).
        subset: Reporting group: DocVQA question type (first listed) or ``"all"``;
            ChartQA ``"human"``/``"augmented"``; synthetic data the document or question kind.
        task: ``"docvqa"`` or ``"chartqa"``; selects the metric.
        tags: Every group the sample belongs to (all DocVQA question types). Aggregation
            counts a sample once in each tag, as the DocVQA per-type breakdown does.
        image_size: ``(width, height)`` in pixels when known (from the OCR page, or drawn
            for synthetic samples), used to model vision-token counts.
        meta: Free-form JSON-serialisable extras (source fields, generator provenance).
    """

    id: str
    question: str
    answers: list[str]
    context: str | None = None
    image: str | None = None
    subset: str = "all"
    task: str = "docvqa"
    tags: tuple[str, ...] = ()
    image_size: tuple[int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def groups(self) -> tuple[str, ...]:
        """Groups used for per-subset aggregation: the tags, else the subset."""
        return self.tags or (self.subset,)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (inverse of :meth:`from_dict`)."""
        d = asdict(self)
        d["tags"] = list(self.tags)
        d["image_size"] = list(self.image_size) if self.image_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocQASample:
        """Build a sample from :meth:`to_dict` output (unknown keys are an error)."""
        d = dict(d)
        d["tags"] = tuple(d.get("tags") or ())
        size = d.get("image_size")
        d["image_size"] = (int(size[0]), int(size[1])) if size else None
        return cls(**d)


def save_samples(path: str | Path, samples: Iterable[DocQASample]) -> int:
    """Write samples as JSON lines (e.g. to freeze synthetic training data); returns the count."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def load_samples(path: str | Path) -> list[DocQASample]:
    """Read samples written by :func:`save_samples`; bad lines raise :class:`DatasetError`."""
    samples = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            samples.append(DocQASample.from_dict(json.loads(line)))
        except (json.JSONDecodeError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(path, f"line {lineno}: not a sample record ({exc})") from None
    return samples
