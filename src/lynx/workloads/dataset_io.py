"""Reading dataset files with errors that name the file and the problem.

Loaders never let a raw ``KeyError``/``json.JSONDecodeError`` escape: a user pointing
``lynx eval --data`` at the wrong file should get one line saying which file is wrong and
why, so everything here raises :class:`DatasetError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lynx.errors import LynxError


class DatasetError(LynxError, ValueError):
    """A dataset or workload file is missing or not in the expected format."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def read_text(path: str | Path) -> str:
    """Return the UTF-8 text of ``path`` or raise :class:`DatasetError`."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(p, "file not found" if not p.exists() else "not a regular file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(p, f"not valid UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DatasetError(p, f"cannot be read ({exc.strerror})") from None


def read_json(path: str | Path) -> Any:
    """Parse ``path`` as JSON or raise :class:`DatasetError` with the line and column."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def require(obj: Any, key: str, kind: type | tuple[type, ...], path: str | Path, where: str) -> Any:
    """Return ``obj[key]`` after checking it exists and has type ``kind``.

    ``where`` locates ``obj`` inside the file (e.g. ``data[12]``) so the message points at
    the offending record, not just the file. ``bool`` is rejected where numbers are asked
    for, because JSON ``true`` is never a valid count or id.
    """
    if not isinstance(obj, dict):
        raise DatasetError(path, f"{where}: expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise DatasetError(path, f"{where}: missing required field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        expected = " or ".join(t.__name__ for t in _as_tuple(kind))
        raise DatasetError(path, f"{where}.{key}: expected {expected}, got {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
