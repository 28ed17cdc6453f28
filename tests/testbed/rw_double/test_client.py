"""The RisingWave client (``charging_analytics.rw.client``) against the double (or live RisingWave)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from charging_analytics.catalog import CatalogSnapshot, LedgerEntry, definition_fingerprint
from charging_analytics.ledger import OWNER_ROW
from charging_analytics.rw.client import (
    ClientOptions,
    Endpoint,
    RisingWaveClient,
    RisingWaveStatementError,
    RisingWaveStatementTimeout,
    RisingWaveUnavailable,
    build_snapshot,
    safe_message,
    statement_kind,
)
from testbed.polling import wait_for_async
from tests.rw_double import RisingWaveDouble
from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double import pipeline_sql as p

T = TypeVar("T")


def with_client(
    target: RisingWaveTarget | RisingWaveDouble,
    scenario: Callable[[RisingWaveClient], Awaitable[T]],
    **options: Any,
) -> T:
    endpoint = Endpoint.from_dsn(target.dsn)

    async def main() -> T:
        async with RisingWaveClient(endpoint, ClientOptions(**options)) as client:
            return await scenario(client)

    return asyncio.run(main())


# ----------------------------------------------------------------------------- Endpoint


def test_endpoint_parses_a_full_dsn() -> None:
    endpoint = Endpoint.from_dsn("postgresql://ops:s%40cret@rw.example:4567/analytics?sslmode=require")
    assert endpoint == Endpoint("rw.example", 4567, "analytics", "ops", "s@cret", "require")
    assert endpoint.key == "rw.example:4567/analytics"


def test_endpoint_defaults_follow_risingwave() -> None:
    """docs/risingwave.md §13: port 4566, database dev, user root without password."""
    endpoint = Endpoint.from_dsn("postgresql://rw-frontend")
    assert (endpoint.port, endpoint.database, endpoint.user, endpoint.password) == (4566, "dev", "root", "")
    assert endpoint.sslmode == "prefer"


def test_endpoint_never_shows_its_password() -> None:
    endpoint = Endpoint.from_dsn("postgresql://ops:hunter2@rw:4566/dev")
    assert "hunter2" not in repr(endpoint)
    assert "hunter2" not in str(endpoint)
    with pytest.raises(ValueError, match="port") as info:
        Endpoint.from_dsn("postgresql://ops:hunter2@rw:notaport/dev")
    assert "hunter2" not in str(info.value)


# ----------------------------------------------------------------------------- snapshot


def test_snapshot_of_an_empty_database(risingwave: RisingWaveTarget) -> None:
    snapshot = with_client(risingwave, lambda c: c.snapshot())
    assert snapshot.endpoint == risingwave.endpoint.key
    assert {"public", "rw_catalog"} <= snapshot.schemas
    assert "root" in snapshot.users
    assert snapshot.taken_at > 0
    if not risingwave.live:  # a live database may already hold other tenants
        assert snapshot.objects == ()
        assert snapshot.ledger_exists is False
        assert snapshot.ledger == ()
        assert snapshot.owners == {}


def _ledgered_pipeline(tenant: str, *more_rows: str) -> list[str]:
    """The base pipeline with the ledger and rows for its schema, source and sessions view, then
    ``more_rows`` and a FLUSH."""
    return [
        *p.base_pipeline(tenant),
        *p.ledger_stmts(),
        *p.ledger_row(tenant, "", "Schema", "h-schema"),
        *p.ledger_row(tenant, "ocpp_events", "Source", "h-src"),
        *p.ledger_row(tenant, "sessions", "MaterializedView", "h-sessions", "ocpp_events"),
        *more_rows,
        "FLUSH",
    ]


async def _execute_all(client: RisingWaveClient, statements: list[str]) -> None:
    for stmt in statements:
        await client.execute(stmt)


def test_snapshot_reads_objects_ledger_and_owners(risingwave: RisingWaveTarget, rw_schema: str) -> None:
    tenant = rw_schema
    statements = _ledgered_pipeline(
        tenant,
        *p.ledger_row(tenant, "alerts_to_kafka", "Sink", "h-sink", "alerts"),
        *p.ledger_row(tenant, OWNER_ROW, "Schema", "team-a/acme"),
    )

    async def scenario(client: RisingWaveClient) -> Any:
        await _execute_all(client, statements)
        shown = await client.query(
            "SELECT r.id, r.definition FROM rw_catalog.rw_materialized_views r JOIN rw_catalog.rw_schemas s "
            f"ON r.schema_id = s.id WHERE s.name = '{tenant}' AND r.name = 'sessions'"
        )
        return await client.snapshot(), shown[0]

    snapshot, (sessions_id, sessions_definition) = with_client(risingwave, scenario)
    assert tenant in snapshot.schemas
    assert snapshot.ledger_exists
    assert snapshot.owners[tenant] == "team-a/acme"
    catalog = snapshot.tenant(tenant)
    assert catalog.schema_exists
    assert catalog.owner == "team-a/acme"
    kinds = {name: obj.kind for name, obj in catalog.objects.items()}
    assert kinds == {
        "ocpp_events": "Source",
        "sessions": "MaterializedView",
        "completed_sessions": "MaterializedView",
        "alerts": "MaterializedView",
        "alerts_to_kafka": "Sink",
    }
    assert all(obj.id is not None for obj in catalog.objects.values())
    assert sessions_definition.startswith("CREATE MATERIALIZED VIEW")
    # the definition is kept only as its fingerprint
    expected = definition_fingerprint("MaterializedView", sessions_id, sessions_definition)
    assert catalog.objects["sessions"].fingerprint == expected
    assert catalog.ledger["sessions"] == LedgerEntry(
        tenant, "sessions", "MaterializedView", "h-sessions", ("ocpp_events",)
    )
    assert catalog.ledger[""].kind == "Schema"
    assert OWNER_ROW not in catalog.ledger
    assert any(
        o.schema == "cha_system" and o.name == "ledger" and o.kind == "Table" for o in snapshot.objects
    )


def test_a_snapshot_read_in_batches_keeps_every_row_of_every_batch(
    risingwave: RisingWaveTarget, rw_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relations and ledger rows are converted a batch at a time: batches of 2 rows, many per
    read, give the snapshot that one batch of all the rows gives."""
    from charging_analytics.rw import client as rw_client

    tenant = rw_schema

    async def scenario(client: RisingWaveClient) -> Any:
        await _execute_all(client, _ledgered_pipeline(tenant))
        whole = await client.snapshot()
        monkeypatch.setattr(rw_client, "ROWS_PER_FETCH", 2)
        return whole, await client.snapshot()

    whole, batched = with_client(risingwave, scenario)
    assert len(whole.tenant(tenant).objects) == 5
    assert len(whole.tenant(tenant).ledger) == 3
    assert (batched.objects, batched.ledger, batched.schemas) == (whole.objects, whole.ledger, whole.schemas)


