"""The rendered analytics pipeline on the double: every statement the renderer emits for the
examples is accepted, and the constructs it relies on are accepted or rejected as RisingWave
does (docs/risingwave.md §4 NOW() placement, §6 sinks; window functions and generate_series in FROM
per the RisingWave docs, https://docs.risingwave.com/processing/sql/temporal-filters)."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import psycopg
import pytest

from charging_analytics.apply import apply_plan
from charging_analytics.operator.checks import ensure_postgres_table, run_on_alerts_db
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, RenderOptions, as_text, render
from charging_analytics.rw.client import Endpoint, RisingWaveClient
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.validation import load_file
from testbed.postgres import PostgresServer
from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double import pipeline_sql as p

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CREDS = Credentials(kafka=Credential("u", "p"), alerts_db=Credential("w", "pw"), reader=Credential("r", "rp"))


@pytest.mark.parametrize("example", ["acme", "voltbay"])
def test_every_rendered_statement_is_accepted(risingwave: RisingWaveTarget, example: str) -> None:
    (resource,) = load_file(EXAMPLES / f"{example}.yaml").resources
    objects = render(resource.spec, RenderOptions(credentials=CREDS))
    with risingwave.connect() as conn:
        for o in objects:
            conn.execute(as_text(o.statement))
            for grant in o.grants:
                conn.execute(as_text(grant))
        names = {row[0] for row in conn.execute("SELECT name FROM rw_catalog.rw_materialized_views")}
    assert {o.name for o in objects if o.kind == "MaterializedView"} <= names


def _with_source(conn: psycopg.Connection[tuple[object, ...]], schema: str) -> str:
    conn.execute(p.schema_stmt(schema))
    conn.execute(p.source_stmt(schema))
    return p.q(schema, "ocpp_events")


def test_window_functions_and_generate_series_in_from_are_accepted(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    with risingwave.connect() as conn:
        src = _with_source(conn, rw_schema)
        conn.execute(
            f"CREATE MATERIALIZED VIEW {p.q(rw_schema, 'iv')} AS SELECT station_id, "
            "occurred_at AS valid_from, "
            "LEAD(occurred_at) OVER (PARTITION BY station_id ORDER BY occurred_at) AS valid_to "
            f"FROM {src} WHERE occurred_at > NOW() - INTERVAL '1 day'"
        )
        conn.execute(
            f"CREATE MATERIALIZED VIEW {p.q(rw_schema, 'mins')} AS SELECT station_id, bucket FROM ("
            "SELECT station_id, valid_to, generate_series(date_trunc('minute', valid_from), valid_to, "
            f"INTERVAL '1 minute') AS bucket FROM {p.q(rw_schema, 'iv')} WHERE valid_to IS NOT NULL) AS s "
            "WHERE bucket < valid_to"
        )
        conn.execute(
            f"CREATE MATERIALIZED VIEW {p.q(rw_schema, 'top')} AS SELECT station_id, status FROM ("
            "SELECT station_id, status, "
            "ROW_NUMBER() OVER (PARTITION BY station_id ORDER BY occurred_at DESC) "
            f"AS rn FROM {src}) AS s WHERE rn = 1"
        )
        conn.execute(
            f"CREATE VIEW {p.q(rw_schema, 'live')} AS SELECT station_id, "
            f"EXTRACT(EPOCH FROM (NOW() - bucket)) AS age FROM {p.q(rw_schema, 'mins')}"
        )


def test_now_in_a_materialized_view_select_list_is_rejected(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    with risingwave.connect() as conn:
        src = _with_source(conn, rw_schema)
        with pytest.raises(psycopg.Error, match=r"only allowed in `WHERE`, `HAVING`, `ON` and `FROM`"):
            conn.execute(
                f"CREATE MATERIALIZED VIEW {p.q(rw_schema, 'bad')} AS "
                f"SELECT NOW() - occurred_at AS age FROM {src}"
            )


def test_upsert_kafka_sink_with_a_text_key_is_accepted_over_a_retracting_view(
    risingwave: RisingWaveTarget, rw_schema: str
) -> None:
    with risingwave.connect() as conn:
        src = _with_source(conn, rw_schema)
        view = p.q(rw_schema, "open_alerts")
        conn.execute(
            f"CREATE MATERIALIZED VIEW {view} AS SELECT station_id AS alert_id FROM {src} "
            "WHERE occurred_at > NOW() - INTERVAL '1 hour'"
        )
        conn.execute(
            f"CREATE SINK {p.q(rw_schema, 'to_kafka')} FROM {view} WITH (connector = 'kafka', "
            "properties.bootstrap.server = 'k:9092', topic = 'alerts', primary_key = 'alert_id') "
            "FORMAT UPSERT ENCODE JSON KEY ENCODE TEXT"
        )
        with pytest.raises(psycopg.Error, match="cannot be append-only"):
            conn.execute(
                f"CREATE SINK {p.q(rw_schema, 'plain')} FROM {view} WITH (connector = 'kafka', "
                "properties.bootstrap.server = 'k:9092', topic = 'alerts') FORMAT PLAIN ENCODE JSON"
            )


def _pg_sink_spec(server: PostgresServer) -> ChargingAnalyticsSpec:
    (resource,) = load_file(EXAMPLES / "voltbay.yaml").resources
    sinks = {
        "postgres": {
            "host": server.host,
            "port": server.port,
            "database": server.alerts_db,
            "table": "open_alerts",
            "sslmode": "disable",
            "credentialsSecretRef": {"name": "db"},
        }
    }
    doc = resource.spec.model_dump(by_alias=True, exclude_none=True)
    doc["alerts"]["sinks"] = sinks
    return ChargingAnalyticsSpec.model_validate(doc)


def test_rebuilding_the_postgres_sink_clears_rows_an_earlier_sink_left(
    risingwave: RisingWaveTarget, postgres_server: PostgresServer
) -> None:
    spec = _pg_sink_spec(postgres_server)
    writer = Credential(postgres_server.alerts_user, postgres_server.alerts_password)
    creds = Credentials(alerts_db=writer)
    target = functools.partial(run_on_alerts_db, spec, writer, 10.0)

    async def run() -> None:
        await ensure_postgres_table(spec, writer, 10.0)
        with psycopg.connect(postgres_server.alerts_conninfo(), autocommit=True) as db:
            db.execute(
                "INSERT INTO public.open_alerts (alert_id, alert_type, severity) "
                "VALUES ('stalled_session:ST-1:gone', 'StalledSession', 'warning')"
            )
        async with RisingWaveClient(Endpoint.from_dsn(risingwave.dsn)) as client:
            snapshot = await client.snapshot()
            options = PlanOptions(owner="t/v", ledger_exists=snapshot.ledger_exists)
            plan = build_plan(
                render(spec, RenderOptions(credentials=creds)), snapshot.tenant(spec.tenant), options
            )
            await apply_plan(client, plan, target=target)

    asyncio.run(run())
    with psycopg.connect(postgres_server.alerts_conninfo(), autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM public.open_alerts").fetchone() == (0,)
