"""Loader for ChartQA split directories, with the chart data tables as text context.

Layout of one split of the official release (``ChartQA Dataset/test`` etc.)::

    test/
      test_human.json        [{"imgname": "41699051005347.png", "query": "...", "label": "..."}, ...]
      test_augmented.json
      png/41699051005347.png
      tables/41699051005347.csv

Both question files are optional individually, but at least one must exist. If the split
has no ``tables/`` directory the samples have no context (image-only evaluation); if it
has one, every chart's table must be present.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lynx.workloads.dataset_io import DatasetError, read_json, read_text, require
from lynx.workloads.sample import DocQASample

SUBSETS = ("human", "augmented")


def load_chartqa(split_dir: str | Path) -> list[DocQASample]:
    """Load the human and augmented questions of one ChartQA split directory.

    The split name is the directory name (``test`` -> ``test_human.json``); if those files
    are absent a single ``*_human.json`` / ``*_augmented.json`` is accepted. Sample ids are
    ``<subset>-<index in file>``, ``subset`` is ``"human"`` or ``"augmented"``, ``answers``
    is ``[label]`` and ``context`` the chart's CSV table.

    Raises:
        DatasetError: Missing directory/files or malformed records; the message names the
            file and the problem.
    """
    root = Path(split_dir)
    if not root.is_dir():
        raise DatasetError(root, "ChartQA split directory not found")
    tables = root / "tables"
    table_cache: dict[str, str] = {}
    samples: list[DocQASample] = []
    found = False
    for subset in SUBSETS:
        path = _question_file(root, subset)
        if path is None:
            continue
        found = True
        records = read_json(path)
        if not isinstance(records, list):
            raise DatasetError(path, f"expected a JSON list of questions, got {type(records).__name__}")
        for i, rec in enumerate(records):
            where = f"[{i}]"
            imgname = require(rec, "imgname", str, path, where)
            query = require(rec, "query", str, path, where)
            label = require(rec, "label", (str, int, float), path, where)
            context = None
            if tables.is_dir():
                stem = Path(imgname).stem
                if stem not in table_cache:
                    table_cache[stem] = read_table(tables / f"{stem}.csv")
                context = table_cache[stem]
            samples.append(
                DocQASample(
                    id=f"{subset}-{i}",
                    question=query,
                    # Numeric labels are rare but exist in derived copies; keep their JSON text.
                    answers=[label if isinstance(label, str) else str(label)],
                    context=context,
                    image=str(Path("png") / imgname),
                    subset=subset,
                    task="chartqa",
                    meta={"imgname": imgname},
                )
            )
    if not found:
        raise DatasetError(root, f"no ChartQA question files (*_human.json / *_augmented.json) in {root}")
    return samples


def read_table(path: Path) -> str:
    """Return a chart's CSV table as context text: rows re-joined with ``,``-separated cells.

    The CSV is parsed (so quoting is validated) and written back with minimal quoting and
    ``\\n`` line ends; the text is otherwise the file's content.
    """
    text = read_text(path)
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise DatasetError(path, f"malformed CSV: {exc}") from None
    if not rows:
        raise DatasetError(path, "empty table")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().rstrip("\n")


def _question_file(root: Path, subset: str) -> Path | None:
    exact = root / f"{root.name}_{subset}.json"
    if exact.is_file():
        return exact
    matches = sorted(root.glob(f"*_{subset}.json"))
    if len(matches) > 1:
        raise DatasetError(root, f"several *_{subset}.json files: {', '.join(m.name for m in matches)}")
    return matches[0] if matches else None
