"""Pytest fixtures for the RisingWave boundary: the RisingWave DOUBLE, or a live RisingWave.

``risingwave`` yields a :class:`RisingWaveTarget`: ``.dsn``, ``.endpoint`` and the double's knobs.
With ``RISINGWAVE_DSN`` set, the same fixture targets that live RisingWave instead; touching a
knob then skips the test ("needs the RisingWave double ..., live mode").

Register with ``pytest_plugins = ["tests.rw_double.fixtures"]`` in the top-level conftest, or
import the fixtures into a directory's ``conftest.py`` (as ``tests/testbed/rw_double`` does).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from charging_analytics.rw.client import Endpoint
from tests.rw_double.engine import DEFAULT_VERSION
from tests.rw_double.server import RisingWaveDouble

LIVE_DSN_ENV = "RISINGWAVE_DSN"

#: Attributes of RisingWaveDouble that only exist on the double.
_KNOBS = frozenset(
    {
        "license", "latency", "unreachable", "drop_connections", "set_backfill", "dml_visibility_delay",
        "fail_next", "records", "statements", "clear_statements", "statement_counts", "empty_queries",
        "objects", "object", "schemas", "users", "privileges", "secret_value", "connector_option", "execute",
        "query", "engine", "port", "version",
    }
)  # fmt: skip


def live_dsn() -> str | None:
    return os.environ.get(LIVE_DSN_ENV) or None


class RisingWaveTarget:
    """What a test talks to: the double (knobs available) or a live RisingWave (no knobs)."""

    def __init__(self, dsn: str, double: RisingWaveDouble | None) -> None:
        object.__setattr__(self, "dsn", dsn)
        object.__setattr__(self, "endpoint", Endpoint.from_dsn(dsn))
        object.__setattr__(self, "double", double)

    dsn: str
    endpoint: Endpoint
    double: RisingWaveDouble | None

    @property
    def live(self) -> bool:
        return self.double is None

    def require_double(self, why: str = "") -> RisingWaveDouble:
        if self.double is None:
            pytest.skip(
                f"needs the RisingWave double's knobs{f' ({why})' if why else ''}; "
                f"running in live mode against {LIVE_DSN_ENV}"
            )
        return self.double

    def __getattr__(self, name: str) -> Any:
        if name in _KNOBS:
            return getattr(self.require_double(name), name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _KNOBS:
            setattr(self.require_double(name), name, value)
            return
        object.__setattr__(self, name, value)

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A sync psycopg connection configured as the operator's client does (docs/risingwave.md §13)."""
        options: dict[str, Any] = {"autocommit": True, "prepare_threshold": None, **kwargs}
        return psycopg.connect(self.dsn, **options)


@pytest.fixture
def risingwave_version() -> str:
    """The RisingWave version the double imitates; parametrize this name to run a test against
    several versions (``@pytest.mark.parametrize("risingwave_version", [...])``)."""
    return DEFAULT_VERSION


@pytest.fixture
def risingwave(risingwave_version: str) -> Iterator[RisingWaveTarget]:
    """A clean RisingWave per test: a fresh double, or the live endpoint (cleaned up after)."""
    dsn = live_dsn()
    if dsn is not None:
        target = RisingWaveTarget(dsn, None)
        with target.connect() as conn:
            before = {row[0] for row in conn.execute("SELECT name FROM rw_catalog.rw_schemas")}
        yield target
        _drop_new_schemas(target, before)
        return
    double = RisingWaveDouble(version=risingwave_version).start()
    try:
        yield RisingWaveTarget(double.dsn, double)
    finally:
        double.stop()


@pytest.fixture
def risingwave_double(risingwave: RisingWaveTarget) -> RisingWaveDouble:
    """The double itself (skips in live mode)."""
    return risingwave.require_double()


@pytest.fixture
def rw_schema(risingwave: RisingWaveTarget) -> str:
    """A unique schema name for the test (created by the test if it needs it)."""
    del risingwave
    return f"t_{uuid.uuid4().hex[:10]}"


def _drop_new_schemas(target: RisingWaveTarget, before: set[str]) -> None:
    """Live mode: remove what the test created (schemas via CASCADE, v2.3+, docs/risingwave.md §8),
    and the ledger rows of those tenants if the operator's ledger pre-existed."""
    with target.connect() as conn:
        now = {row[0] for row in conn.execute("SELECT name FROM rw_catalog.rw_schemas")}
        new = sorted(now - before)
        if new and "cha_system" in before:
            ledger = conn.execute(
                "SELECT t.id FROM rw_catalog.rw_tables t JOIN rw_catalog.rw_schemas s ON t.schema_id = s.id "
                "WHERE s.name = 'cha_system' AND t.name = 'ledger'"
            ).fetchall()
            if ledger:
                for schema in new:
                    conn.execute(
                        sql.SQL('DELETE FROM "cha_system"."ledger" WHERE tenant = {}').format(
                            sql.Literal(schema)
                        )
                    )
                conn.execute("FLUSH")
        for schema in new:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
