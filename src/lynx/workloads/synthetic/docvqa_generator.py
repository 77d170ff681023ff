"""Unbounded, seeded stream of DocVQA-style samples built from synthetic documents."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence

from lynx.workloads.image_sizes import sample_image_size
from lynx.workloads.sample import DocQASample
from lynx.workloads.synthetic.commerce import invoice, receipt
from lynx.workloads.synthetic.correspondence import letter, memo
from lynx.workloads.synthetic.document import Document
from lynx.workloads.synthetic.records import form, table
from lynx.workloads.synthetic.values import Values

#: Document kinds (the samples' ``subset``) and their builders.
DOCUMENT_KINDS: dict[str, Callable[[Values], Document]] = {
    "invoice": invoice,
    "receipt": receipt,
    "letter": letter,
    "memo": memo,
    "form": form,
    "table": table,
}


def generate_docvqa(
    n: int | None = None, seed: int = 0, kinds: Sequence[str] | None = None, *, split: str = "train"
) -> Iterator[DocQASample]:
    """Yield ``n`` synthetic DocVQA-style samples (endlessly when ``n`` is ``None``).

    Each sample is a fresh document of a random kind rendered as OCR-like lines (the
    context) and one extractive question about it; ``answers`` holds every accepted
    variant and each occurs in the context (case-insensitively). ``subset`` is the document
    kind, ``meta["field"]`` the asked field, ``image_size`` a page size drawn as in
    :mod:`lynx.workloads.image_sizes`. The stream depends only on ``seed``, ``kinds`` and
    ``split``, and ``generate_docvqa(m, s)`` is a prefix of ``generate_docvqa(n, s)`` for
    ``m < n``. Use ``split="train"`` (default) for training data; ``lynx eval --synthetic``
    uses ``split="test"``, a disjoint stream for every seed.
    """
    names = list(kinds) if kinds is not None else list(DOCUMENT_KINDS)
    unknown = [k for k in names if k not in DOCUMENT_KINDS]
    if unknown or not names:
        raise ValueError(f"unknown document kinds {unknown}; expected a subset of {sorted(DOCUMENT_KINDS)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    # The split is part of the stream's seed, so "train" and "test" data never coincide
    # whatever seeds the trainer and the evaluator pick.
    rng = random.Random(f"synthetic-docvqa-{split}-{seed}")
    values = Values(rng)
    for i in itertools.count() if n is None else range(n):
        kind = rng.choice(names)
        doc = DOCUMENT_KINDS[kind](values)
        qa = rng.choice(doc.qas)
        yield DocQASample(
            id=f"synthetic-docvqa-{split}-{seed}-{i}",
            question=qa.question,
            answers=list(qa.answers),
            context=doc.text,
            image=None,
            subset=kind,
            task="docvqa",
            image_size=sample_image_size("docvqa", rng),
            meta={"generator": "docvqa", "split": split, "seed": seed, "index": i, "field": qa.field},
        )
