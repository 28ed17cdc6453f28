"""String literals in the one form RisingWave accepts in every position.

psycopg's ``sql.Literal`` renders a string containing a backslash as ``E'...'``. RisingWave's
parser rejects an ``E'...'`` string after ``PASSWORD`` ("expected literal string, found: E'...'")
and its CREATE/ALTER SECRET handler rejects it as the secret value ("secret value should be quoted
by ' or \\""), on every version. A plain ``'...'`` with ``'`` doubled is accepted everywhere, and
RisingWave keeps backslashes in it literally: ``standard_conforming_strings`` is ``on`` and cannot
be changed (``STANDARD_CONFORMING_STRINGS`` in ``src/common/src/lib.rs``; see
https://docs.risingwave.com/sql/commands/sql-set and PostgreSQL's
https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-STRINGS).
"""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.abc import AdaptContext

__all__ = ["RwLiteral", "rw_literal"]


class RwLiteral(sql.Composable):
    """A string value as ``'...'`` with ``'`` doubled, composable with :mod:`psycopg.sql`."""

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"rw_literal takes a string, not {type(value).__name__}")
        if "\0" in value:
            # PostgreSQL's wire protocol ends a query at NUL: the statement would be cut short.
            raise ValueError("a string value for RisingWave cannot contain a NUL character (U+0000)")
        super().__init__(value)

    @property
    def value(self) -> str:
        return str(self._obj)

    def as_string(self, context: AdaptContext | None = None) -> str:
        return "'" + self.value.replace("'", "''") + "'"

    def as_bytes(self, context: AdaptContext | None = None) -> bytes:
        # RisingWave's only server encoding is UTF8 (SERVER_ENCODING in src/common/src/lib.rs)
        return self.as_string(context).encode("utf-8")

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, RwLiteral) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def rw_literal(value: str) -> RwLiteral:
    """``value`` as a RisingWave string literal (raises ValueError for a NUL character)."""
    return RwLiteral(value)
