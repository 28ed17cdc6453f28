"""The double translates a catalog query once per shape, and still answers each for its own literals.

The operator's catalog reads are a few queries that differ only in the schema names they list.
The double keeps each one's SQLite translation with its string literals as parameters, so that
a post-apply read does not parse and translate the same text again. What it answers must be
exactly what a fresh translation answers: the literals of this query, the catalog as it is now,
and jobs polled once per read. Double only: the comparison forgets the kept translations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlglot

from charging_analytics.rw import client as rw_client
from tests.rw_double import RisingWaveDouble
from tests.rw_double import engine as double_engine
from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double import pipeline_sql as p


@pytest.fixture
def double(risingwave: RisingWaveTarget) -> RisingWaveDouble:
    return risingwave.require_double()


@pytest.fixture
def conn(double: RisingWaveDouble) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None) as conn:
        yield conn


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the double parses with sqlglot (DDL included)."""
    seen: list[str] = []
    parse_one = sqlglot.parse_one

    def counting(sql: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(sql)
        return parse_one(sql, *args, **kwargs)

    monkeypatch.setattr(double_engine.sqlglot, "parse_one", counting)
    return seen


def schema_objects(conn: psycopg.Connection[Any], *schemas: str) -> list[tuple[Any, ...]]:
    listed = ", ".join(f"'{s}'" for s in schemas)
    query = rw_client._SCHEMA_OBJECTS_SQL.format(listed)
    return sorted(conn.execute(query.encode()).fetchall(), key=repr)


def fresh(double: RisingWaveDouble, conn: psycopg.Connection[Any], *schemas: str) -> list[tuple[Any, ...]]:
    double.engine._prepared.clear()
    rows = schema_objects(conn, *schemas)
    double.engine._prepared.clear()
    return rows


def test_reads_of_other_schemas_are_translated_once_and_list_only_their_schemas(
    double: RisingWaveDouble, conn: psycopg.Connection[Any], rw_schema: str, parses: list[str]
) -> None:
    a, b = f"{rw_schema}_a", f"{rw_schema}_b"
    for schema in (a, b):
        for stmt in p.base_pipeline(schema):
            conn.execute(stmt.encode())
    first = schema_objects(conn, a)
    assert first
    assert {row[1] for row in first} == {a}
    translated = len(parses)

    second = schema_objects(conn, b)
    assert len(parses) == translated
    both = schema_objects(conn, b, a)  # another shape: two literals in the list
    assert len(parses) > translated

    assert {row[1] for row in second} == {b}
    assert both == sorted(first + second, key=repr)
    assert second == fresh(double, conn, b)


def test_a_kept_translation_reads_the_catalog_as_it_is_now(
    double: RisingWaveDouble, conn: psycopg.Connection[Any], rw_schema: str, parses: list[str]
) -> None:
    s = rw_schema
    for stmt in p.base_pipeline(s):
        conn.execute(stmt.encode())
    before = schema_objects(conn, s)
    conn.execute(f"CREATE MATERIALIZED VIEW {s}.extra AS SELECT * FROM {s}.sessions".encode())
    conn.execute(f"DROP MATERIALIZED VIEW {s}.completed_sessions CASCADE".encode())
    translated = len(parses)

    after = schema_objects(conn, s)

    assert len(parses) == translated
    names = {row[3] for row in after}
    assert "extra" in names
    assert "completed_sessions" not in names
    assert after != before
    assert after == fresh(double, conn, s)


def test_a_literal_that_names_a_column_stays_a_literal(
    double: RisingWaveDouble, conn: psycopg.Connection[Any]
) -> None:
    def ask(word: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = conn.execute(f"SELECT '{word}', name FROM rw_catalog.rw_schemas WHERE name = 'public'".encode())
        return [d.name for d in cur.description or []], cur.fetchall()

    ask("first")
    second = ask("second")
    double.engine._prepared.clear()
    assert second == ask("second")
    assert second[1] == [("second", "public")]


def test_each_read_of_ddl_progress_polls_the_jobs_once_whether_translated_or_kept(
    double: RisingWaveDouble, conn: psycopg.Connection[Any], rw_schema: str
) -> None:
    s = rw_schema
    double.set_backfill(polls=2)
    conn.execute(b"SET BACKGROUND_DDL = true")
    for stmt in p.base_pipeline(s)[:2]:
        conn.execute(stmt.encode())

    def status(name: str) -> str:
        query = f"SELECT status FROM rw_catalog.rw_materialized_views WHERE name = '{name}'"
        return str(conn.execute(query.encode()).fetchone()[0])  # type: ignore[index]

    for mv in ("first", "second"):  # the first job's reads are translated, the second's kept
        conn.execute(f"CREATE MATERIALIZED VIEW {s}.{mv} AS SELECT * FROM {s}.ocpp_events".encode())
        for _ in range(2):
            conn.execute(b"SELECT ddl_id FROM rw_catalog.rw_ddl_progress").fetchall()
            assert status(mv) == "Creating", mv
        conn.execute(b"SELECT ddl_id FROM rw_catalog.rw_ddl_progress").fetchall()
        assert status(mv) == "Created", mv
