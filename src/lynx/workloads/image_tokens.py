"""Vision-token counts of common VLM front-ends for an image of a given size.

Each front-end reproduces its reference preprocessor's resize/tiling arithmetic (no pixels
are touched), so prompt lengths of document-QA requests can be modelled without images:

* Qwen2.5-VL: ``smart_resize`` to multiples of 28 px (14-px patches, 2x2 merge) within
  ``[min_pixels, max_pixels]`` (defaults 3,136 and 12,845,056); one token per 28x28 px.
* Qwen3-VL: the same with 16-px patches, i.e. 32-px factor, pixels in [65,536, 16,777,216].
* InternVL (``dynamic_preprocess``): the grid of 448-px tiles (1..``max_tiles``) whose
  aspect ratio is closest to the image's (ties: more tiles while the image area exceeds
  half the grid's), plus a thumbnail tile when the grid has more than one; 256 tokens each.
* DeepSeek-VL2: best-fit 384-px tile grid of at most 9 tiles (LLaVA-style
  ``select_best_resolution``), 14x14 tokens per tile after 2x2 merging, with one newline
  token per row, plus a 14x15 global view and a separator: 421 to 2,017 tokens (3x3 grid);
  only very tall images (1x9 grid, aspect ratio beyond about 1:6) reach 2,101.
* Kimi-VL (MoonViT): native resolution with 14-px patches; images over 4,096 patches are
  scaled down to fit, then padded to multiples of 28 px; 2x2 merge -> one token per 28x28 px.

Sizes are ``(width, height)`` in pixels throughout.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol


class VisionFrontend(Protocol):
    """Anything that maps an image size to a number of LLM input tokens."""

    name: str

    def image_tokens(self, width: int, height: int) -> int:
        """Tokens the image occupies in the language model's prompt."""
        ...


