"""ChartQA loader on a split directory written in the official layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lynx.workloads import DatasetError, load_chartqa


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj), encoding="utf-8")
    return path


@pytest.fixture()
def split(tmp_path: Path) -> Path:
    root = tmp_path / "test"
    write(
        root / "test_human.json",
        [
            {"imgname": "41699051005347.png", "query": "What is the value in 2019?", "label": "12.5"},
            {"imgname": "multi_col_1.png", "query": "Which country is the highest?", "label": "Japan"},
        ],
    )
    write(root / "test_augmented.json", [{"imgname": "41699051005347.png", "query": "What is the sum?", "label": 30}])
    write(root / "tables" / "41699051005347.csv", "Characteristic,Share of respondents\r\n2019,12.5\r\n2020,17.5\r\n")
    write(root / "tables" / "multi_col_1.csv", 'Country,"Value, in %"\nJapan,40\nItaly,3\n\n')
    return root


def test_samples_subsets_and_table_context(split: Path) -> None:
    samples = load_chartqa(split)
    assert [(s.id, s.subset) for s in samples] == [
        ("human-0", "human"),
        ("human-1", "human"),
        ("augmented-0", "augmented"),
    ]
    first = samples[0]
    assert first.task == "chartqa"
    assert first.question == "What is the value in 2019?"
    assert first.answers == ["12.5"]
    assert first.image == str(Path("png") / "41699051005347.png")
    assert first.context == "Characteristic,Share of respondents\n2019,12.5\n2020,17.5"
    # Quoted cells survive; blank rows are dropped.
    assert samples[1].context == 'Country,"Value, in %"\nJapan,40\nItaly,3'
    assert samples[2].answers == ["30"]  # numeric labels keep their JSON text


def test_other_split_names_and_a_single_subset(tmp_path: Path) -> None:
    root = tmp_path / "my_copy"
    write(root / "val_augmented.json", [{"imgname": "a.png", "query": "Q?", "label": "1"}])
    (sample,) = load_chartqa(root)
    assert sample.subset == "augmented"
    assert sample.context is None  # no tables/ directory: image-only evaluation


def _error(split_dir: Path) -> str:
    with pytest.raises(DatasetError) as info:
        load_chartqa(split_dir)
    return str(info.value)


def test_missing_directory_and_question_files(tmp_path: Path) -> None:
    assert "ChartQA split directory not found" in _error(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert "no ChartQA question files" in _error(tmp_path / "empty")


def test_missing_table_names_the_csv(split: Path) -> None:
    (split / "tables" / "multi_col_1.csv").unlink()
    msg = _error(split)
    assert "multi_col_1.csv" in msg and "file not found" in msg


def test_empty_table(split: Path) -> None:
    write(split / "tables" / "multi_col_1.csv", "\n\n")
    msg = _error(split)
    assert "multi_col_1.csv" in msg and "empty table" in msg


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"data": []}, "expected a JSON list of questions, got dict"),
        ([{"imgname": "a.png", "label": "1"}], "[0]: missing required field 'query'"),
        ([{"imgname": "a.png", "query": "Q", "label": ["1"]}], "[0].label: expected str or int or float, got list"),
        ([{"imgname": "a.png", "query": "Q", "label": True}], "[0].label: expected str or int or float, got bool"),
        ('[{"imgname": ', "invalid JSON at line 1"),
    ],
)
def test_malformed_question_file_names_file_and_problem(split: Path, content: Any, fragment: str) -> None:
    path = write(split / "test_human.json", content)
    msg = _error(split)
    assert msg.startswith(str(path)) and fragment in msg
