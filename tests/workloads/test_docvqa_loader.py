"""DocVQA loader and OCR reading order, on files written in the official formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lynx.errors import LynxError
from lynx.workloads import DatasetError, load_docvqa
from lynx.workloads.ocr_layout import OcrLine, load_ocr, order_lines


def box(left: float, top: float, right: float, bottom: float) -> list[float]:
    """An axis-aligned boundingBox in the OCR's 8-number clockwise format."""
    return [left, top, right, top, right, bottom, left, bottom]


def ocr_json(pages: list[list[tuple[str, list[float]]]], width: int = 1700, height: int = 2200) -> dict[str, Any]:
    return {
        "status": "Succeeded",
        "recognitionResults": [
            {
                "page": i + 1,
                "clockwiseOrientation": 0.0,
                "width": width,
                "height": height,
                "unit": "pixel",
                "lines": [
                    {
                        "boundingBox": b,
                        "text": t,
                        "words": [{"boundingBox": b, "text": w, "confidence": "Low"} for w in t.split()],
                    }
                    for t, b in lines
                ],
            }
            for i, lines in enumerate(pages)
        ],
    }


def record(qid: int, question: str, image: str, answers: list[str], types: list[str] | None = None) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "questionId": qid,
        "question": question,
        "image": image,
        "docId": 100 + qid,
        "ucsf_document_id": "pybv0228",
        "ucsf_document_page_no": "81",
        "answers": answers,
    }
    if types is not None:
        rec["question_types"] = types
    return rec


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture()
def docvqa(tmp_path: Path) -> tuple[Path, Path]:
    """An annotation file with question types and an OCR directory for its two pages."""
    ann = write(
        tmp_path / "val_v1.0_withQT.json",
        {
            "dataset_name": "docvqa",
            "dataset_split": "val",
            "dataset_version": "1.0",
            "data": [
                record(
                    49153,
                    "What is the invoice date?",
                    "documents/abc_1.png",
                    ["12/03/1998", "12-03-1998"],
                    ["form", "layout"],
                ),
                record(49154, "Who is it to?", "documents/abc_1.png", ["John Smith"], ["form"]),
                record(57349, "What is the total?", "documents/xyz_2.png", ["$1,250.00"], ["table/list"]),
            ],
        },
    )
    ocr = tmp_path / "ocr"
    # Lines deliberately listed out of reading order.
    write(
        ocr / "abc_1.json",
        ocr_json(
            [
                [
                    ("12/03/1998", box(400, 204, 600, 236)),  # same row as "Date:", slightly lower
                    ("To: John Smith", box(100, 300, 500, 330)),
                    ("Date:", box(100, 200, 180, 230)),
                    ("ACME CORPORATION", box(100, 50, 900, 100)),
                ]
            ]
        ),
    )
    write(
        ocr / "xyz_2.json",
        ocr_json(
            [
                [("Page two text", box(10, 10, 300, 40))],
                [("Total $1,250.00", box(10, 500, 300, 530)), ("Summary", box(10, 10, 300, 40))],
            ],
            width=2550,
            height=3300,
        ),
    )
    return ann, ocr


def test_fields_subsets_and_ocr_context(docvqa: tuple[Path, Path]) -> None:
    ann, ocr = docvqa
    samples = load_docvqa(ann, ocr)
    assert [s.id for s in samples] == ["49153", "49154", "57349"]
    first = samples[0]
    assert first.question == "What is the invoice date?"
    assert first.answers == ["12/03/1998", "12-03-1998"]
    assert first.image == "documents/abc_1.png"
    assert first.subset == "form" and first.tags == ("form", "layout") and first.groups() == ("form", "layout")
    assert first.task == "docvqa"
    assert first.context == "ACME CORPORATION\nDate: 12/03/1998\nTo: John Smith"
    assert first.image_size == (1700, 2200)
    assert first.meta["docId"] == 49253
    # Pages in page order, lines top to bottom within each page, blank line between pages.
    assert samples[2].context == "Page two text\n\nSummary\nTotal $1,250.00"
    assert samples[2].image_size == (2550, 3300)


def test_without_ocr_dir_and_without_question_types(tmp_path: Path) -> None:
    ann = write(tmp_path / "val_v1.0.json", {"data": [record(1, "Q?", "documents/p.png", ["a"])]})
    (sample,) = load_docvqa(ann)
    assert sample.context is None and sample.image_size is None
    assert sample.subset == "all" and sample.tags == () and sample.groups() == ("all",)


