"""The SQL templates in ``sql/``: loaded by name, the leading comment stripped (it documents the
file; it is not sent)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

from psycopg import sql

_DEFAULT_SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def sql_dir() -> Path:
    """Where the templates live: ``$CHA_SQL_DIR`` or the repository's ``sql/``."""
    env = os.environ.get("CHA_SQL_DIR")
    return Path(env) if env else _DEFAULT_SQL_DIR


@functools.cache
def _template_text(directory: str, name: str) -> str:
    text = (Path(directory) / f"{name}.sql").read_text(encoding="utf-8")
    lines = text.splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)  # the leading comment documents the file; it is not sent
    return "\n".join(lines).strip().rstrip(";")


def template(name: str) -> sql.SQL:
    return sql.SQL(_template_text(str(sql_dir()), name))


def templates(name: str) -> list[sql.SQL]:
    """A template of several statements, each ending with ``;`` at the end of a line."""
    text = _template_text(str(sql_dir()), name)
    return [sql.SQL(part.strip()) for part in text.split(";\n") if part.strip()]
