"""Seeded page/chart image sizes for modelling vision-token counts.

The distributions below are modelled on the ranges documented for the datasets (see
docs/models-and-workloads.md); they are *not* fitted to the datasets' real size
histograms, which we cannot download. Pass real sizes (e.g. ``DocQASample.image_size`` from
the OCR files) to :func:`lynx.workloads.make_docqa_workload` when you have them.

DocVQA (pages of scanned industry documents, ~593x294 to ~5367x7184 px, width x height):
    * 75% portrait pages: aspect w/h uniform in [0.70, 0.80] (letter 0.77, A4 0.71), long
      side log-uniform in [1000, 3400] px (about 100 to 300 dpi letter scans);
    * 12% landscape pages: aspect uniform in [1.25, 1.45], long side log-uniform in [900, 3400];
    * 8% cropped/partial pages: width uniform in [593, 1800], aspect h/w uniform in [0.3, 1.0];
    * 5% high-resolution scans: portrait aspect, long side uniform in [3400, 7184].
ChartQA (Statista, Pew, OWID, OECD charts; ~184x326 to ~800x1796 px):
    * 65% Statista-style: width 800, height uniform in [400, 700];
    * 25% narrow Pew-style: width uniform in [184, 420], height uniform in [326, 900];
    * 10% tall charts: width uniform in [300, 800], height uniform in [900, 1796].
Every size is clipped to the documented range of its dataset.
"""

from __future__ import annotations

import math
import random

#: (min width, min height, max width, max height) of each dataset, width x height in pixels.
SIZE_BOUNDS = {"docvqa": (593, 294, 5367, 7184), "chartqa": (184, 326, 800, 1796)}


def sample_image_size(task: str, rng: random.Random) -> tuple[int, int]:
    """Draw one ``(width, height)`` for ``task`` (``"docvqa"`` or ``"chartqa"``)."""
    if task == "docvqa":
        w, h = _docvqa_page(rng)
    elif task == "chartqa":
        w, h = _chartqa_chart(rng)
    else:
        raise ValueError(f"unknown task {task!r}; expected 'docvqa' or 'chartqa'")
    min_w, min_h, max_w, max_h = SIZE_BOUNDS[task]
    return min(max(round(w), min_w), max_w), min(max(round(h), min_h), max_h)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _docvqa_page(rng: random.Random) -> tuple[float, float]:
    u = rng.random()
    if u < 0.75:  # portrait page: long side is the height
        h = _log_uniform(rng, 1000, 3400)
        return h * rng.uniform(0.70, 0.80), h
    if u < 0.87:  # landscape page: long side is the width
        w = _log_uniform(rng, 900, 3400)
        return w, w / rng.uniform(1.25, 1.45)
    if u < 0.95:  # cropped snippet
        w = rng.uniform(593, 1800)
        return w, w * rng.uniform(0.3, 1.0)
    h = rng.uniform(3400, 7184)  # high-resolution scan
    return h * rng.uniform(0.70, 0.80), h


def _chartqa_chart(rng: random.Random) -> tuple[float, float]:
    u = rng.random()
    if u < 0.65:
        return 800, rng.uniform(400, 700)
    if u < 0.90:
        return rng.uniform(184, 420), rng.uniform(326, 900)
    return rng.uniform(300, 800), rng.uniform(900, 1796)