def test_order_lines_groups_rows_by_vertical_overlap() -> None:
    lines = [
        OcrLine("right", top=100, bottom=140, left=500),
        OcrLine("left", top=110, bottom=150, left=100),  # overlaps 30/40 -> same row
        OcrLine("below", top=138, bottom=178, left=100),  # overlaps the anchor by 2 px -> next row
        OcrLine("tall cell", top=300, bottom=400, left=600),
        OcrLine("short", top=340, bottom=360, left=50),  # inside the tall cell's span
    ]
    assert order_lines(lines) == ["left right", "below", "short tall cell"]


def test_ocr_blank_lines_and_whitespace_are_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.json",
        ocr_json([[("  a   b ", box(0, 0, 10, 10)), ("", box(20, 0, 30, 10)), ("c", box(40, 0, 50, 10))]]),
    )
    assert load_ocr(path).text == "a b c"


def test_ocr_non_pixel_unit_gives_no_size(tmp_path: Path) -> None:
    doc = ocr_json([[("x", box(0, 0, 1, 1))]])
    doc["recognitionResults"][0]["unit"] = "inch"
    assert load_ocr(write(tmp_path / "p.json", doc)).size is None


def _error(call: Any) -> str:
    with pytest.raises(DatasetError) as info:
        call()
    assert isinstance(info.value, LynxError)
    return str(info.value)


def test_missing_and_invalid_annotation_files(tmp_path: Path) -> None:
    msg = _error(lambda: load_docvqa(tmp_path / "nope.json"))
    assert "nope.json" in msg and "not found" in msg
    bad = write(tmp_path / "bad.json", '{"data": [')
    msg = _error(lambda: load_docvqa(bad))
    assert "bad.json" in msg and "invalid JSON at line 1" in msg
    nodata = write(tmp_path / "nodata.json", {"questions": []})
    msg = _error(lambda: load_docvqa(nodata))
    assert "nodata.json" in msg and "'data'" in msg


@pytest.mark.parametrize(
    ("rec", "fragment"),
    [
        ({"questionId": 1, "image": "d/p.png", "answers": ["a"]}, "data[1]: missing required field 'question'"),
        (
            {"questionId": 1, "question": 5, "image": "d/p.png", "answers": ["a"]},
            "data[1].question: expected str, got int",
        ),
        (
            {"questionId": 1, "question": "Q", "image": "d/p.png"},
            "missing required field 'answers' (test-split answers are withheld)",
        ),
        (
            {"questionId": 1, "question": "Q", "image": "d/p.png", "answers": []},
            "data[1].answers: expected a non-empty list",
        ),
        (
            {"questionId": True, "question": "Q", "image": "d/p.png", "answers": ["a"]},
            "data[1].questionId: expected int or str, got bool",
        ),
        (
            {"questionId": 1, "question": "Q", "image": "d/p.png", "answers": ["a"], "question_types": "form"},
            "question_types",
        ),
        ("not a record", "data[1]: expected an object, got str"),
    ],
)
def test_malformed_records_name_file_record_and_problem(tmp_path: Path, rec: Any, fragment: str) -> None:
    ann = write(tmp_path / "val.json", {"data": [record(0, "ok?", "d/p.png", ["a"]), rec]})
    msg = _error(lambda: load_docvqa(ann))
    assert msg.startswith(str(ann)) and fragment in msg


def test_missing_ocr_dir_and_file(docvqa: tuple[Path, Path], tmp_path: Path) -> None:
    ann, ocr = docvqa
    msg = _error(lambda: load_docvqa(ann, tmp_path / "no_ocr"))
    assert "no_ocr" in msg and "OCR directory not found" in msg
    (ocr / "xyz_2.json").unlink()
    msg = _error(lambda: load_docvqa(ann, ocr))
    assert "xyz_2.json" in msg and "file not found" in msg


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"status": "Succeeded"}, "top level: missing required field 'recognitionResults'"),
        ({"recognitionResults": [{"page": 1}]}, "recognitionResults[0]: missing required field 'lines'"),
        (
            {"recognitionResults": [{"lines": [{"boundingBox": [1, 2, 3], "text": "x"}]}]},
            "recognitionResults[0].lines[0].boundingBox: expected 8 numbers",
        ),
        (
            {"recognitionResults": [{"lines": [{"boundingBox": box(0, 0, 1, 1)}]}]},
            "lines[0]: missing required field 'text'",
        ),
        ("{not json", "invalid JSON"),
    ],
)
def test_malformed_ocr_names_file_and_problem(docvqa: tuple[Path, Path], content: Any, fragment: str) -> None:
    ann, ocr = docvqa
    write(ocr / "abc_1.json", content)
    msg = _error(lambda: load_docvqa(ann, ocr))
    assert "abc_1.json" in msg and fragment in msg
