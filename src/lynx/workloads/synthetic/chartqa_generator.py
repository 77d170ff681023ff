"""Unbounded, seeded stream of ChartQA-style samples over synthetic chart tables.

Every question is answerable from the CSV context alone. The sample's ``meta`` records the
operation and the cells it reads (``{"op": ..., "cells": [[label, series], ...]}``, plus
``"threshold"`` for counts) so the answer can be recomputed independently from the table.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator, Sequence

from lynx.workloads.image_sizes import sample_image_size
from lynx.workloads.sample import DocQASample
from lynx.workloads.synthetic.chart_table import ChartTable, format_number, make_table

Question = tuple[str, str, dict]  # (question, answer, meta)


def _what(t: ChartTable, col: int, article: bool = True) -> str:
    """Phrase for a series in a question: the metric itself, or '(the) value of <series>'."""
    s = t.series[col]
    if len(t.series) > 1:
        return f"the value of {s}" if article else f"value of {s}"
    # Lower-case "Share of ..." but not acronyms such as "GDP growth rate".
    return s[0].lower() + s[1:] if s[1:2].islower() else s


def _plural(noun: str) -> str:
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2] not in "aeiou" else noun + "s"


def _cells(t: ChartTable, pairs: Sequence[tuple[int, int]]) -> list[list[str]]:
    return [[t.labels[i], t.series[j]] for i, j in pairs]


def retrieval(t: ChartTable, r: random.Random) -> Question:
    """Read one cell."""
    i, j = r.randrange(len(t.labels)), r.randrange(len(t.series))
    q = r.choice(("What is {w} in {l}?", "What was {w} for {l}?", "How much is {w} in {l}?")).format(
        w=_what(t, j), l=t.labels[i]
    )
    return q, t.cell(i, j), {"op": "value", "cells": _cells(t, [(i, j)])}


def extremum(t: ChartTable, r: random.Random) -> Question:
    """Highest/lowest value of a series, asked as the category or as the value."""
    j = r.randrange(len(t.series))
    column = [t.values[i][j] for i in range(len(t.labels))]
    high = r.random() < 0.5
    best = column.index(max(column) if high else min(column))
    cells = _cells(t, [(i, j) for i in range(len(t.labels))])
    word = "highest" if high else "lowest"
    if r.random() < 0.5:
        q = r.choice(("Which {n} has the {x} {v}?", "In which {n} is {w} the {x}?")).format(
            n=t.noun, x=word, w=_what(t, j), v=_what(t, j, article=False)
        )
        return q, t.labels[best], {"op": "argmax" if high else "argmin", "cells": cells}
    q = r.choice(("What is the {x} {v}?", "What is the {x} value of {s}?")).format(
        x=word, v=_what(t, j, article=False), s=t.series[j]
    )
    return q, t.cell(best, j), {"op": "max" if high else "min", "cells": cells}


def comparison(t: ChartTable, r: random.Random) -> Question:
    """Compare two cells: yes/no, or which category is larger."""
    if len(t.series) > 1 and r.random() < 0.4:
        i = r.randrange(len(t.labels))
        a, b = r.sample(range(len(t.series)), 2)
        q = f"In {t.labels[i]}, is {t.series[a]} greater than {t.series[b]}?"
        answer = "Yes" if t.values[i][a] > t.values[i][b] else "No"
        return q, answer, {"op": "greater", "cells": _cells(t, [(i, a), (i, b)])}
    j = r.randrange(len(t.series))
    a, b = r.sample(range(len(t.labels)), 2)
    if r.random() < 0.5:
        q = f"Is {_what(t, j)} in {t.labels[a]} greater than in {t.labels[b]}?"
        answer = "Yes" if t.values[a][j] > t.values[b][j] else "No"
        return q, answer, {"op": "greater", "cells": _cells(t, [(a, j), (b, j)])}
    q = f"Which {t.noun} has a higher {_what(t, j)}, {t.labels[a]} or {t.labels[b]}?"
    answer = t.labels[a] if t.values[a][j] > t.values[b][j] else t.labels[b]
    return q, answer, {"op": "argmax", "cells": _cells(t, [(a, j), (b, j)])}


def difference(t: ChartTable, r: random.Random) -> Question:
    """Absolute difference of two cells (same series, or same category)."""
    if len(t.series) > 1 and r.random() < 0.4:
        i = r.randrange(len(t.labels))
        a, b = r.sample(range(len(t.series)), 2)
        pairs = [(i, a), (i, b)]
        q = f"What is the difference between {t.series[a]} and {t.series[b]} in {t.labels[i]}?"
    else:
        j = r.randrange(len(t.series))
        a, b = r.sample(range(len(t.labels)), 2)
        pairs = [(a, j), (b, j)]
        q = r.choice(
            ("What is the difference in {w} between {a} and {b}?", "By how much does {w} differ between {a} and {b}?")
        ).format(w=_what(t, j), a=t.labels[a], b=t.labels[b])
    (x, y) = (t.values[i][j] for i, j in pairs)
    return q, format_number(abs(x - y), t.decimals), {"op": "difference", "cells": _cells(t, pairs)}


def total(t: ChartTable, r: random.Random) -> Question:
    """Sum of two cells or of a whole series."""
    j = r.randrange(len(t.series))
    if r.random() < 0.5:
        rows = r.sample(range(len(t.labels)), 2)
        q = f"What is the sum of {_what(t, j)} in {t.labels[rows[0]]} and {t.labels[rows[1]]}?"
    else:
        rows = list(range(len(t.labels)))
        q = r.choice(("What is the total {w} across all {n}?", "What is the sum of all values of {s}?")).format(
            w=_what(t, j, article=False), n=_plural(t.noun), s=t.series[j]
        )
    value = sum(t.values[i][j] for i in rows)
    return q, format_number(value, t.decimals), {"op": "sum", "cells": _cells(t, [(i, j) for i in rows])}


def average(t: ChartTable, r: random.Random) -> Question:
    """Mean of a series, to two decimals."""
    j = r.randrange(len(t.series))
    rows = range(len(t.labels))
    q = r.choice(("What is the average {w} across all {n}?", "What is the mean value of {s}?")).format(
        w=_what(t, j, article=False), n=_plural(t.noun), s=t.series[j]
    )
    value = sum(t.values[i][j] for i in rows) / len(t.labels)
    return q, format_number(value, 2), {"op": "average", "cells": _cells(t, [(i, j) for i in rows])}


def count(t: ChartTable, r: random.Random) -> Question:
    """How many categories exceed a threshold lying strictly between two cell values."""
    j = r.randrange(len(t.series))
    column = sorted(t.values[i][j] for i in range(len(t.labels)))
    k = r.randrange(len(column) - 1)
    threshold = float(format_number((column[k] + column[k + 1]) / 2, t.decimals + 1))
    q = f"How many {_plural(t.noun)} have {_what(t, j)} above {format_number(threshold, t.decimals + 1)}?"
    n = sum(v > threshold for v in column)
    meta = {"op": "count_above", "cells": _cells(t, [(i, j) for i in range(len(t.labels))]), "threshold": threshold}
    return q, str(n), meta


#: Question kinds (the samples' ``subset``) and their builders.
QUESTION_KINDS: dict[str, Callable[[ChartTable, random.Random], Question]] = {
    "retrieval": retrieval,
    "extremum": extremum,
    "comparison": comparison,
    "difference": difference,
    "sum": total,
    "average": average,
    "count": count,
}


def generate_chartqa(
    n: int | None = None, seed: int = 0, kinds: Sequence[str] | None = None, *, split: str = "train"
) -> Iterator[DocQASample]:
    """Yield ``n`` synthetic ChartQA-style samples (endlessly when ``n`` is ``None``).

    Context is the chart table as CSV; ``subset`` is the question kind; ``answers`` is one
    number or label formatted like ChartQA's labels; ``image_size`` is a chart size drawn
    as in :mod:`lynx.workloads.image_sizes`. Deterministic in ``seed``, ``kinds`` and
    ``split`` and prefix-stable; ``split`` works as in
    :func:`lynx.workloads.synthetic.generate_docvqa` (``"train"`` here, ``"test"`` for eval).
    """
    names = list(kinds) if kinds is not None else list(QUESTION_KINDS)
    unknown = [k for k in names if k not in QUESTION_KINDS]
    if unknown or not names:
        raise ValueError(f"unknown question kinds {unknown}; expected a subset of {sorted(QUESTION_KINDS)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    # The split is part of the stream's seed, so "train" and "test" data never coincide
    # whatever seeds the trainer and the evaluator pick.
    rng = random.Random(f"synthetic-chartqa-{split}-{seed}")
    for i in itertools.count() if n is None else range(n):
        table = make_table(rng)
        kind = rng.choice(names)
        question, answer, meta = QUESTION_KINDS[kind](table, rng)
        yield DocQASample(
            id=f"synthetic-chartqa-{split}-{seed}-{i}",
            question=question,
            answers=[answer],
            context=table.to_csv(),
            image=None,
            subset=kind,
            task="chartqa",
            image_size=sample_image_size("chartqa", rng),
            meta={"generator": "chartqa", "split": split, "seed": seed, "index": i, **meta},
        )