def test_a_snapshot_shares_the_previous_snapshots_unchanged_objects_and_entries(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    """What still refers to the previous snapshot (drift passes' reports) then holds no second
    copy of the catalog; a changed ledger entry is the new one."""
    tenant = rw_schema

    async def scenario(client: RisingWaveClient) -> Any:
        await _execute_all(client, _ledgered_pipeline(tenant))
        first = await client.snapshot()
        changed = p.ledger_row(tenant, "sessions", "MaterializedView", "h-sessions-2", "ocpp_events")
        await _execute_all(client, [*changed, "FLUSH"])
        return first, await client.snapshot(previous=first)

    first, second = with_client(risingwave, scenario)
    assert second.objects == first.objects
    assert all(new is old for new, old in zip(second.objects, first.objects, strict=True))
    before = {e.name: e for e in first.ledger}
    after = {e.name: e for e in second.ledger}
    assert after["sessions"].hash == "h-sessions-2"
    assert before["sessions"].hash == "h-sessions"
    assert {name for name in after if after[name] is before[name]} == set(after) - {"sessions"}


def test_snapshot_lists_secrets(risingwave: RisingWaveTarget, rw_schema: str) -> None:
    risingwave.license = True

    async def scenario(client: RisingWaveClient) -> Any:
        await client.execute(p.schema_stmt(rw_schema))
        await client.execute(
            f"CREATE SECRET IF NOT EXISTS {p.q(rw_schema, 'kafka_pw')} WITH (backend = 'meta') AS 'x'"
        )
        return await client.snapshot()

    snapshot = with_client(risingwave, scenario)
    secrets = [o for o in snapshot.objects if o.kind == "Secret"]
    assert [(s.schema, s.name) for s in secrets] == [(rw_schema, "kafka_pw")]


def test_snapshot_reports_ddl_progress_of_background_jobs(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    """docs/risingwave.md §12: a background MV shows in rw_ddl_progress while it backfills."""
    risingwave.require_double("controls backfill")

    async def scenario(client: RisingWaveClient) -> Any:
        for stmt in p.base_pipeline(rw_schema):
            await client.execute(stmt)
        risingwave.set_backfill(seconds=30)
        await client.execute(p.revenue_stmt(rw_schema))
        return await client.snapshot()

    snapshot = with_client(risingwave, scenario, background_ddl=True)
    progress = snapshot.tenant(rw_schema).ddl_progress
    assert set(progress) == {"station_revenue"}
    assert progress["station_revenue"].endswith("%")


def test_ddl_progress_of_unlisted_jobs_is_named_from_the_statement() -> None:
    snapshot = build_snapshot(
        "h:4566/dev",
        schema_rows=[(1, "acme")],
        relation_rows=[],
        secret_rows=[],
        user_rows=[("root",)],
        progress_rows=[(77, 'CREATE MATERIALIZED VIEW "acme"."Sessions" AS SELECT 1', "12.50%")],
        ledger_rows=[],
        ledger_exists=False,
    )
    assert snapshot.ddl_progress == {"acme.Sessions": "12.50%"}


def _rows_read(
    relations: list[tuple[Any, ...]],
    secrets: list[tuple[Any, ...]],
    ledger_rows: list[tuple[Any, ...]],
    previous: CatalogSnapshot | None = None,
) -> CatalogSnapshot:
    return build_snapshot(
        "h:4566/dev",
        schema_rows=[(1, "acme")],
        relation_rows=relations,
        secret_rows=secrets,
        user_rows=[("root",)],
        progress_rows=[],
        ledger_rows=ledger_rows,
        ledger_exists=True,
        previous=previous,
    )


def test_a_read_reuses_only_the_previous_objects_and_entries_whose_every_field_is_unchanged() -> None:
    """Reuse is found by schema and name, and then every field must match the row: a changed
    definition, id or kind, a secret of a relation's name, a changed hash, kind or dependency
    list, or a changed owner makes a new object or entry, equal to one read without a previous."""
    relations = [
        ("MaterializedView", "acme", 11, "sessions", "CREATE MATERIALIZED VIEW sessions AS SELECT 1"),
        ("MaterializedView", "acme", 12, "energy", "CREATE MATERIALIZED VIEW energy AS SELECT 1"),
        ("MaterializedView", "acme", 13, "revenue", "CREATE MATERIALIZED VIEW revenue AS SELECT 1"),
        ("Source", "acme", 14, "events", "CREATE SOURCE events"),
    ]
    ledger_rows = [
        ("acme", OWNER_ROW, "Schema", "default/acme", ""),
        ("acme", "sessions", "MaterializedView", "h1", "events"),
        ("acme", "energy", "MaterializedView", "h2", "events"),
        ("acme", "revenue", "MaterializedView", "h3", "events"),
        ("acme", "events", "Source", "h4", ""),
    ]
    first = _rows_read(relations, [("acme", 20, "events_key")], ledger_rows)
    unchanged = _rows_read(relations, [("acme", 20, "events_key")], ledger_rows, previous=first)
    assert all(new is old for new, old in zip(unchanged.objects, first.objects, strict=True))
    assert all(new is old for new, old in zip(unchanged.ledger, first.ledger, strict=True))
    assert unchanged.users is first.users  # every tenant's slice compares it by identity

    changed_relations = [
        relations[0],
        ("MaterializedView", "acme", 12, "energy", "CREATE MATERIALIZED VIEW energy AS SELECT 2"),
        ("MaterializedView", "acme", 31, "revenue", "CREATE MATERIALIZED VIEW revenue AS SELECT 1"),
        ("Table", "acme", 14, "events", "CREATE SOURCE events"),
    ]
    changed_ledger = [
        ("acme", OWNER_ROW, "Schema", "other/acme", ""),
        ledger_rows[1],
        ("acme", "energy", "MaterializedView", "h2-new", "events"),
        ("acme", "revenue", "MaterializedView", "h3", "events,sessions"),
        ("acme", "events", "Table", "h4", ""),
    ]
    secrets = [("acme", 20, "sessions")]  # a secret named like a relation
    second = _rows_read(changed_relations, secrets, changed_ledger, previous=first)
    fresh = _rows_read(changed_relations, secrets, changed_ledger)
    assert (second.objects, second.ledger, second.owners) == (fresh.objects, fresh.ledger, fresh.owners)
    reused_objects = [new.name for new in second.objects if any(new is old for old in first.objects)]
    reused_entries = [new.name for new in second.ledger if any(new is old for old in first.ledger)]
    assert reused_objects == ["sessions"]
    assert reused_entries == ["sessions"]
    assert second.owners == {"acme": "other/acme"}


# ----------------------------------------------------------------------------- execute


def test_execute_runs_in_autocommit_without_begin(risingwave: RisingWaveTarget, rw_schema: str) -> None:
    """docs/risingwave.md §13: no BEGIN is sent (RisingWave would ignore it and apply DDL at once)."""
    double = risingwave.require_double("inspects the statements log")

    async def scenario(client: RisingWaveClient) -> None:
        for stmt in p.base_pipeline(rw_schema):
            await client.execute(stmt)

    with_client(risingwave, scenario)
    statements = [s.upper() for s in double.statements]
    assert not any(s.startswith(("BEGIN", "START TRANSACTION", "COMMIT")) for s in statements)
    assert any(s.startswith("SET STATEMENT_TIMEOUT") for s in statements)
    assert "SET BACKGROUND_DDL = FALSE" in statements


def test_connections_never_prepare_statements(risingwave: RisingWaveTarget) -> None:
    """docs/risingwave.md §13: prepare_threshold=None keeps every statement on the simple protocol."""
    double = risingwave.require_double("inspects the protocol used")

    async def scenario(client: RisingWaveClient) -> None:
        for _ in range(10):
            await client.query("SELECT name FROM rw_catalog.rw_users")
            await client.snapshot()

    with_client(risingwave, scenario, pool_max=1)
    assert double.records
    assert {r.protocol for r in double.records} == {"simple"}


def test_background_ddl_option_is_set_on_every_connection(risingwave: RisingWaveTarget) -> None:
    """docs/risingwave.md §12: BACKGROUND_DDL is per session; set it on every pooled connection."""

    async def scenario(client: RisingWaveClient) -> Any:
        return await client.query("SHOW background_ddl")

    assert with_client(risingwave, scenario, background_ddl=True) == [("true",)]


def test_statement_timeout_falls_back_to_seconds_on_older_risingwave() -> None:
    """A unit ('30000ms') is required since RisingWave PR #24633; before it, bare seconds."""
    with RisingWaveDouble(statement_timeout_units="legacy") as double:

        async def scenario(client: RisingWaveClient) -> Any:
            return await client.query("SHOW statement_timeout")

        assert with_client(double, scenario, statement_timeout=30) == [("30",)]
        sets = {(r.sql, r.outcome) for r in double.records if r.sql.startswith("SET statement_timeout")}
        assert sets == {("SET statement_timeout = '30000ms'", "error"), ("SET statement_timeout = 30", "ok")}


def test_pool_checks_a_connection_only_after_an_error_or_a_long_idle(
    risingwave_double: RisingWaveDouble, rw_schema: str
) -> None:
    """A check per checkout doubled every round trip; one after a failure (or a long idle, here
    ``check_idle_seconds=0``) is what finds a dead connection before a statement does."""

    async def busy(client: RisingWaveClient) -> tuple[int, int]:
        risingwave_double.clear_statements()
        await client.execute(f'CREATE SCHEMA IF NOT EXISTS "{rw_schema}"')
        for _ in range(5):
            await client.query("SELECT 1")
        quiet = risingwave_double.empty_queries
        with pytest.raises(RisingWaveStatementError):
            await client.execute("CREATE TABLE nowhere.t (a INT)")
        await client.query("SELECT 1")
        return quiet, risingwave_double.empty_queries - quiet

    quiet, after_error = with_client(risingwave_double, busy, pool_max=1)
    assert quiet == 0
    assert after_error == 1

    async def idle(client: RisingWaveClient) -> int:
        await client.query("SELECT 1")
        risingwave_double.clear_statements()
        for _ in range(3):
            await client.query("SELECT 1")
        return risingwave_double.empty_queries

    assert with_client(risingwave_double, idle, pool_max=1, check_idle_seconds=0.0) == 3


def test_schema_objects_reads_one_schemas_relations_and_secrets_in_one_statement(
    risingwave_double: RisingWaveDouble, rw_schema: str
) -> None:
    risingwave_double.license = True
    risingwave_double.execute(
        f'CREATE SCHEMA "{rw_schema}"; CREATE TABLE "{rw_schema}".t (a INT); '
        f"CREATE SECRET \"{rw_schema}\".s WITH (backend = 'meta') AS 'x'; CREATE TABLE public.other (a INT)"
    )

    async def read(client: RisingWaveClient) -> list[tuple[str, str, str | None]]:
        await client.ping()  # the pool's connections are open and configured
        risingwave_double.clear_statements()
        found = await client.schema_objects(rw_schema)
        assert len(risingwave_double.statements) == 1
        return sorted((o.kind, o.name, o.fingerprint) for o in found if o.id is not None)

    rows = with_client(risingwave_double, read, pool_max=1)
    assert [(kind, name) for kind, name, _ in rows] == [("Secret", "s"), ("Table", "t")]
    assert all(fingerprint for _, _, fingerprint in rows)  # the definitions, folded in when read


def test_schema_reads_asked_for_together_share_one_statement(
    risingwave_double: RisingWaveDouble, rw_schema: str
) -> None:
    """Applies that finish together pay one pass over the catalog, and each gets its own schema's
    objects (a schema with none gets none)."""
    schemas = [f"{rw_schema}_{i}" for i in range(3)]
    risingwave_double.execute(
        "; ".join(f'CREATE SCHEMA "{s}"; CREATE TABLE "{s}".t{i} (a INT)' for i, s in enumerate(schemas))
    )

    async def read(client: RisingWaveClient) -> list[list[tuple[str, str]]]:
        await client.ping()
        risingwave_double.clear_statements()
        found = await asyncio.gather(*(client.schema_objects(s) for s in [*schemas, f"{rw_schema}_none"]))
        assert len(risingwave_double.statements) == 1
        return [sorted((o.schema, o.name) for o in objects) for objects in found]

    assert with_client(risingwave_double, read, pool_max=1) == [
        [(schemas[0], "t0")],
        [(schemas[1], "t1")],
        [(schemas[2], "t2")],
        [],
    ]


def test_query_returns_rows_and_ping_succeeds(risingwave: RisingWaveTarget) -> None:
    async def scenario(client: RisingWaveClient) -> Any:
        await client.ping()
        return await client.query("SELECT name FROM rw_catalog.rw_users WHERE name = 'root'")

    assert with_client(risingwave, scenario) == [("root",)]


def test_capabilities_are_derived_once_per_version_reading(risingwave: RisingWaveTarget) -> None:
    """Every pass asks for them; the answer changes only with what a new connection reads."""

    async def scenario(client: RisingWaveClient) -> Any:
        first = await client.capabilities()
        again = await client.capabilities()
        assert again is first
        await client.close()  # a new pool: its connections read the version anew
        await client.open()
        await client.ping()
        return first, await client.capabilities()

    first, after = with_client(risingwave, scenario)
    assert after == first
    assert after is not first


def test_secrets_available_follows_the_license(risingwave: RisingWaveTarget) -> None:
    """docs/risingwave.md §7: secrets need a license; probe leaves nothing behind."""
    risingwave.license = False
    assert with_client(risingwave, lambda c: c.secrets_available()) is False
    risingwave.license = True
    assert with_client(risingwave, lambda c: c.secrets_available()) is True
    assert not [o for o in risingwave.objects() if o.kind == "secret"]


# ----------------------------------------------------------------------------- failures


def test_unreachable_risingwave_raises_unavailable_within_the_connect_timeout(
    risingwave: RisingWaveTarget,
) -> None:
    risingwave.unreachable = True
    started = time.monotonic()
    with pytest.raises(RisingWaveUnavailable) as info:
        with_client(risingwave, lambda c: c.snapshot(), connect_timeout=1.0)
    assert time.monotonic() - started < 3.0
    assert info.value.retryable


def test_hanging_risingwave_raises_unavailable_within_the_connect_timeout(
    risingwave: RisingWaveTarget,
) -> None:
    risingwave.unreachable = "hang"
    started = time.monotonic()
    with pytest.raises(RisingWaveUnavailable):
        with_client(risingwave, lambda c: c.execute("FLUSH"), connect_timeout=1.0)
    assert time.monotonic() - started < 4.0


def test_connection_lost_mid_statement_is_unavailable(risingwave: RisingWaveTarget, rw_schema: str) -> None:
    risingwave.fail_next("CREATE SCHEMA", disconnect=True, after=True)
    with pytest.raises(RisingWaveUnavailable):
        with_client(risingwave, lambda c: c.execute(p.schema_stmt(rw_schema)))
    assert rw_schema in risingwave.schemas()  # the DDL happened before the crash


def test_client_recovers_after_risingwave_comes_back(risingwave: RisingWaveTarget) -> None:
    async def scenario(client: RisingWaveClient) -> Any:
        await client.ping()
        risingwave.unreachable = True
        with pytest.raises(RisingWaveUnavailable):
            await client.ping()
        risingwave.unreachable = False
        return await wait_for_async(
            lambda: client.query("SELECT 1"), 10, "a query answered", retry_on=(RisingWaveUnavailable,)
        )

    assert with_client(risingwave, scenario, connect_timeout=1.0) == [(1,)]


def test_rejected_statement_raises_statement_error(risingwave: RisingWaveTarget, rw_schema: str) -> None:
    async def scenario(client: RisingWaveClient) -> None:
        await client.execute(p.schema_stmt(rw_schema))
        await client.execute(p.sessions_stmt(rw_schema))  # the source does not exist

    with pytest.raises(RisingWaveStatementError) as info:
        with_client(risingwave, scenario)
    assert info.value.statement_kind == "CREATE MATERIALIZED VIEW"
    assert "not found" in info.value.message
    assert not info.value.retryable


def test_injected_failure_keeps_its_sqlstate(risingwave: RisingWaveTarget) -> None:
    risingwave.fail_next("FLUSH", "disk full", sqlstate="53100")
    with pytest.raises(RisingWaveStatementError) as info:
        with_client(risingwave, lambda c: c.execute("FLUSH"))
    assert info.value.sqlstate == "53100"
    assert info.value.retryable


def test_slow_read_beyond_statement_timeout_is_cancelled(risingwave: RisingWaveTarget) -> None:
    async def scenario(client: RisingWaveClient) -> Any:
        await client.ping()
        risingwave.latency = 3.0
        return await client.query("SELECT 1")

    started = time.monotonic()
    with pytest.raises(RisingWaveStatementTimeout) as info:
        with_client(risingwave, scenario, statement_timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert info.value.sqlstate == "57014"
    assert info.value.retryable


def test_slow_ddl_beyond_ddl_timeout_is_cancelled_and_not_applied(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    """The client cancels the statement (CancelRequest); the double then does not apply it."""

    async def scenario(client: RisingWaveClient) -> None:
        await client.ping()
        risingwave.latency = 5.0
        await client.execute(p.schema_stmt(rw_schema))

    started = time.monotonic()
    with pytest.raises(RisingWaveStatementTimeout):
        with_client(risingwave, scenario, ddl_timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert rw_schema not in risingwave.schemas()
    assert risingwave.records[-1].outcome == "cancelled"


def test_errors_never_contain_a_password_from_the_statement(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    """A parse error echoes the statement line; the client must not pass the password on."""
    password = "Tr0ub4dor&3-not-for-logs"
    bad_sink = p.jdbc_sink_stmt(rw_schema, password).replace(
        f"FROM {p.q(rw_schema, 'alerts')}", f"FROM (SELECT * FROM {p.q(rw_schema, 'alerts')})"
    )

    async def scenario(client: RisingWaveClient) -> None:
        for stmt in p.base_pipeline(rw_schema):
            await client.execute(stmt)
        await client.execute(bad_sink, sensitive=(password,))

    with pytest.raises(RisingWaveStatementError) as info:
        with_client(risingwave, scenario)
    error = info.value
    for text in (str(error), repr(error), error.message, str(error.args)):
        assert password not in text
    assert error.__cause__ is None
    assert error.__context__ is None
    assert error.statement_kind == "CREATE SINK"


def test_duplicate_user_error_does_not_leak_the_password(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    statement = f"CREATE USER \"{rw_schema}_u\" WITH PASSWORD 'pa55-w0rd!'"

    async def scenario(client: RisingWaveClient) -> None:
        await client.execute(statement, sensitive=("pa55-w0rd!",))
        try:
            await client.execute(statement, sensitive=("pa55-w0rd!",))
        finally:
            await client.execute(f'DROP USER "{rw_schema}_u"')

    with pytest.raises(RisingWaveStatementError) as info:
        with_client(risingwave, scenario)
    assert "pa55-w0rd!" not in str(info.value)


# ----------------------------------------------------------------------------- pure helpers


@given(
    password=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\0"),
        min_size=4,
        max_size=40,
    )
)
def test_safe_message_removes_every_echo_of_a_sent_credential(password: str) -> None:
    """Whatever the server does with the value (raw, SQL-quoted, E'...'-escaped, JSON, Debug),
    the kept message does not contain it; the server's text is never trusted."""
    escaped = password.replace("\\", "\\\\").replace("'", "''")
    echoes = [
        f"sql parser error: expected literal string, found: E'{escaped}'",
        f"LINE 1: CREATE USER u WITH PASSWORD '{password}'\n        ^",
        f"connector error: {json.dumps(password)} rejected",
        f"invalid value {password!r}",
        f"secret {password} is wrong",
    ]
    for echo in echoes:
        kept = safe_message(echo, [password])
        assert password not in kept
        assert escaped not in kept


def test_safe_message_keeps_text_without_credentials() -> None:
    message = "table or source not found: a"
    assert safe_message(message, ["pw123456"]) == message


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ('CREATE MATERIALIZED VIEW IF NOT EXISTS "a"."b" AS SELECT 1', "CREATE MATERIALIZED VIEW"),
        ('CREATE SINK IF NOT EXISTS "a"."b" FROM "a"."c" WITH (x = 1)', "CREATE SINK"),
        ('DROP SOURCE IF EXISTS "a"."b"', "DROP SOURCE"),
        ('ALTER MATERIALIZED VIEW "a"."x" SWAP WITH "a"."y"', "ALTER MATERIALIZED VIEW"),
        ("CREATE USER \"r\" WITH PASSWORD 'secret'", "CREATE USER"),
        ('INSERT INTO "cha_system"."ledger" (tenant) VALUES (\'a\')', "INSERT"),
        ("FLUSH", "FLUSH"),
        ('GRANT USAGE ON SCHEMA "acme" TO "r"', "GRANT"),
    ],
)
def test_statement_kind_is_a_short_secret_free_label(statement: str, kind: str) -> None:
    assert statement_kind(statement) == kind