@dataclass(frozen=True)
class QwenVL:
    """Qwen2-VL/2.5-VL/3-VL: one token per ``factor`` x ``factor`` pixels after smart resize."""

    name: str = "qwen2.5-vl"
    factor: int = 28
    min_pixels: int = 56 * 56
    max_pixels: int = 28 * 28 * 16384

    def resized(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the processor resizes to (transformers' ``smart_resize``)."""
        _check_size(width, height)
        if max(width, height) / min(width, height) > 200:
            raise ValueError(f"aspect ratio of {width}x{height} exceeds 200, which Qwen-VL rejects")
        f = self.factor
        h, w = round(height / f) * f, round(width / f) * f
        if h * w > self.max_pixels:
            beta = math.sqrt(height * width / self.max_pixels)
            h, w = max(f, math.floor(height / beta / f) * f), max(f, math.floor(width / beta / f) * f)
        elif h * w < self.min_pixels:
            beta = math.sqrt(self.min_pixels / (height * width))
            h, w = math.ceil(height * beta / f) * f, math.ceil(width * beta / f) * f
        return w, h

    def image_tokens(self, width: int, height: int) -> int:
        w, h = self.resized(width, height)
        return (w // self.factor) * (h // self.factor)


@dataclass(frozen=True)
class InternVL:
    """InternVL dynamic tiling: 448-px tiles chosen by aspect ratio, plus a thumbnail."""

    name: str = "internvl"
    tile: int = 448
    tokens_per_tile: int = 256
    min_tiles: int = 1
    max_tiles: int = 12
    thumbnail: bool = True

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """The chosen (columns, rows) of tiles."""
        _check_size(width, height)
        ratios = sorted(
            {
                (i, j)
                for n in range(self.min_tiles, self.max_tiles + 1)
                for i in range(1, n + 1)
                for j in range(1, n + 1)
                if self.min_tiles <= i * j <= self.max_tiles
            },
            key=lambda g: g[0] * g[1],  # same-product grids have different ratios, so set order never matters
        )
        aspect, area = width / height, width * height
        best, best_diff = (1, 1), float("inf")
        for grid in ratios:
            diff = abs(aspect - grid[0] / grid[1])
            if diff < best_diff:
                best, best_diff = grid, diff
            elif diff == best_diff and area > 0.5 * self.tile * self.tile * grid[0] * grid[1]:
                best = grid
        return best

    def image_tokens(self, width: int, height: int) -> int:
        cols, rows = self.grid(width, height)
        tiles = cols * rows + (1 if self.thumbnail and cols * rows != 1 else 0)
        return tiles * self.tokens_per_tile


@dataclass(frozen=True)
class DeepSeekVL2:
    """DeepSeek-VL2 dynamic tiling: best-fit grid of 384-px tiles plus a global view."""

    name: str = "deepseek-vl2"
    tile: int = 384
    patch: int = 14
    downsample: int = 2
    max_tiles: int = 9

    def candidates(self) -> list[tuple[int, int]]:
        """Tile grids (columns, rows) in the order of the model config's ``candidate_resolutions``."""
        out = []
        for n in range(1, self.max_tiles + 1):
            for a in range(1, math.isqrt(n) + 1):
                if n % a == 0:
                    out += [(a, n // a)] if a == n // a else [(a, n // a), (n // a, a)]
        return out

    def grid(self, width: int, height: int) -> tuple[int, int]:
        """The chosen (columns, rows): most effective resolution, then least waste."""
        _check_size(width, height)
        best, best_eff, best_waste = (1, 1), 0, float("inf")
        for cols, rows in self.candidates():
            w, h = cols * self.tile, rows * self.tile
            scale = min(w / width, h / height)
            eff = min(int(width * scale) * int(height * scale), width * height)
            waste = w * h - eff
            if eff > best_eff or (eff == best_eff and waste < best_waste):
                best, best_eff, best_waste = (cols, rows), eff, waste
        return best

    def image_tokens(self, width: int, height: int) -> int:
        cols, rows = self.grid(width, height)
        side = math.ceil((self.tile // self.patch) / self.downsample)  # 14 tokens per tile side
        global_view = side * (side + 1) + 1  # newline token per row, then a view separator
        return global_view + (rows * side) * (cols * side + 1)


@dataclass(frozen=True)
class KimiVL:
    """Kimi-VL MoonViT: native resolution, 14-px patches, 2x2 merge, 4,096-patch input cap."""

    name: str = "kimi-vl"
    patch: int = 14
    merge: int = 2
    in_token_limit: int = 4096

    def image_tokens(self, width: int, height: int) -> int:
        _check_size(width, height)
        p, unit = self.patch, self.patch * self.merge
        patches = (width // p) * (height // p)
        if patches > self.in_token_limit:
            scale = math.sqrt(self.in_token_limit / patches)
            width, height = int(width * scale), int(height * scale)
        return math.ceil(width / unit) * math.ceil(height / unit)  # padded to whole merge windows


#: Built-in front-ends with their default settings.
FRONTENDS: dict[str, VisionFrontend] = {
    "qwen2.5-vl": QwenVL(),
    "qwen3-vl": QwenVL(name="qwen3-vl", factor=32, min_pixels=65536, max_pixels=16777216),
    "internvl": InternVL(),
    "deepseek-vl2": DeepSeekVL2(),
    "kimi-vl": KimiVL(),
}


def get_frontend(name: str, **options: int | bool) -> VisionFrontend:
    """Return a built-in front-end, with settings overridden by ``options``.

    Example: ``get_frontend("qwen2.5-vl", max_pixels=1280 * 28 * 28)`` or
    ``get_frontend("internvl", max_tiles=6)``.
    """
    try:
        base = FRONTENDS[name]
    except KeyError:
        raise ValueError(f"unknown vision front-end {name!r}; expected one of {sorted(FRONTENDS)}") from None
    fields = {f.name for f in dataclasses.fields(base)} - {"name"}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ValueError(f"front-end {name!r} has no option(s) {unknown}; options are {sorted(fields)}")
    return dataclasses.replace(base, **options)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
