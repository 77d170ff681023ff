"""Building blocks of synthetic documents: OCR-like lines plus extractive QA pairs."""

from __future__ import annotations

import random
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QA:
    """One question about a document.

    ``answers`` lists every accepted variant; each occurs verbatim (ignoring case) in the
    document text, so the task is extractive. ``field`` names what is asked (``"total"``,
    ``"due_date"``...), recorded in the sample's metadata.
    """

    question: str
    answers: list[str]
    field: str


@dataclass
class Document:
    """A synthetic document: its kind, rendered text lines and the questions it supports."""

    kind: str
    lines: list[str] = field(default_factory=list)
    qas: list[QA] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        """Append rendered lines (empty strings are dropped, as OCR would)."""
        self.lines.extend(line for line in lines if line)

    def ask(self, rng: random.Random, templates: Sequence[str], answers: Sequence[str], field: str, **fmt: str) -> None:
        """Register a question drawn from ``templates`` (formatted with ``fmt``)."""
        self.qas.append(QA(rng.choice(templates).format(**fmt), list(dict.fromkeys(answers)), field))

    @property
    def text(self) -> str:
        """The document as OCR-like text, one visual row per line."""
        return "\n".join(self.lines)


def labelled(rng: random.Random, labels: Sequence[str], value: str) -> str:
    """Render ``"<label> <value>"`` with one of the label spellings (``"Date:"``, ``"DATE"``...)."""
    return f"{rng.choice(labels)} {value}"


def wrap(text: str, width: int, keep: Sequence[str] = ()) -> list[str]:
    """Wrap running text into lines without breaking any phrase in ``keep``.

    Phrases in ``keep`` are answers; splitting them over two lines would make them
    non-contiguous in the context, so their spaces are protected during wrapping.
    """
    guard = "\x00"
    for phrase in sorted(keep, key=len, reverse=True):
        text = text.replace(phrase, phrase.replace(" ", guard))
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    return [line.replace(guard, " ") for line in lines]


def join_row(*cells: str) -> str:
    """Put several fields on one visual row, joined by one space like the OCR loader does."""
    return " ".join(c for c in cells if c)
