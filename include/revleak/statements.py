"""Named SQL statements: each file under ``sql/`` is a list of ``-- name: step`` sections, one
statement each, with values as named bind parameters (``%(as_of)s``), so an analyst can paste
any step into psql. One loader serves checks, findings and ticket events."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from revleak.errors import RevleakError

SQL_DIR = Path(__file__).resolve().parent / "sql"  # package data: works installed or not


@cache
def named(relative_path: str) -> dict[str, str]:
    """The named statements of one SQL file, in file order."""
    path = SQL_DIR / relative_path
    if not path.is_file():
        raise RevleakError(f"{path} is missing; reinstall revleak")
    parts = re.split(r"^-- name: (\w+)\s*$", path.read_text(encoding="utf-8"), flags=re.M)
    return {name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2],
                                                                strict=True)}
