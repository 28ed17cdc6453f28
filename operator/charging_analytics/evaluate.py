"""Evaluate the tenant's views as batch queries on PostgreSQL at a fixed instant.

RisingWave guarantees that a materialized view equals its defining query over the current inputs,
with ``NOW()`` in temporal filters at the current time. So what every view contains at instant T
is its SELECT evaluated at ``NOW() = T`` over the events received by then. This module takes the
*rendered* statements (the same text the operator sends) and applies a small, mechanical rewrite
of the constructs PostgreSQL does not have (docs/evaluation.md):

* ``NOW()`` becomes the literal instant;
* ``TUMBLE(r, c, i)`` becomes ``r`` plus ``window_start = date_bin(i, c, epoch)`` and
  ``window_end = window_start + i``;
* ``HOP(r, c, slide, size)`` becomes ``r`` joined laterally with every window start
  (``generate_series``) whose window contains ``c``;
* the Kafka source becomes a table holding the events, and each view a table built from its
  rewritten SELECT, in dependency order (at a fixed instant a plain view and a table agree).

Everything runs in one transaction that is rolled back, so nothing is left in the database.
What this cannot show (retractions seen by sinks, backfill) is not a property of a view's
contents at an instant.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .events import EVENT_COLUMNS, format_timestamp
from .render import DesiredObject, as_text

#: The view kinds whose contents the evaluator computes (sources, sinks and users have none).
VIEW_KINDS = ("MaterializedView", "View")
_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
_CREATE_VIEW = re.compile(
    r"^\s*CREATE\s+(?:MATERIALIZED\s+)?VIEW\s+IF\s+NOT\s+EXISTS\s+(?P<name>\S+)\s+AS\s+",
    re.IGNORECASE,
)
_NOW = re.compile(r"\bNOW\(\)", re.IGNORECASE)
_WINDOW = re.compile(r"\b(TUMBLE|HOP)\s*\(", re.IGNORECASE)


class EvaluationError(Exception):
    """A view could not be evaluated (the message names the view and PostgreSQL's error)."""


# --------------------------------------------------------------------------------------------
# The rewrite (pure)
# --------------------------------------------------------------------------------------------


def _segments(text: str) -> Iterator[tuple[bool, str]]:
    """Split SQL text into (is_quoted, piece): string literals and quoted identifiers are kept
    apart so that a rewrite never touches their contents."""
    i, start = 0, 0
    while i < len(text):
        ch = text[i]
        if ch in ("'", '"'):
            if start < i:
                yield False, text[start:i]
            j = i + 1
            while j < len(text):
                if text[j] == ch:
                    if j + 1 < len(text) and text[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            yield True, text[i : j + 1]
            i = start = j + 1
            continue
        i += 1
    if start < len(text):
        yield False, text[start:]


def _replace_now(text: str, now_literal: str) -> str:
    return "".join(p if quoted else _NOW.sub(now_literal, p) for quoted, p in _segments(text))


def _call_args(text: str, open_paren: int) -> tuple[list[str], int]:
    """Top-level arguments of the call whose ``(`` is at ``open_paren``, and the index after ``)``."""
    depth, args, current, i = 0, [], [], open_paren
    pieces = list(_segments(text[open_paren:]))
    for quoted, piece in pieces:
        if quoted:
            current.append(piece)
            i += len(piece)
            continue
        for ch in piece:
            i += 1
            if ch == "(":
                depth += 1
                if depth == 1:
                    continue
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    args.append("".join(current).strip())
                    return args, i
            elif ch == "," and depth == 1:
                args.append("".join(current).strip())
                current = []
                continue
            current.append(ch)
    raise EvaluationError(f"unbalanced parentheses after {text[:open_paren]!r}")


def _window_relation(func: str, args: Sequence[str]) -> str:
    if func == "TUMBLE":
        if len(args) != 3:
            raise EvaluationError(f"TUMBLE takes 3 arguments here, got {len(args)}")
        rel, col, size = args
        start = f"date_bin({size}, w.{col}, {_EPOCH})"
        return f"(SELECT w.*, {start} AS window_start, {start} + {size} AS window_end FROM {rel} AS w)"
    if len(args) != 4:
        raise EvaluationError(f"HOP takes 4 arguments here, got {len(args)}")
    rel, col, slide, size = args
    last = f"date_bin({slide}, w.{col}, {_EPOCH})"
    return (
        f"(SELECT w.*, s.window_start, s.window_start + {size} AS window_end FROM {rel} AS w "
        f"CROSS JOIN LATERAL generate_series({last} - {size} + {slide}, {last}, {slide}) "
        f"AS s(window_start))"
    )


def _replace_windows(text: str) -> str:
    out: list[str] = []
    pos = 0
    while True:
        match = None
        offset = 0
        for quoted, piece in _segments(text[pos:]):
            if not quoted:
                match = _WINDOW.search(piece)
                if match is not None:
                    break
            offset += len(piece)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        begin = pos + offset + match.start()
        paren = pos + offset + match.end() - 1
        args, end = _call_args(text, paren)
        out.append(text[pos:begin])
        out.append(_window_relation(match.group(1).upper(), [_replace_windows(a) for a in args]))
        out.append(f" AS {match.group(1).lower()}")
        pos = end


def rewrite_query(statement: str, at: datetime) -> tuple[str, str]:
    """(qualified name, PostgreSQL SELECT) of one rendered ``CREATE [MATERIALIZED] VIEW``."""
    match = _CREATE_VIEW.match(statement)
    if match is None:
        raise EvaluationError(f"not a view definition: {statement[:60]!r}")
    query = statement[match.end() :]
    now_literal = f"CAST('{_pg_timestamp(at)}' AS TIMESTAMPTZ)"
    return match.group("name"), _replace_windows(_replace_now(query, now_literal))


def _pg_timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise EvaluationError("the evaluation instant must carry a time zone")
    return at.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class PreparedView:
    name: str  # the object's name inside the tenant
    qualified: str  # as it appears in the rendered SQL
    query: str  # the rewritten SELECT


def prepare(objects: Sequence[DesiredObject], at: datetime) -> list[PreparedView]:
    """The rewritten SELECT of every view, in dependency (render) order."""
    out = []
    for o in objects:
        if o.kind in VIEW_KINDS:
            qualified, query = rewrite_query(as_text(o.statement), at)  # what the operator sends
            out.append(PreparedView(o.name, qualified, query))
    return out


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

_COLUMNS = tuple(name for name, _ in EVENT_COLUMNS)


def event_rows(lines: Iterable[str]) -> Iterator[tuple[Any, ...]]:
    """Rows of the source from JSON lines, read the way RisingWave's JSON parser reads them:
    a missing key is NULL, key case is ignored, a line that is not a JSON object is skipped."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        folded = {str(k).lower(): v for k, v in record.items()}
        yield tuple(folded.get(c) for c in _COLUMNS)


def read_events(path: Path) -> list[tuple[Any, ...]]:
    with path.open(encoding="utf-8") as fh:
        return list(event_rows(fh))


# --------------------------------------------------------------------------------------------
# Evaluation (PostgreSQL)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    at: datetime
    views: dict[str, list[dict[str, Any]]]
    seconds: float
    #: Seconds PostgreSQL took to build each view.
    build_seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {
            name: [{k: _json_value(v) for k, v in row.items()} for row in rows]
            for name, rows in self.views.items()
        }


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _source_name(objects: Sequence[DesiredObject]) -> sql.Identifier:
    for o in objects:
        if o.kind == "Source":
            return sql.Identifier(o.schema, o.name)
    raise EvaluationError("the rendering has no source")


def evaluate(
    conn: psycopg.Connection[Any],
    objects: Sequence[DesiredObject],
    events: Iterable[Sequence[Any]],
    at: datetime,
    *,
    then: Callable[[psycopg.Cursor[Any]], None] | None = None,
) -> Evaluation:
    """Contents of every view at ``at``, over ``events`` (rows in the source's column order).

    Runs in a transaction on ``conn`` that is rolled back: the database is left as it was.
    ``then`` runs with the views in place (as tables under their rendered names), before the
    rollback: queries that read the views, such as dashboard panels, see what the views contain.
    """
    views = prepare(objects, at)
    schema = sql.Identifier(next(o.schema for o in objects if o.kind == "Source"))
    t0 = time.monotonic()
    previous_autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn.transaction(force_rollback=True), conn.cursor() as cur:
            cur.execute("SET LOCAL TIME ZONE 'UTC'")
            # one large aggregation per windowed view: let it hash in memory rather than sort on disk
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute("SET LOCAL jit = off")
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            _load_events(cur, _source_name(objects), events)
            timings = _build_views(conn, cur, views)
            results = {view.name: _rows(cur, view) for view in views}
            if then is not None:
                then(cur)
    except psycopg.errors.DuplicateSchema as err:
        raise EvaluationError(
            f"schema {schema.as_string(None)} already exists in this database; "
            "preview needs a database without the tenant's schema"
        ) from err
    finally:
        conn.autocommit = previous_autocommit
    return Evaluation(at=at, views=results, seconds=time.monotonic() - t0, build_seconds=timings)


def _load_events(cur: psycopg.Cursor[Any], source: sql.Identifier, events: Iterable[Sequence[Any]]) -> None:
    """The source as a table holding ``events``."""
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in EVENT_COLUMNS
    )
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(source, columns))
    copy_stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        source, sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
    )
    with cur.copy(copy_stmt) as copy:
        for row in events:
            copy.write_row(row)
    cur.execute(sql.SQL("ANALYZE {}").format(source))


def _build_views(
    conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any], views: Sequence[PreparedView]
) -> dict[str, float]:
    """Each view as a table under its rendered name; the seconds each took."""
    timings: dict[str, float] = {}
    for view in views:
        started = time.monotonic()
        try:
            with conn.transaction():
                cur.execute(f"CREATE TABLE {view.qualified} AS {view.query}")  # rewritten rendered SQL
        except psycopg.Error as err:
            raise EvaluationError(f"{view.name}: {err.diag.message_primary or err}") from err
        timings[view.name] = time.monotonic() - started
    return timings


def _rows(cur: psycopg.Cursor[Any], view: PreparedView) -> list[dict[str, Any]]:
    """A view's rows as mappings, in a stable order (every column, ascending)."""
    cur.execute(f"SELECT * FROM {view.qualified} LIMIT 0")
    width = len(cur.description or ())
    order = ", ".join(str(i) for i in range(1, width + 1))
    cur.execute(f"SELECT * FROM {view.qualified} ORDER BY {order}")
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

