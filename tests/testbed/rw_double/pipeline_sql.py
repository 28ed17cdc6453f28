"""Statements in the shapes the operator's renderer emits, for one tenant schema."""

from __future__ import annotations

from psycopg import sql


def q(schema: str, name: str) -> str:
    return sql.Identifier(schema, name).as_string()


def schema_stmt(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {sql.Identifier(schema).as_string()}"


def source_stmt(schema: str, name: str = "ocpp_events") -> str:
    return (
        f"CREATE SOURCE IF NOT EXISTS {q(schema, name)} (session_id VARCHAR, station_id VARCHAR, "
        "connector_id INT, event_type VARCHAR, status VARCHAR, energy_kwh DOUBLE PRECISION, "
        "occurred_at TIMESTAMPTZ, WATERMARK FOR occurred_at AS occurred_at - INTERVAL '300 seconds') "
        "WITH (connector = 'kafka', topic = 'ocpp.events', properties.bootstrap.server = 'kafka:9092', "
        f"scan.startup.mode = 'earliest', group.id.prefix = 'cha-{schema}') FORMAT PLAIN ENCODE JSON"
    )


def sessions_stmt(schema: str, name: str = "sessions") -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q(schema, name)} AS SELECT session_id, station_id, "
        "MIN(occurred_at) AS started_at, MAX(occurred_at) AS last_event_at, "
        "COUNT(*) FILTER (WHERE event_type = 'StopTransaction') AS stops "
        f"FROM {q(schema, 'ocpp_events')} WHERE occurred_at > NOW() - INTERVAL '86400 seconds' "
        "GROUP BY session_id, station_id"
    )


def completed_stmt(schema: str, upstream: str = "sessions") -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q(schema, 'completed_sessions')} AS "
        "SELECT session_id, station_id, started_at, last_event_at AS stopped_at "
        f"FROM {q(schema, upstream)} WHERE stops > 0"
    )


def revenue_stmt(schema: str) -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q(schema, 'station_revenue')} AS "
        "SELECT station_id, window_start, window_end, COUNT(*) AS sessions "
        f"FROM TUMBLE({q(schema, 'completed_sessions')}, stopped_at, INTERVAL '3600 seconds') "
        "GROUP BY station_id, window_start, window_end"
    )


def availability_stmt(schema: str, slide: str = "60 seconds", size: str = "900 seconds") -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q(schema, 'connector_availability')} AS "
        "WITH status_events AS (SELECT station_id, connector_id, status, occurred_at "
        f"FROM {q(schema, 'ocpp_events')} WHERE event_type = 'StatusNotification') "
        "SELECT station_id, connector_id, window_start, window_end, "
        "ROUND(COUNT(*) FILTER (WHERE status = 'Available') * 100.0 / COUNT(*), 2) AS available_pct "
        f"FROM HOP(status_events, occurred_at, INTERVAL '{slide}', INTERVAL '{size}') "
        "GROUP BY station_id, connector_id, window_start, window_end"
    )


def alerts_stmt(schema: str) -> str:
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {q(schema, 'alerts')} AS "
        "SELECT station_id, session_id, last_event_at AS raised_at "
        f"FROM {q(schema, 'sessions')} WHERE stops = 0"
    )


def kafka_sink_stmt(schema: str, *, force_append_only: bool = True) -> str:
    encode_opts = " (force_append_only = 'true')" if force_append_only else ""
    return (
        f"CREATE SINK IF NOT EXISTS {q(schema, 'alerts_to_kafka')} FROM {q(schema, 'alerts')} "
        "WITH (connector = 'kafka', properties.bootstrap.server = 'kafka:9092', topic = 'alerts') "
        f"FORMAT PLAIN ENCODE JSON{encode_opts}"
    )


def jdbc_sink_stmt(schema: str, password: str) -> str:
    return (
        f"CREATE SINK IF NOT EXISTS {q(schema, 'alerts_to_postgres')} FROM {q(schema, 'alerts')} "
        "WITH (connector = 'jdbc', jdbc.url = 'jdbc:postgresql://pg:5432/alerts', user = 'writer', "
        f"password = '{password}', table.name = 'alerts', type = 'upsert', primary_key = 'session_id')"
    )


def ledger_stmts() -> list[str]:
    return [
        'CREATE SCHEMA IF NOT EXISTS "cha_system"',
        'CREATE TABLE IF NOT EXISTS "cha_system"."ledger" (tenant VARCHAR, object_name VARCHAR, '
        "kind VARCHAR, definition_hash VARCHAR, depends_on VARCHAR, applied_at TIMESTAMPTZ, "
        "PRIMARY KEY (tenant, object_name))",
    ]


def ledger_row(tenant: str, name: str, kind: str, digest: str, deps: str = "") -> list[str]:
    lit = sql.Literal
    return [
        sql.SQL('DELETE FROM "cha_system"."ledger" WHERE tenant = {} AND object_name = {}')
        .format(lit(tenant), lit(name))
        .as_string(),
        sql.SQL(
            'INSERT INTO "cha_system"."ledger" (tenant, object_name, kind, definition_hash, depends_on, '
            "applied_at) VALUES ({}, {}, {}, {}, {}, NOW())"
        )
        .format(lit(tenant), lit(name), lit(kind), lit(digest), lit(deps))
        .as_string(),
    ]


def base_pipeline(schema: str) -> list[str]:
    """schema -> source -> sessions -> completed_sessions, alerts -> kafka sink."""
    return [
        schema_stmt(schema),
        source_stmt(schema),
        sessions_stmt(schema),
        completed_stmt(schema),
        alerts_stmt(schema),
        kafka_sink_stmt(schema),
    ]
