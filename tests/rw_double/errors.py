"""Errors and notices of the RisingWave DOUBLE.

RisingWave sends every error with SQLSTATE ``XX000`` (internal error) unless the error carries a
PostgreSQL code (``src/utils/pgwire/src/error_or_notice.rs``: ``unwrap_or(InternalError)``), and
puts any DETAIL/HINT lines inside the message text rather than in separate protocol fields
(docs/risingwave.md §9 quotes them as one text). The double does the same, so code under test must
classify RisingWave errors by message text, never by SQLSTATE alone.
"""

from __future__ import annotations

INTERNAL_ERROR = "XX000"
QUERY_CANCELED = "57014"
FEATURE_NOT_SUPPORTED = "0A000"
SYNTAX_ERROR = "42601"
INVALID_PASSWORD = "28P01"
INVALID_AUTHORIZATION = "28000"
UNDEFINED_DATABASE = "3D000"
ADMIN_SHUTDOWN = "57P01"


class SqlError(Exception):
    """An error the double reports to the client as an ErrorResponse."""

    def __init__(
        self,
        message: str,
        sqlstate: str = INTERNAL_ERROR,
        *,
        severity: str = "ERROR",
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.severity = severity
        self.detail = detail
        self.hint = hint

    def __repr__(self) -> str:
        return f"SqlError({self.sqlstate}, {self.message!r})"


def parse_error(sql: str, pos: int, message: str) -> SqlError:
    """A parser error in RisingWave's shape: ``sql parser error: ...`` plus the offending line.

    RisingWave echoes the statement line with a caret, so any secret in the statement text is
    in the error message too; the client must never pass such messages on unredacted.
    """
    line_start = sql.rfind("\n", 0, pos) + 1
    line_end = sql.find("\n", pos)
    line_end = len(sql) if line_end < 0 else line_end
    line_no = sql.count("\n", 0, pos) + 1
    prefix = f"LINE {line_no}: "
    caret = " " * (len(prefix) + pos - line_start) + "^"
    return SqlError(
        f"sql parser error: {message}\n{prefix}{sql[line_start:line_end]}\n{caret}", INTERNAL_ERROR
    )


def not_supported_by_double(what: str) -> SqlError:
    """Something real RisingWave may accept but the double does not model (clearly labelled)."""
    return SqlError(f"RisingWave double: {what} is not supported by the double", FEATURE_NOT_SUPPORTED)
