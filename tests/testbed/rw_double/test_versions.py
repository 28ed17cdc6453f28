"""The double per RisingWave version, and the operator's statements on every supported version.

* ``version()`` answers in RisingWave's format for the imitated version, and the operator's
  parser reads it back;
* each version-dependent statement is rejected below the version that brought it, with
  RisingWave's error text, and accepted from it on;
* ``E'...'`` strings are rejected after PASSWORD and as a secret value on every version;
* the operator's catalog snapshot works on every supported version (it depends on no column that
  arrived after the floor);
* every statement the operator renders, for hostile credentials, is accepted by the double at the
  floor (2.3.0) and the newest known version (3.0.3), passes the project's SQL lint, never uses an
  ``E'...'`` string, and no display form contains any encoding of a credential.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging_analytics.catalog import CatalogSnapshot, TenantCatalog
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, RenderOptions, as_text, render
from charging_analytics.rw.capabilities import FLOOR, NEWEST_KNOWN, Version, capabilities_for, parse_version
from charging_analytics.rw.client import Endpoint, RisingWaveClient
from charging_analytics.rw.literal import rw_literal
from charging_analytics.spec import ChargingAnalyticsSpec
from testbed.specs import tenant_spec
from testbed.sqllint import lint
from tests.rw_double import RisingWaveDouble
from tests.rw_double.sqltext import tokenize

VERSIONS = ["2.2.0", "2.2.6", "2.3.0", "2.5.0", "2.6.0", "2.8.0", "3.0.0", "3.0.3"]


def _connect(double: RisingWaveDouble) -> psycopg.Connection[Any]:
    return psycopg.connect(double.dsn, autocommit=True, prepare_threshold=None)


@pytest.fixture(scope="module")
def doubles() -> Iterator[dict[str, RisingWaveDouble]]:
    started = {v: RisingWaveDouble(version=v, license=True).start() for v in VERSIONS}
    yield started
    for d in started.values():
        d.stop()


def _error(conn: psycopg.Connection[Any], statement: str) -> str | None:
    try:
        conn.execute(statement)
    except psycopg.Error as e:
        return e.diag.message_primary or str(e)
    return None


@pytest.mark.parametrize("version", VERSIONS)
def test_version_reports_risingwave_format_and_parses_back(
    doubles: dict[str, RisingWaveDouble], version: str
) -> None:
    with _connect(doubles[version]) as conn:
        row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    assert row[0] == f"PostgreSQL 13.14.0-RisingWave-{version} (unknown)"
    assert parse_version(row[0]) == Version.of(version)


# (name, since, setup statements, statement, error text before ``since``)
VERSIONED: list[tuple[str, str, list[str], str, str]] = [
    (
        "rw_secrets.schema_id",
        "2.3.0",
        [],
        "SELECT s.name, r.id, r.name FROM rw_catalog.rw_secrets r JOIN rw_catalog.rw_schemas s "
        "ON r.schema_id = s.id",
        "Item not found: Invalid column: schema_id",
    ),
    (
        "rw_materialized_views.schema_name",
        "3.0.0",
        [],
        "SELECT schema_name, name FROM rw_catalog.rw_materialized_views",
        "Item not found: Invalid column: schema_name",
    ),
    (
        "WAIT with a target",
        "3.0.0",
        ["CREATE TABLE {s}.w (id INT)", "CREATE MATERIALIZED VIEW {s}.wm AS SELECT id FROM {s}.w"],
        "WAIT MATERIALIZED VIEW {s}.wm",
        "expected end of statement, found: MATERIALIZED",
    ),
    (
        "jdbc user/password",
        "2.3.0",
        ["CREATE TABLE {s}.t (id VARCHAR PRIMARY KEY)"],
        "CREATE SINK {s}.k FROM {s}.t WITH (connector = 'jdbc', jdbc.url = 'jdbc:postgresql://h:5432/d', "
        "user = 'u', password = 'p', table.name = 't', type = 'upsert', primary_key = 'id')",
        "unknown field `user`",
    ),
    (
        "GRANT ON ALL VIEWS",
        "2.3.0",
        ["CREATE USER {s}_u WITH PASSWORD 'pw'"],
        "GRANT SELECT ON ALL VIEWS IN SCHEMA {s} TO {s}_u",
        "expected TO, found: VIEWS",
    ),
    (
        "generate_series over timestamptz",
        "2.3.0",
        [],
        "CREATE VIEW {s}.g AS SELECT * FROM generate_series(NOW() - INTERVAL '1 hour', NOW(), "
        "INTERVAL '1 minute')",
        "function generate_series(timestamp with time zone, timestamp with time zone, interval) "
        "does not exist",
    ),
    (
        "ALTER SOURCE ... CONNECTOR WITH",
        "2.6.0",
        [
            "CREATE SOURCE {s}.src (a INT) WITH (connector = 'kafka', topic = 't', "
            "properties.bootstrap.server = 'k:9092') FORMAT PLAIN ENCODE JSON"
        ],
        "ALTER SOURCE {s}.src CONNECTOR WITH (properties.sasl.username = 'u', "
        "properties.sasl.password = 'p')",
        "found: CONNECTOR",
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "since", "setup", "statement", "error"), VERSIONED, ids=[v[0] for v in VERSIONED]
)
def test_each_version_rejects_what_it_lacks_with_risingwaves_text(
    doubles: dict[str, RisingWaveDouble],
    version: str,
    name: str,
    since: str,
    setup: list[str],
    statement: str,
    error: str,
) -> None:
    schema = f"v_{uuid.uuid4().hex[:8]}"
    with _connect(doubles[version]) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        for stmt in setup:
            conn.execute(stmt.format(s=schema))
        message = _error(conn, statement.format(s=schema))
    if Version.of(version) < Version.of(since):
        assert message is not None, f"{name} accepted on {version}"
        assert error in message
    else:
        assert message is None, f"{name} rejected on {version}: {message}"


@pytest.mark.parametrize("version", ["2.3.0", "2.8.0", "3.0.3"])
def test_the_catalog_snapshot_reads_only_columns_every_supported_version_has(
    doubles: dict[str, RisingWaveDouble], version: str
) -> None:
    async def snapshot() -> CatalogSnapshot:
        async with RisingWaveClient(Endpoint.from_dsn(doubles[version].dsn)) as client:
            return await client.snapshot()

    snap = asyncio.run(snapshot())
    assert "public" in snap.schemas


ESCAPE_STRINGS = [
    ("CREATE USER {s}_e WITH PASSWORD E'a\\\\b'", "expected literal string, found: E'a\\\\b'"),
    (
        "CREATE SECRET {s}.sec WITH (backend = 'meta') AS E'a\\\\b'",
        "secret value should be quoted by ' or \"",
    ),
]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("statement", "error"), ESCAPE_STRINGS)
def test_escape_strings_are_rejected_in_password_and_secret_on_every_version(
    doubles: dict[str, RisingWaveDouble], version: str, statement: str, error: str
) -> None:
    schema = f"e_{uuid.uuid4().hex[:8]}"
    with _connect(doubles[version]) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        message = _error(conn, statement.format(s=schema))
        assert message is not None
        assert error in message
        # the same value as a plain literal is accepted, backslash kept
        plain = statement.replace("E'a\\\\b'", "'a\\b'").format(s=schema)
        assert _error(conn, plain) is None


def test_secret_value_keeps_backslashes_literally(doubles: dict[str, RisingWaveDouble]) -> None:
    double = doubles["2.3.0"]
    schema = f"b_{uuid.uuid4().hex[:8]}"
    value = "a\\b'c\\'"
    with _connect(double) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE SECRET {schema}.s WITH (backend = 'meta') AS " + rw_literal(value).as_string())
    assert double.secret_value(f"{schema}.s") == value


# --------------------------------------------------------------------------------------------
# Every statement the operator renders, with hostile credentials, on the floor and the newest
# --------------------------------------------------------------------------------------------

hostile = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=30),
    st.sampled_from(
        ["back\\slash", "\\'", "it's", "''", "$$", "$q$x$q$", "line\nbreak", "tab\there", "é☃\u2028", "\\\\n"]
    ),
)


def _spec(tenant: str) -> ChargingAnalyticsSpec:
    sasl = {
        "protocol": "SASL_PLAINTEXT",
        "saslMechanism": "SCRAM-SHA-512",
        "credentialsSecretRef": {"name": "kafka"},
    }
    postgres = {"host": "db", "database": "alerts", "credentialsSecretRef": {"name": "pg"}}
    return tenant_spec(
        tenant,
        bootstrap="kafka-0:9092",
        events_topic="ocpp.events",
        kafka={"security": sasl},
        alerts={"stalledSessionMinutes": None, "sinks": {"kafka": {"topic": "alerts"}, "postgres": postgres}},
        readOnlyUser={"enabled": True},
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(user=hostile, password=hostile, store=st.sampled_from(["inline", "risingwave"]))
@pytest.mark.parametrize("version", [str(FLOOR), str(NEWEST_KNOWN)])
def test_rendered_statements_with_hostile_credentials_are_accepted_on_supported_versions(
    doubles: dict[str, RisingWaveDouble], version: str, user: str, password: str, store: str
) -> None:
    tenant = f"h_{uuid.uuid4().hex[:10]}"
    spec = _spec(tenant)
    creds = Credentials(
        kafka=Credential(user, password),
        alerts_db=Credential(user + "_db", password + "_db"),
        reader=Credential(f"{tenant}_reader", password + "_ro"),
    )
    caps = capabilities_for(Version.of(version))
    objects = render(spec, RenderOptions(secret_store=store, credentials=creds, capabilities=caps))  # type: ignore[arg-type]
    plan = build_plan(objects, TenantCatalog(tenant, False), PlanOptions(ledger_exists=True))
    executable = [as_text(a.statement) for a in plan.actions]
    updates = [as_text(o.update_statement) for o in objects if o.update_statement is not None]
    for text in [*executable, *updates]:
        assert not [t.text for t in tokenize(text) if t.kind == "string" and t.text[0] in "eE"]
    with _connect(doubles[version]) as conn:
        for text in executable:
            assert _error(conn, text) is None, text.splitlines()[0]
        for text in updates:  # rotating in place is accepted too
            assert _error(conn, text) is None, text.splitlines()[0]
    in_place = [as_text(o.update_display) for o in objects if o.update_display is not None]
    report = lint([*(a.sql for a in plan.actions if a.kind != "Ledger"), *in_place])
    assert not report.violations, report.violations
    secrets = [user, password, user + "_db", password + "_db", password + "_ro"]

    def shown(objs: list[Any]) -> list[str]:
        """Everything a plan, a status, a log line or the CLI may show of the objects."""
        p = build_plan(objs, TenantCatalog(tenant, False), PlanOptions(ledger_exists=True))
        # the credential digest (salted scrypt, hex) and which roles were resolved differ by design
        plain = [replace(o, credential_digest="", unresolved=()) for o in objs]
        return [*(o.sql for o in objs), *p.statements(), *(repr(o) for o in plain), *map(repr, p.actions)]

    without = render(spec, RenderOptions(secret_store=store, capabilities=caps))  # type: ignore[arg-type]
    baseline = shown(without)
    assert shown(objects) == baseline  # nothing shown depends on a credential
    sent = " ".join(executable + updates)
    assert all(rw_literal(secret).as_string() in sent for secret in secrets)


def test_nul_in_a_credential_is_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="NUL"):
        rw_literal("pass\0word")
    creds = Credentials(kafka=Credential("u", "p\0"), alerts_db=Credential("u", "p"))
    with pytest.raises(ValueError, match="NUL"):
        render(_spec("nul_tenant"), RenderOptions(credentials=creds))


def test_cli_plan_refuses_a_risingwave_below_the_floor(
    doubles: dict[str, RisingWaveDouble], capsys: pytest.CaptureFixture[str]
) -> None:
    from charging_analytics import cli

    example = Path(__file__).resolve().parents[3] / "examples" / "acme.yaml"
    doubles["2.2.6"].clear_statements()
    code = cli.main(["plan", "-f", str(example), "--dsn", doubles["2.2.6"].dsn])
    err = capsys.readouterr().err
    assert code == 1
    assert "is version 2.2.6" in err
    assert "supports RisingWave 2.3.0 and newer" in err
    assert not [s for s in doubles["2.2.6"].statements if "rw_catalog" in s.lower()]
