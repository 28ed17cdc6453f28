"""The RisingWave double behaves as RisingWave is documented to.

Each test cites the section of ``docs/risingwave.md`` it checks. The same tests run against a
live RisingWave when ``RISINGWAVE_DSN`` is set (tests that need the double's knobs skip there),
which is how the double is kept honest. Messages are matched by substring: RisingWave wraps them
in an error chain.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double import pipeline_sql as p


class Conn:
    """A psycopg connection that keeps the notices it received."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.notices: list[str] = []
        conn.add_notice_handler(lambda diag: self.notices.append(diag.message_primary or ""))

    def run(self, *statements: str) -> None:
        for stmt in statements:
            self.conn.execute(stmt.encode())

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return self.conn.execute(query.encode()).fetchall()

    def error(self, statement: str) -> psycopg.Error:
        with pytest.raises(psycopg.Error) as info:
            self.conn.execute(statement.encode())
        return info.value

    def relations(self, schema: str) -> dict[str, str]:
        """name -> kind letter for the schema's relations (sources, MVs, views, sinks, tables)."""
        out: dict[str, str] = {}
        for table, kind in (
            ("rw_sources", "source"),
            ("rw_materialized_views", "mv"),
            ("rw_views", "view"),
            ("rw_sinks", "sink"),
            ("rw_tables", "table"),
        ):
            for (name,) in self.rows(
                f"SELECT r.name FROM rw_catalog.{table} r JOIN rw_catalog.rw_schemas s "
                f"ON r.schema_id = s.id WHERE s.name = '{schema}'"
            ):
                out[name] = kind
        return out

    def definition(self, schema: str, name: str) -> str:
        rows = self.rows(
            "SELECT r.definition FROM rw_catalog.rw_materialized_views r JOIN rw_catalog.rw_schemas s "
            f"ON r.schema_id = s.id WHERE s.name = '{schema}' AND r.name = '{name}'"
        )
        assert rows, f"{schema}.{name} not found"
        return str(rows[0][0])


@pytest.fixture
def rw(risingwave: RisingWaveTarget) -> Iterator[Conn]:
    with risingwave.connect() as conn:
        yield Conn(conn)


@pytest.fixture
def pipeline(rw: Conn, rw_schema: str) -> str:
    rw.run(*p.base_pipeline(rw_schema))
    return rw_schema


def message(error: psycopg.Error) -> str:
    return error.diag.message_primary or str(error)


# ----------------------------------------------------------------------------- §9 IF NOT EXISTS


