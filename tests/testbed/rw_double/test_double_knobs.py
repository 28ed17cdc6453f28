"""The RisingWave double's test knobs and wire-protocol coverage (double only; skip in live mode)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
import pytest

from tests.rw_double import RisingWaveDouble
from tests.rw_double.fixtures import RisingWaveTarget


@pytest.fixture
def double(risingwave: RisingWaveTarget) -> RisingWaveDouble:
    return risingwave.require_double()


def connect(double: RisingWaveDouble, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None, **kwargs)


def test_statements_log_records_every_statement_in_order(double: RisingWaveDouble) -> None:
    with connect(double) as conn:
        conn.execute(b"CREATE SCHEMA a; CREATE SCHEMA b")
        conn.execute(b"SELECT 1")
    assert double.statements == ["CREATE SCHEMA a", "CREATE SCHEMA b", "SELECT 1"]
    assert [r.outcome for r in double.records] == ["ok", "ok", "ok"]


def test_fail_next_fails_only_the_first_matching_statement(double: RisingWaveDouble) -> None:
    injection = double.fail_next(r"CREATE SCHEMA b\b", "boom")
    with connect(double) as conn:
        conn.execute(b"CREATE SCHEMA a")
        with pytest.raises(psycopg.Error, match="boom"):
            conn.execute(b"CREATE SCHEMA b")
        conn.execute(b"CREATE SCHEMA b")
    assert injection.fired
    assert {"a", "b"} <= set(double.schemas())


def test_fail_next_after_applies_the_statement_then_fails(double: RisingWaveDouble) -> None:
    double.fail_next("CREATE SCHEMA", "lost the reply", after=True)
    with connect(double) as conn, pytest.raises(psycopg.Error, match="lost the reply"):
        conn.execute(b"CREATE SCHEMA a")
    assert "a" in double.schemas()


def test_fail_next_disconnect_drops_the_connection(double: RisingWaveDouble) -> None:
    double.fail_next("CREATE SCHEMA", disconnect=True, after=True)
    with connect(double) as conn:
        with pytest.raises(psycopg.OperationalError):
            conn.execute(b"CREATE SCHEMA a")
        assert conn.closed
    assert "a" in double.schemas()


def test_a_query_response_of_many_rows_is_sent_in_one_write(
    double: RisingWaveDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As RisingWave's frontend buffers a response's messages and flushes once, the double does:
    a client reads a large result in a few large chunks, not one per row."""
    with connect(double) as conn:
        conn.execute(b"; ".join(b"CREATE SCHEMA s%d" % i for i in range(40)))
        writes: list[int] = []
        original = asyncio.StreamWriter.write

        def counted(writer: asyncio.StreamWriter, data: bytes | bytearray | memoryview) -> None:
            writes.append(len(data))
            original(writer, data)

        monkeypatch.setattr(asyncio.StreamWriter, "write", counted)
        rows = conn.execute(b"SELECT name FROM rw_catalog.rw_schemas").fetchall()
    assert len(rows) >= 40
    assert len(writes) == 1, writes


def test_latency_delays_each_statement(double: RisingWaveDouble) -> None:
    double.latency = 0.2
    with connect(double) as conn:
        started = time.monotonic()
        conn.execute(b"CREATE SCHEMA a")
        assert time.monotonic() - started >= 0.2


def test_statement_timeout_cancels_slow_reads_with_57014(double: RisingWaveDouble) -> None:
    """statement_timeout applies to batch queries (RisingWave PR #13933), not to DDL."""
    with connect(double) as conn:
        conn.execute(b"SET statement_timeout = '100ms'")
        double.latency = 0.3
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(b"SELECT 1")
        conn.execute(b"CREATE SCHEMA slow_but_fine")
    assert "slow_but_fine" in double.schemas()


def test_statement_timeout_requires_a_unit_by_default(double: RisingWaveDouble) -> None:
    """RisingWave ≥ v2.8 (PR #24633) rejects a bare number; ms/s/min/h/d are accepted."""
    with connect(double) as conn:
        with pytest.raises(psycopg.Error, match="time unit is required"):
            conn.execute(b"SET statement_timeout = 30")
        conn.execute(b"SET statement_timeout = '30s'")
        assert conn.execute(b"SHOW statement_timeout").fetchone() == ("30000ms",)


