"""Loader for DocVQA (single-page) annotation files, optionally with the official OCR.

Annotation format (``train_v1.0.json``, ``val_v1.0.json``, ``val_v1.0_withQT.json``)::

    {"dataset_name": "docvqa", "dataset_split": "val", "data": [
      {"questionId": 49153, "question": "What is the ...?", "question_types": ["form"],
       "image": "documents/pybv0228_81.png", "docId": 14465, "answers": ["0.28", "0.28%"], ...}]}

The OCR of page ``documents/pybv0228_81.png`` is ``<ocr_dir>/pybv0228_81.json``; see
:mod:`lynx.workloads.ocr_layout` for how its lines are put in reading order.
"""

from __future__ import annotations

from pathlib import Path

from lynx.workloads.dataset_io import DatasetError, read_json, require
from lynx.workloads.ocr_layout import OcrDocument, load_ocr
from lynx.workloads.sample import DocQASample


def load_docvqa(annotations_json: str | Path, ocr_dir: str | Path | None = None) -> list[DocQASample]:
    """Load DocVQA questions from an annotation JSON file.

    Args:
        annotations_json: Path of the official annotation file. Every record needs
            ``questionId``, ``question``, ``image`` and a non-empty ``answers`` list (so the
            test split, whose answers are withheld, is rejected).
        ocr_dir: Directory of per-page OCR JSON files. When given, each sample's context is
            the page's OCR text in reading order and a missing OCR file is an error; when
            ``None`` the context is ``None``.

    Returns:
        Samples in file order. ``subset`` is the first listed question type, or ``"all"``
        when the file has no ``question_types``; ``tags`` holds every question type.

    Raises:
        DatasetError: A file is missing or malformed; the message names file and problem.
    """
    path = Path(annotations_json)
    doc = read_json(path)
    records = require(doc, "data", list, path, "top level")
    ocr_root = Path(ocr_dir) if ocr_dir is not None else None
    if ocr_root is not None and not ocr_root.is_dir():
        raise DatasetError(ocr_root, "OCR directory not found")
    ocr_cache: dict[str, OcrDocument] = {}  # several questions share one page
    samples: list[DocQASample] = []
    for i, rec in enumerate(records):
        where = f"data[{i}]"
        qid = require(rec, "questionId", (int, str), path, where)
        question = require(rec, "question", str, path, where)
        image = require(rec, "image", str, path, where)
        answers = _answers(rec, path, where)
        types = _question_types(rec, path, where)
        ocr = None
        if ocr_root is not None:
            stem = Path(image).stem
            if stem not in ocr_cache:
                ocr_cache[stem] = load_ocr(ocr_root / f"{stem}.json")
            ocr = ocr_cache[stem]
        meta = {key: rec[key] for key in ("docId", "ucsf_document_id", "ucsf_document_page_no") if key in rec}
        samples.append(
            DocQASample(
                id=str(qid),
                question=question,
                answers=answers,
                context=ocr.text if ocr is not None else None,
                image=image,
                subset=types[0] if types else "all",
                task="docvqa",
                tags=tuple(types),
                image_size=ocr.size if ocr is not None else None,
                meta=meta,
            )
        )
    return samples


def _answers(rec: dict, path: Path, where: str) -> list[str]:
    if "answers" not in rec:
        raise DatasetError(path, f"{where}: missing required field 'answers' (test-split answers are withheld)")
    answers = require(rec, "answers", list, path, where)
    if not answers or not all(isinstance(a, str) for a in answers):
        raise DatasetError(path, f"{where}.answers: expected a non-empty list of strings, got {answers!r}")
    return answers


def _question_types(rec: dict, path: Path, where: str) -> list[str]:
    if "question_types" not in rec:
        return []
    types = require(rec, "question_types", list, path, where)
    if not all(isinstance(t, str) and t for t in types):
        raise DatasetError(path, f"{where}.question_types: expected a list of strings, got {types!r}")
    return types