def test_creating_an_existing_relation_without_if_not_exists_fails(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §9: only IF NOT EXISTS makes a duplicate CREATE succeed."""
    statement = p.sessions_stmt(pipeline).replace(" IF NOT EXISTS", "")
    error = rw.error(statement)
    assert "sessions" in message(error)
    assert "exists" in message(error)


def test_if_not_exists_on_an_existing_relation_keeps_it_unchanged_with_a_notice(
    rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §9: IF NOT EXISTS does not compare definitions; the old query stays."""
    before = rw.definition(pipeline, "completed_sessions")
    different = p.completed_stmt(pipeline).replace("stops > 0", "stops > 1")
    rw.run(different)
    assert rw.notices, "expected a notice that the relation exists"
    assert rw.definition(pipeline, "completed_sessions") == before
    assert "stops > 0" in before


def test_stored_definitions_are_reprinted_without_if_not_exists(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §11: the stored definition is the normalised statement, IF NOT EXISTS stripped."""
    definition = rw.definition(pipeline, "sessions")
    assert definition.startswith("CREATE MATERIALIZED VIEW")
    assert "IF NOT EXISTS" not in definition.upper()
    assert "ocpp_events" in definition


def test_a_view_over_a_missing_relation_is_rejected(rw: Conn, rw_schema: str) -> None:
    """A query binds its relations at CREATE time ("table or source not found")."""
    rw.run(p.schema_stmt(rw_schema))
    error = rw.error(p.sessions_stmt(rw_schema))
    assert "not found" in message(error)
    assert "ocpp_events" in message(error)


# ----------------------------------------------------------------------------- §9 DROP / CASCADE


def test_dropping_a_relation_with_dependents_is_denied_naming_them(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §9: 'Permission denied: <kind> used by N other objects.' + DETAIL + HINT."""
    error = rw.error(f"DROP MATERIALIZED VIEW {p.q(pipeline, 'sessions')}")
    text = str(error)
    assert "Permission denied: materialized view used by 2 other objects." in text
    assert f"materialized view {pipeline}.completed_sessions depends on it" in text
    assert f"materialized view {pipeline}.alerts depends on it" in text
    assert "Use DROP ... CASCADE to drop the dependent objects too." in text
    assert "sessions" in rw.relations(pipeline)


def test_drop_cascade_removes_dependents_recursively(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §9: CASCADE drops the dependents recursively (alerts -> sink too)."""
    rw.run(f"DROP MATERIALIZED VIEW {p.q(pipeline, 'sessions')} CASCADE")
    assert rw.relations(pipeline) == {"ocpp_events": "source"}


def test_drop_if_exists_of_a_missing_relation_only_notices(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §9: DROP ... IF EXISTS on a missing object succeeds."""
    rw.run(f"DROP SINK IF EXISTS {p.q(pipeline, 'nope')}")
    assert rw.notices


def test_dropping_a_schema_with_objects_needs_cascade(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §8: DROP SCHEMA [IF EXISTS] name [CASCADE] (CASCADE since v2.3)."""
    rw.error(f'DROP SCHEMA "{pipeline}"')
    rw.run(f'DROP SCHEMA "{pipeline}" CASCADE')
    assert not rw.rows(f"SELECT id FROM rw_catalog.rw_schemas WHERE name = '{pipeline}'")


# ----------------------------------------------------------------------------- §10/§11 ALTER


def test_swap_exchanges_names_but_dependents_stay_on_the_same_object(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §10 (SWAP WITH) and §11 (definitions rewritten on renames).

    Dependents are bound to objects, not names: after the swap, completed_sessions still reads from
    the old object, which is now called sessions__shadow, so dropping the shadow needs CASCADE.
    """
    rw.run(p.sessions_stmt(pipeline, name="sessions__shadow"))
    rw.run(
        f"ALTER MATERIALIZED VIEW {p.q(pipeline, 'sessions')} SWAP WITH {p.q(pipeline, 'sessions__shadow')}"
    )
    completed = rw.definition(pipeline, "completed_sessions")
    assert "sessions__shadow" in completed
    error = rw.error(f"DROP MATERIALIZED VIEW {p.q(pipeline, 'sessions__shadow')}")
    assert f"{pipeline}.completed_sessions depends on it" in str(error)
    rw.run(f"DROP MATERIALIZED VIEW {p.q(pipeline, 'sessions__shadow')} CASCADE")
    assert set(rw.relations(pipeline)) == {"ocpp_events", "sessions"}


def test_swap_needs_two_objects_of_the_same_kind(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §10: both objects must be the same kind."""
    error = rw.error(
        f"ALTER MATERIALIZED VIEW {p.q(pipeline, 'sessions')} SWAP WITH {p.q(pipeline, 'ocpp_events')}"
    )
    assert "not found" in message(error)


def test_rename_rewrites_the_definitions_of_dependents(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §11: definitions are rewritten on renames of dependencies."""
    rw.run(f"ALTER MATERIALIZED VIEW {p.q(pipeline, 'alerts')} RENAME TO alerts_v2")
    sinks = rw.rows(
        "SELECT r.definition FROM rw_catalog.rw_sinks r JOIN rw_catalog.rw_schemas s "
        f"ON r.schema_id = s.id WHERE s.name = '{pipeline}'"
    )
    assert "alerts_v2" in sinks[0][0]


# ----------------------------------------------------------------------------- §3 / §4 queries


def test_now_in_a_materialized_view_select_list_is_rejected(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §4: NOW() only in WHERE/HAVING/ON/FROM of streaming queries."""
    error = rw.error(
        f"CREATE MATERIALIZED VIEW {p.q(pipeline, 'bad')} AS SELECT session_id, NOW() AS seen "
        f"FROM {p.q(pipeline, 'ocpp_events')}"
    )
    assert "`NOW()` function is only allowed in `WHERE`, `HAVING`, `ON` and `FROM`" in message(error)
    assert "Found in clause: None" in message(error)


def test_now_in_a_plain_view_select_list_is_allowed(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §4: a plain view is validated as a batch plan, so NOW() may compute ages."""
    rw.run(
        f"CREATE VIEW IF NOT EXISTS {p.q(pipeline, 'active_live')} AS SELECT session_id, "
        f"EXTRACT(EPOCH FROM (NOW() - started_at)) / 60 AS elapsed_minutes FROM {p.q(pipeline, 'sessions')}"
    )
    assert rw.relations(pipeline)["active_live"] == "view"


def test_now_mixed_with_a_column_on_one_side_is_rejected(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §4: `input_expr cmp now_expr` only; EXTRACT(EPOCH FROM NOW() - x) never works."""
    error = rw.error(
        f"CREATE MATERIALIZED VIEW {p.q(pipeline, 'stalled')} AS SELECT session_id "
        f"FROM {p.q(pipeline, 'sessions')} WHERE EXTRACT(EPOCH FROM (NOW() - last_event_at)) / 60 > 10"
    )
    assert "Conditions containing now must be in the form of `input_expr cmp now_expr`" in message(error)


def test_temporal_filters_in_where_and_having_are_accepted(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §4: lower bound in WHERE, upper bound ("delay") in HAVING."""
    rw.run(
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {p.q(pipeline, 'stalled')} AS SELECT session_id "
        f"FROM {p.q(pipeline, 'ocpp_events')} WHERE occurred_at > NOW() - INTERVAL '2 days' "
        "GROUP BY session_id HAVING MAX(occurred_at) < NOW() - INTERVAL '10 minutes'"
    )
    assert "stalled" in rw.relations(pipeline)


def test_tumble_over_a_subquery_is_a_parse_error(rw: Conn, pipeline: str) -> None:
    """The first argument of TUMBLE/HOP must be a relation name; a subquery there fails in
    RisingWave's parser (src/sqlparser/src/parser.rs), before the binder's "1st arg" check."""
    error = rw.error(
        f"CREATE MATERIALIZED VIEW {p.q(pipeline, 'rev')} AS SELECT window_start, COUNT(*) AS n "
        f"FROM TUMBLE((SELECT * FROM {p.q(pipeline, 'completed_sessions')}), stopped_at, "
        "INTERVAL '3600 seconds') GROUP BY window_start"
    )
    assert message(error).startswith("sql parser error: syntax error at or near FROM")


def test_tumble_over_a_relation_and_hop_over_a_cte_are_accepted(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §3: a table, source, MV, view or CTE name is fine; HOP is (slide, size)."""
    rw.run(p.revenue_stmt(pipeline), p.availability_stmt(pipeline))
    relations = rw.relations(pipeline)
    assert relations["station_revenue"] == "mv"
    assert relations["connector_availability"] == "mv"


def test_hop_size_must_be_a_multiple_of_the_slide(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §3: "window_size … cannot be divided by window_slide"."""
    error = rw.error(p.availability_stmt(pipeline, slide="7 minutes", size="15 minutes"))
    assert "cannot be divided by window_slide" in message(error)


# ----------------------------------------------------------------------------- §6 sinks


def test_sink_from_a_subquery_is_a_syntax_error(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §6: FROM takes an object name only."""
    error = rw.error(
        f"CREATE SINK {p.q(pipeline, 'faults')} FROM (SELECT * FROM {p.q(pipeline, 'ocpp_events')}) "
        "WITH (connector = 'kafka', properties.bootstrap.server = 'k:9092', topic = 't') "
        "FORMAT PLAIN ENCODE JSON"
    )
    assert "sql parser error" in message(error)


def test_sink_as_query_takes_with_after_the_query(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §6: CREATE SINK s AS SELECT ... WITH (...) FORMAT PLAIN ENCODE JSON."""
    rw.run(
        f"CREATE SINK IF NOT EXISTS {p.q(pipeline, 'faults')} AS SELECT station_id, occurred_at "
        f"FROM {p.q(pipeline, 'ocpp_events')} WHERE event_type = 'StatusNotification' AND status = 'Faulted' "
        "WITH (connector = 'kafka', properties.bootstrap.server = 'k:9092', topic = 'faults') "
        "FORMAT PLAIN ENCODE JSON"
    )
    assert rw.relations(pipeline)["faults"] == "sink"


def test_plain_sink_over_a_non_append_only_mv_needs_force_append_only(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §6: FORMAT PLAIN over an aggregate needs ENCODE JSON (force_append_only='true')."""
    rw.run(f"DROP SINK {p.q(pipeline, 'alerts_to_kafka')}")
    error = rw.error(p.kafka_sink_stmt(pipeline, force_append_only=False))
    assert "cannot be append-only" in message(error)
    assert "force_append_only" in message(error)
    rw.run(p.kafka_sink_stmt(pipeline, force_append_only=True))


def test_kafka_sink_needs_format_encode(rw: Conn, pipeline: str) -> None:
    """docs/risingwave.md §6: Kafka requires FORMAT ... ENCODE ... (or the legacy type=)."""
    error = rw.error(
        f"CREATE SINK {p.q(pipeline, 'raw')} FROM {p.q(pipeline, 'ocpp_events')} "
        "WITH (connector = 'kafka', properties.bootstrap.server = 'k:9092', topic = 'raw')"
    )
    assert "FORMAT" in message(error)


def test_source_rejects_an_unknown_startup_mode(rw: Conn, rw_schema: str) -> None:
    """docs/risingwave.md §1: scan.startup.mode is earliest or latest."""
    rw.run(p.schema_stmt(rw_schema))
    error = rw.error(p.source_stmt(rw_schema).replace("'earliest'", "'group-offsets'"))
    assert "scan_startup_mode" in message(error)


# ----------------------------------------------------------------------------- §7 secrets, §8 users


def test_secrets_need_a_license(risingwave: RisingWaveTarget, rw: Conn, rw_schema: str) -> None:
    """docs/risingwave.md §7: secret management is a premium feature."""
    risingwave.license = False
    rw.run(p.schema_stmt(rw_schema))
    error = rw.error(
        f"CREATE SECRET IF NOT EXISTS {p.q(rw_schema, 'kafka_pw')} WITH (backend = 'meta') AS 'hunter2'"
    )
    assert "SecretManagement is not available based on your license" in message(error)


def test_a_secret_used_by_a_source_cannot_be_dropped(
    risingwave: RisingWaveTarget, rw: Conn, rw_schema: str
) -> None:
    """docs/risingwave.md §7 (SECRET references) and §9 (hint for secrets: DROP the dependents first)."""
    risingwave.license = True
    rw.run(
        p.schema_stmt(rw_schema),
        f"CREATE SECRET IF NOT EXISTS {p.q(rw_schema, 'kafka_pw')} WITH (backend = 'meta') AS 'hunter2'",
        p.source_stmt(rw_schema).replace(
            "group.id.prefix",
            f"properties.sasl.password = SECRET {p.q(rw_schema, 'kafka_pw')}, group.id.prefix",
        ),
    )
    error = rw.error(f"DROP SECRET {p.q(rw_schema, 'kafka_pw')}")
    assert "Permission denied: secret used by 1 other objects." in str(error)
    assert "DROP the dependent objects first." in str(error)
    secrets = rw.rows(
        "SELECT r.name FROM rw_catalog.rw_secrets r JOIN rw_catalog.rw_schemas s ON r.schema_id = s.id "
        f"WHERE s.name = '{rw_schema}'"
    )
    assert secrets == [("kafka_pw",)]


def test_alter_secret_changes_the_value_in_place(
    risingwave: RisingWaveTarget, rw: Conn, rw_schema: str
) -> None:
    """docs/risingwave.md §7: ALTER SECRET exists, so a rotated credential keeps its dependents."""
    double = risingwave.require_double("reads the secret value")
    double.license = True
    secret = p.q(rw_schema, "kafka_pw")
    rw.run(
        p.schema_stmt(rw_schema),
        f"CREATE SECRET IF NOT EXISTS {secret} WITH (backend = 'meta') AS 'old'",
        f"ALTER SECRET {secret} WITH (backend = 'meta') AS 'new'",
    )
    assert double.secret_value(f"{rw_schema}.kafka_pw") == "new"


def test_create_user_has_no_if_not_exists(rw: Conn, rw_schema: str) -> None:
    """docs/risingwave.md §8: CreateUserStatement has only a name and options."""
    user = f"{rw_schema}_reader"
    rw.run(f"CREATE USER \"{user}\" WITH PASSWORD 'pw'")
    rw.error(f"CREATE USER IF NOT EXISTS \"{user}\" WITH PASSWORD 'pw'")
    rw.error(f"CREATE USER \"{user}\" WITH PASSWORD 'pw'")
    assert rw.rows(f"SELECT name FROM rw_catalog.rw_users WHERE name = '{user}'") == [(user,)]
    rw.run(f'DROP USER "{user}"')


def test_grant_on_all_mvs_in_schema_covers_only_existing_mvs(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §8: ALL MATERIALIZED VIEWS IN SCHEMA (default privileges only from v2.5)."""
    double = risingwave.require_double("inspects grants")
    user = f"{pipeline}_reader"
    rw.run(
        f"CREATE USER \"{user}\" WITH PASSWORD 'pw'",
        f'GRANT USAGE ON SCHEMA "{pipeline}" TO "{user}"',
        f'GRANT SELECT ON ALL MATERIALIZED VIEWS IN SCHEMA "{pipeline}" TO "{user}"',
        p.revenue_stmt(pipeline),
    )
    granted = {name for _, kind, name in double.privileges(user) if kind == "materialized view"}
    assert f"{pipeline}.sessions" in granted
    assert f"{pipeline}.station_revenue" not in granted


def test_catalog_listings_are_filtered_by_the_users_privileges(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §8: rw_materialized_views only lists what the current user may see."""
    user = f"{pipeline}_reader"
    rw.run(
        f"CREATE USER \"{user}\" WITH PASSWORD 'pw'",
        f'GRANT USAGE ON SCHEMA "{pipeline}" TO "{user}"',
        f'GRANT SELECT ON MATERIALIZED VIEW {p.q(pipeline, "alerts")} TO "{user}"',
    )
    dsn = risingwave.endpoint
    with psycopg.connect(
        host=dsn.host, port=dsn.port, dbname=dsn.database, user=user, password="pw", autocommit=True
    ) as reader:
        names = {row[0] for row in reader.execute(b"SELECT name FROM rw_catalog.rw_materialized_views")}
    assert "alerts" in names
    assert "sessions" not in names
    rw.run(f'DROP USER "{user}"')


# ----------------------------------------------------------------------------- §13 transactions


def test_begin_starts_no_transaction_and_ddl_applies_at_once(rw: Conn, rw_schema: str) -> None:
    """docs/risingwave.md §13: plain BEGIN only notices; DDL applies immediately; ROLLBACK undoes nothing."""
    rw.run("BEGIN")
    assert any("no transaction is actually started" in n for n in rw.notices)
    rw.run(p.schema_stmt(rw_schema), "ROLLBACK")
    assert rw.rows(f"SELECT name FROM rw_catalog.rw_schemas WHERE name = '{rw_schema}'") == [(rw_schema,)]


# ----------------------------------------------------------------------------- §12 background DDL


def test_background_mv_shows_progress_until_it_completes(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §12: with BACKGROUND_DDL the CREATE returns; rw_ddl_progress tracks the job."""
    risingwave.set_backfill(polls=2)
    rw.run("SET BACKGROUND_DDL = true", p.revenue_stmt(pipeline))
    progress_sql = "SELECT ddl_id, ddl_statement, progress FROM rw_catalog.rw_ddl_progress"
    first = rw.rows(progress_sql)
    assert len(first) == 1
    assert "station_revenue" in first[0][1]
    assert first[0][2].endswith("%")
    assert len(rw.rows(progress_sql)) == 1
    assert rw.rows(progress_sql) == []
    assert rw.relations(pipeline)["station_revenue"] == "mv"


def test_foreground_create_blocks_until_backfill_completes(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §12: by default CREATE MATERIALIZED VIEW blocks until backfill completes."""
    risingwave.set_backfill(seconds=0.6)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            with risingwave.connect() as other:
                other.execute(p.revenue_stmt(pipeline).encode())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    started = time.monotonic()
    worker = threading.Thread(target=create)
    worker.start()
    seen = []
    while worker.is_alive() and not seen:
        seen = rw.rows("SELECT ddl_statement FROM rw_catalog.rw_ddl_progress")
    worker.join(timeout=5)
    assert not errors
    assert time.monotonic() - started >= 0.6
    assert seen, "the creating job should be visible in rw_ddl_progress from another session"
    assert rw.rows("SELECT ddl_statement FROM rw_catalog.rw_ddl_progress") == []


def test_dropping_a_creating_background_mv_cancels_its_job(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §12: cancel a background job by DROPping the MV."""
    risingwave.set_backfill(seconds=30)
    rw.run("SET BACKGROUND_DDL = true", p.revenue_stmt(pipeline))
    assert len(rw.rows("SELECT ddl_id FROM rw_catalog.rw_ddl_progress")) == 1
    rw.run(f"DROP MATERIALIZED VIEW {p.q(pipeline, 'station_revenue')}")
    assert rw.rows("SELECT ddl_id FROM rw_catalog.rw_ddl_progress") == []
    assert "station_revenue" not in rw.relations(pipeline)


def test_wait_blocks_until_background_jobs_finish(
    risingwave: RisingWaveTarget, rw: Conn, pipeline: str
) -> None:
    """docs/risingwave.md §12: plain WAIT waits for all background jobs (v2.x)."""
    risingwave.set_backfill(seconds=0.3)
    rw.run("SET BACKGROUND_DDL = true", p.revenue_stmt(pipeline))
    rw.run("WAIT")
    assert rw.rows("SELECT ddl_id FROM rw_catalog.rw_ddl_progress") == []


# ----------------------------------------------------------------------------- tables and DML


def table_stmts(schema: str) -> list[str]:
    """A ledger-shaped table in the test's own schema (never touches a live cha_system.ledger)."""
    return [
        p.schema_stmt(schema),
        f"CREATE TABLE IF NOT EXISTS {p.q(schema, 'ledger')} (tenant VARCHAR, object_name VARCHAR, "
        "definition_hash VARCHAR, applied_at TIMESTAMPTZ, PRIMARY KEY (tenant, object_name))",
    ]


def insert_row(schema: str, name: str, digest: str) -> str:
    return (
        f"INSERT INTO {p.q(schema, 'ledger')} (tenant, object_name, definition_hash, applied_at) "
        f"VALUES ('acme', '{name}', '{digest}', NOW())"
    )


def test_rows_are_visible_to_reads_after_flush(
    risingwave: RisingWaveTarget, rw: Conn, rw_schema: str
) -> None:
    """DML is visible to reads after FLUSH (RW_IMPLICIT_FLUSH is off by default; session config)."""
    risingwave.require_double("asserts invisibility before FLUSH")
    rw.run(*table_stmts(rw_schema), insert_row(rw_schema, "sessions", "h1"))
    query = f"SELECT object_name FROM {p.q(rw_schema, 'ledger')}"
    assert rw.rows(query) == []
    rw.run("FLUSH")
    assert rw.rows(query) == [("sessions",)]


def test_inserting_an_existing_primary_key_overwrites_the_row(rw: Conn, rw_schema: str) -> None:
    """Tables with a primary key: a new row with an existing key overwrites (CREATE TABLE docs, Notes)."""
    rw.run(*table_stmts(rw_schema), insert_row(rw_schema, "sessions", "h1"))
    rw.run(insert_row(rw_schema, "sessions", "h2"), "FLUSH")
    rows = rw.rows(f"SELECT definition_hash, applied_at FROM {p.q(rw_schema, 'ledger')}")
    assert [r[0] for r in rows] == ["h2"]
    assert rows[0][1] is not None


def test_delete_with_where_removes_only_matching_rows(rw: Conn, rw_schema: str) -> None:
    rw.run(
        *table_stmts(rw_schema),
        insert_row(rw_schema, "sessions", "h1"),
        insert_row(rw_schema, "alerts", "h2"),
    )
    rw.run(
        f"DELETE FROM {p.q(rw_schema, 'ledger')} WHERE tenant = 'acme' AND object_name = 'sessions'", "FLUSH"
    )
    assert rw.rows(f"SELECT object_name FROM {p.q(rw_schema, 'ledger')}") == [("alerts",)]