def test_legacy_statement_timeout_takes_bare_seconds() -> None:
    with RisingWaveDouble(statement_timeout_units="legacy") as double, connect(double) as conn:
        with pytest.raises(psycopg.Error):
            conn.execute(b"SET statement_timeout = '30s'")
        conn.execute(b"SET statement_timeout = 30")
        assert conn.execute(b"SHOW statement_timeout").fetchone() == ("30",)


def test_cancel_request_interrupts_a_running_statement(double: RisingWaveDouble) -> None:
    double.latency = 5
    with connect(double) as conn:
        timer = threading.Timer(0.2, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(b"CREATE SCHEMA never")
        assert time.monotonic() - started < 2
    assert double.records[-1].outcome == "cancelled"


def test_unreachable_refuses_connections_until_reset(double: RisingWaveDouble) -> None:
    double.unreachable = True
    with pytest.raises(psycopg.OperationalError):
        connect(double, connect_timeout=2)
    double.unreachable = False
    with connect(double) as conn:
        assert conn.execute(b"SELECT 1").fetchone() == (1,)


def test_unreachable_closes_open_connections(double: RisingWaveDouble) -> None:
    with connect(double) as conn:
        double.unreachable = True
        with pytest.raises(psycopg.OperationalError):
            conn.execute(b"SELECT 1")


def test_hanging_endpoint_times_out_on_connect(double: RisingWaveDouble) -> None:
    double.unreachable = "hang"
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        connect(double, connect_timeout=2)
    assert time.monotonic() - started < 5


def test_bind_parameters_use_the_extended_protocol(double: RisingWaveDouble) -> None:
    with connect(double) as conn:
        rows = conn.execute("SELECT name FROM rw_catalog.rw_users WHERE name = %s", ["root"]).fetchall()
        count = conn.execute("SELECT %s + 1 AS n", [41]).fetchone()
    assert rows == [("root",)]
    assert count == (42,)
    assert [r.protocol for r in double.records] == ["extended", "extended"]


def test_password_authentication_for_created_users(double: RisingWaveDouble) -> None:
    with connect(double) as conn:
        conn.execute(b"CREATE USER reader WITH PASSWORD 'pw'")
    params = {"host": double.host, "port": double.port, "dbname": "dev", "user": "reader"}
    with psycopg.connect(**params, password="pw") as conn:
        assert conn.execute(b"SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**params, password="wrong")


def test_unknown_database_is_refused(double: RisingWaveDouble) -> None:
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(host=double.host, port=double.port, dbname="prod", user="root")


def test_alter_system_license_key_enables_secrets(double: RisingWaveDouble) -> None:
    """docs/risingwave.md §7: the license error's hint names ALTER SYSTEM SET license_key."""
    with connect(double) as conn:
        conn.execute(b"ALTER SYSTEM SET license_key = 'trial'")
        conn.execute(b"CREATE SECRET s WITH (backend = 'meta') AS 'v'")
    assert double.secret_value("public.s") == "v"


def test_dml_becomes_visible_after_the_configured_delay(double: RisingWaveDouble) -> None:
    double.dml_visibility_delay = 0.0
    with connect(double) as conn:
        conn.execute(b"CREATE TABLE t (k VARCHAR, v INT, PRIMARY KEY (k))")
        conn.execute(b"INSERT INTO t (k, v) VALUES ('a', 1)")
        assert conn.execute(b"SELECT k, v FROM t").fetchall() == [("a", 1)]


def test_implicit_flush_makes_writes_visible_at_once(double: RisingWaveDouble) -> None:
    with connect(double) as conn:
        conn.execute(b"SET RW_IMPLICIT_FLUSH = true")
        conn.execute(b"CREATE TABLE t (k VARCHAR, PRIMARY KEY (k))")
        conn.execute(b"INSERT INTO t (k) VALUES ('a')")
        assert conn.execute(b"SELECT k FROM t").fetchall() == [("a",)]


def test_objects_report_dependencies_and_definitions(double: RisingWaveDouble) -> None:
    double.execute(
        "CREATE SCHEMA s; CREATE TABLE s.t (a INT); CREATE MATERIALIZED VIEW s.m AS SELECT a FROM s.t"
    )
    mv = double.object("s.m")
    assert mv is not None
    assert mv.kind == "materialized view"
    assert mv.depends_on == ("s.t",)
    assert mv.definition == "CREATE MATERIALIZED VIEW s.m AS SELECT a FROM s.t"
