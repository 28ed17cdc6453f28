"""The double's catalog tables stay right when they are kept up to date change by change.

A superuser's catalog read replaces only the rows of relations changed since the last read (so
a read costs what changed, not the catalog's size). Every kind of change must reach the next
read exactly as a rebuild from scratch would show it. Double only: the rebuild is forced by
forgetting the double's copies.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.rw_double import RisingWaveDouble
from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double import pipeline_sql as p

TABLES = (
    "rw_sources",
    "rw_materialized_views",
    "rw_views",
    "rw_sinks",
    "rw_tables",
    "rw_secrets",
    "pg_matviews",
)


@pytest.fixture
def double(risingwave: RisingWaveTarget) -> RisingWaveDouble:
    return risingwave.require_double()


def listing(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        schema = "pg_catalog" if table.startswith("pg_") else "rw_catalog"
        rows = conn.execute(f"SELECT * FROM {schema}.{table}".encode()).fetchall()
        out[table] = sorted(rows, key=repr)
    return out


def rebuilt(double: RisingWaveDouble, conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    double.engine._catalog_tables.clear()  # the next read rebuilds every table from the catalog
    return listing(conn)


def test_each_change_reaches_the_next_catalog_read_as_a_rebuild_shows_it(
    double: RisingWaveDouble, rw_schema: str
) -> None:
    s = rw_schema
    with psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None) as conn:

        def run(*statements: str) -> None:
            for stmt in statements:
                conn.execute(stmt.encode())
            kept = listing(conn)
            assert kept == rebuilt(double, conn), statements
            listing(conn)  # the copies are warm again: the next change is applied row by row

        listing(conn)
        run(*p.base_pipeline(s))
        run(f"CREATE MATERIALIZED VIEW {s}.extra AS SELECT * FROM {s}.sessions")
        run(f"ALTER MATERIALIZED VIEW {s}.sessions RENAME TO sessions_v2")  # dependents' definitions
        run(f"CREATE MATERIALIZED VIEW {s}.other AS SELECT * FROM {s}.completed_sessions")
        run(f"ALTER MATERIALIZED VIEW {s}.extra SWAP WITH {s}.other")
        run(f"CREATE USER {s}_owner", f"ALTER MATERIALIZED VIEW {s}.extra OWNER TO {s}_owner")
        run(f"CREATE TABLE {s}.t (id INT PRIMARY KEY)", f"INSERT INTO {s}.t VALUES (1)")
        run(f"CREATE VIEW {s}.v AS SELECT * FROM {s}.t", f"DROP VIEW {s}.v")
        run(f"DROP MATERIALIZED VIEW {s}.other")
        run(f"DROP SCHEMA {s} CASCADE")


def test_a_background_job_finishing_reaches_the_next_read(double: RisingWaveDouble, rw_schema: str) -> None:
    s = rw_schema
    double.set_backfill(polls=2)
    with psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None) as conn:
        conn.execute(b"SET BACKGROUND_DDL = true")
        for stmt in p.base_pipeline(s)[:3]:
            conn.execute(stmt.encode())

        def status() -> list[tuple[Any, ...]]:
            query = "SELECT name, status FROM rw_catalog.rw_materialized_views WHERE name = 'sessions'"
            return conn.execute(query.encode()).fetchall()

        assert status() == [("sessions", "Creating")]
        for _ in range(3):
            conn.execute(b"SELECT * FROM rw_catalog.rw_ddl_progress").fetchall()
        assert status() == [("sessions", "Created")]
        assert listing(conn) == rebuilt(double, conn)


def test_a_users_filtered_read_leaves_the_superusers_view_whole(
    double: RisingWaveDouble, rw_schema: str
) -> None:
    s = rw_schema
    with psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None) as conn:
        for stmt in p.base_pipeline(s):
            conn.execute(stmt.encode())
        conn.execute(f"CREATE USER {s}_reader WITH PASSWORD 'pw'".encode())
        before = listing(conn)
        reader_dsn = double.dsn.replace("root@", f"{s}_reader:pw@")
        with psycopg.connect(reader_dsn, autocommit=True, prepare_threshold=None) as reader:
            seen = reader.execute(b"SELECT name FROM rw_catalog.rw_materialized_views").fetchall()
        assert seen == []  # no privileges: nothing listed (docs/risingwave.md §8)
        assert listing(conn) == before
