"""DocVQA OCR files (Microsoft Read API format) -> reading-order text.

An OCR file looks like::

    {"status": "Succeeded", "recognitionResults": [{"page": 1, "clockwiseOrientation": 0.0,
      "width": 1700, "height": 2200, "unit": "pixel", "lines": [
        {"boundingBox": [x1, y1, x2, y2, x3, y3, x4, y4], "text": "...", "words": [...]}]}]}

The lines come in the OCR engine's order, which is not reliably the reading order, so we
re-order them:

1. Each line's box is reduced to its axis-aligned extent (top = min y, bottom = max y,
   left = min x) of the four corner points.
2. Lines are sorted by (top, left) and grouped greedily into visual rows: a line joins the
   current row when its vertical overlap with the row's first line is at least half the
   smaller of the two heights (so a tall cell next to a short one still shares the row,
   but two stacked lines touching by a pixel do not).
3. Within a row lines are ordered left to right and joined with a single space, so form
   fields read ``"Date: 12/03/1998"``; rows are joined with newlines and pages (in
   ``page`` order) with a blank line.

Only line-level text is used; word boxes and confidences are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lynx.workloads.dataset_io import DatasetError, read_json, require


@dataclass(frozen=True)
class OcrLine:
    """One OCR line reduced to its axis-aligned extent."""

    text: str
    top: float
    bottom: float
    left: float


@dataclass(frozen=True)
class OcrDocument:
    """Reading-order text of an OCR file and the first page's size in pixels (if given)."""

    text: str
    size: tuple[int, int] | None


def order_lines(lines: list[OcrLine], sep: str = " ") -> list[str]:
    """Group ``lines`` into visual rows (top to bottom, left to right); one string per row."""
    rows: list[list[OcrLine]] = []
    for line in sorted(lines, key=lambda ln: (ln.top, ln.left)):
        if rows:
            anchor = rows[-1][0]
            overlap = min(anchor.bottom, line.bottom) - max(anchor.top, line.top)
            min_height = min(anchor.bottom - anchor.top, line.bottom - line.top)
            # max(0, ...) keeps zero-height boxes from joining rows they do not touch.
            if overlap >= max(0.0, 0.5 * min_height):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [sep.join(ln.text for ln in sorted(row, key=lambda ln: ln.left)) for row in rows]


def load_ocr(path: str | Path) -> OcrDocument:
    """Parse one DocVQA OCR JSON file into reading-order text (see module docstring)."""
    data = read_json(path)
    results = require(data, "recognitionResults", list, path, "top level")
    pages: list[tuple[float, list[str]]] = []
    size: tuple[int, int] | None = None
    for i, page in enumerate(results):
        where = f"recognitionResults[{i}]"
        raw_lines = require(page, "lines", list, path, where)
        parsed = [_parse_line(line, path, f"{where}.lines[{j}]") for j, line in enumerate(raw_lines)]
        lines = [line for line in parsed if line.text]  # blank lines would leave double spaces
        number = page.get("page", i + 1)
        pages.append((number if isinstance(number, (int, float)) else i + 1, order_lines(lines)))
        if size is None:
            size = _page_size(page)
    # sorted() is stable, so pages without usable numbers keep file order.
    texts = ["\n".join(rows) for _, rows in sorted(pages, key=lambda p: p[0]) if rows]
    return OcrDocument(text="\n\n".join(texts), size=size)


def _parse_line(line: Any, path: str | Path, where: str) -> OcrLine:
    text = require(line, "text", str, path, where)
    box = require(line, "boundingBox", list, path, where)
    if len(box) != 8 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise DatasetError(path, f"{where}.boundingBox: expected 8 numbers, got {box!r}")
    xs, ys = box[0::2], box[1::2]
    return OcrLine(text=" ".join(text.split()), top=min(ys), bottom=max(ys), left=min(xs))


def _page_size(page: dict[str, Any]) -> tuple[int, int] | None:
    w, h = page.get("width"), page.get("height")
    # Some OCR engines report inches; only pixel sizes are meaningful for vision tokens.
    if page.get("unit", "pixel") != "pixel" or not isinstance(w, (int, float)) or not isinstance(h, (int, float)):
        return None
    if w <= 0 or h <= 0:
        return None
    return int(round(w)), int(round(h))
