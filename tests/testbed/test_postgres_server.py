"""The PostgreSQL server is real: the alert sink's user authenticates with its password (and only
with it), owns the ``alerts`` database, and can create, write and read a table there.
"""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from testbed.postgres import PostgresServer
from testbed.process import free_port


def test_alerts_writer_writes_and_reads_back_with_password(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.alerts_conninfo(), autocommit=True) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            postgres_server.alerts_user,
            postgres_server.alerts_db,
        )
        conn.execute(
            "CREATE TABLE charging_alerts (alert_id text PRIMARY KEY, station_id text NOT NULL, "
            "kind text NOT NULL, raised_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO charging_alerts VALUES (%s, %s, %s, now()), (%s, %s, %s, now())",
            ("a1", "st-1", "stalled_session", "a2", "st-2", "connector_fault"),
        )
        conn.execute(
            "INSERT INTO charging_alerts VALUES ('a1', 'st-1', 'stalled_session', now()) "
            "ON CONFLICT (alert_id) DO UPDATE SET kind = excluded.kind"
        )
    with psycopg.connect(postgres_server.alerts_conninfo()) as conn:
        rows = conn.execute(
            "SELECT alert_id, station_id, kind FROM charging_alerts ORDER BY alert_id"
        ).fetchall()
    assert rows == [("a1", "st-1", "stalled_session"), ("a2", "st-2", "connector_fault")]


def test_alerts_writer_needs_the_right_password(postgres_server: PostgresServer) -> None:
    bad = postgres_server.conninfo(
        user=postgres_server.alerts_user, dbname=postgres_server.alerts_db, password="wrong-password"
    )
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad)
    no_password = postgres_server.conninfo(user=postgres_server.alerts_user, dbname=postgres_server.alerts_db)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(no_password)


def test_superuser_is_trusted_on_loopback_and_alerts_db_is_owned_by_writer(
    postgres_server: PostgresServer,
) -> None:
    with postgres_server.connect() as conn:
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (postgres_server.alerts_db,)
        ).fetchone()
        assert owner == (postgres_server.alerts_user,)
        super_flag = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = %s", (postgres_server.alerts_user,)
        ).fetchone()
        assert super_flag == (False,)
        data_dir = conn.execute("SHOW data_directory").fetchone()
    assert data_dir is not None
    # PostgreSQL refuses root: as root, the cluster belongs to the unprivileged service account.
    if os.geteuid() == 0:
        assert os.stat(str(data_dir[0])).st_uid != 0


@pytest.mark.postgres
def test_server_stops_cleanly_and_removes_its_directory() -> None:
    server = PostgresServer().start()
    (pid,) = server.pids
    workdir = server.workdir
    assert workdir is not None
    with server.connect() as conn:  # an open session must not block the shutdown
        conn.execute("SELECT 1")
        server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # no process left in its group (children included)
    assert not workdir.exists()


@pytest.mark.postgres
def test_server_retries_when_its_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr("testbed.postgres.free_port", lambda: next(ports, None) or free_port())
        server = PostgresServer().start()
        try:
            assert server.port != taken
            log = server.log_path.read_text()
            assert "Address already in use" in log
            with server.connect() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            server.stop()
