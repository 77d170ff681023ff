"""Vision-token counts against the table in docs/models-and-workloads.md."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lynx.workloads import DeepSeekVL2, InternVL, QwenVL, get_frontend

QWEN25_MAX_1280 = {"max_pixels": 1280 * 28 * 28}

# (width, height) -> tokens, straight from the doc table.
TABLE = {
    ("qwen2.5-vl", ()): {(1700, 2200): 4819, (2550, 3300): 10738, (800, 600): 609},
    ("qwen2.5-vl", tuple(QWEN25_MAX_1280.items())): {(1700, 2200): 1240, (2550, 3300): 1240, (800, 600): 609},
    ("qwen3-vl", ()): {(1700, 2200): 3657, (2550, 3300): 8240, (800, 600): 475},
    ("internvl", ()): {(1700, 2200): 3328, (2550, 3300): 3328, (800, 600): 3328},
    ("internvl", (("max_tiles", 6),)): {(1700, 2200): 1792, (2550, 3300): 1792, (800, 600): 1792},
    ("deepseek-vl2", ()): {(1700, 2200): 2017, (2550, 3300): 2017, (800, 600): 1415},
    ("kimi-vl", ()): {(1700, 2200): 1073, (2550, 3300): 1073, (800, 600): 638},
}


@pytest.mark.parametrize(
    ("name", "options", "size", "tokens"),
    [(name, dict(opts), size, tokens) for (name, opts), rows in TABLE.items() for size, tokens in rows.items()],
)
def test_doc_table(name: str, options: dict, size: tuple[int, int], tokens: int) -> None:
    assert get_frontend(name, **options).image_tokens(*size) == tokens


def test_qwen_resize_details() -> None:
    qwen = QwenVL()
    assert qwen.resized(1700, 2200) == (1708, 2212)  # sides rounded to multiples of 28
    assert qwen.image_tokens(20, 20) == 4  # upscaled to min_pixels 56x56
    with pytest.raises(ValueError, match="aspect ratio"):
        qwen.image_tokens(10, 2500)


def test_internvl_grids() -> None:
    assert InternVL().grid(1700, 2200) == (3, 4)
    assert InternVL(max_tiles=6).grid(800, 600) == (3, 2)
    assert InternVL().image_tokens(448, 448) == 256  # one tile, no thumbnail
    # Tie between 1x1 and 2x2 (same aspect): more tiles only while the image is large enough.
    assert InternVL().grid(700, 700) == (2, 2)  # 490,000 > 0.5 * 448^2 * 4
    assert InternVL().grid(500, 500) == (1, 1)  # 250,000 is not


def test_deepseek_vl2_candidates_and_range() -> None:
    cands = DeepSeekVL2().candidates()
    assert len(cands) == 23 and cands[:4] == [(1, 1), (1, 2), (2, 1), (1, 3)] and cands[-1] == (3, 3)
    assert DeepSeekVL2().grid(800, 600) == (3, 2)
    assert DeepSeekVL2().image_tokens(300, 300) == 421
    assert DeepSeekVL2().image_tokens(6000, 6000) == 2017
    # A very tall image takes the 1x9 grid: one newline token per row makes it 2,101, more
    # than the 2,017 of the 3x3 grid usually quoted as the maximum.
    assert DeepSeekVL2().grid(400, 4000) == (1, 9)
    assert DeepSeekVL2().image_tokens(400, 4000) == 2101


@settings(max_examples=200, deadline=None)
@given(w=st.integers(184, 5367), h=st.integers(294, 7184))
def test_bounds_over_dataset_sizes(w: int, h: int) -> None:
    assert get_frontend("qwen2.5-vl").image_tokens(w, h) * 28 * 28 <= 12845056
    assert get_frontend("qwen2.5-vl", **QWEN25_MAX_1280).image_tokens(w, h) <= 1280
    assert get_frontend("qwen3-vl").image_tokens(w, h) * 32 * 32 <= 16777216
    internvl = get_frontend("internvl").image_tokens(w, h)
    assert internvl % 256 == 0 and 256 <= internvl <= 13 * 256
    assert 421 <= get_frontend("deepseek-vl2").image_tokens(w, h) <= 2101
    assert 1 <= get_frontend("kimi-vl").image_tokens(w, h) <= 1400


def test_get_frontend_errors() -> None:
    with pytest.raises(ValueError, match="unknown vision front-end"):
        get_frontend("llava")
    with pytest.raises(ValueError, match="no option"):
        get_frontend("kimi-vl", max_tiles=3)
    with pytest.raises(ValueError, match="positive"):
        get_frontend("kimi-vl").image_tokens(0, 10)
