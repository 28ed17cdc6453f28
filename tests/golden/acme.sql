-- tenant acme (tenants/acme)

-- Schema acme (sha256:48a74eca9ed78c33d96f44c3)
CREATE SCHEMA IF NOT EXISTS "acme";

-- Source acme.ocpp_events (sha256:da861b249692be861efb51dd)
CREATE SOURCE IF NOT EXISTS "acme"."ocpp_events" (
    event_id VARCHAR,
    event_type VARCHAR,
    station_id VARCHAR,
    connector_id INT,
    connector_type VARCHAR,
    session_id VARCHAR,
    status VARCHAR,
    error_code VARCHAR,
    energy_kwh DOUBLE PRECISION,
    occurred_at TIMESTAMPTZ,
    WATERMARK FOR occurred_at AS occurred_at - INTERVAL '300 seconds'
)
WITH (
    connector = 'kafka',
    topic = 'ocpp.acme.events',
    properties.bootstrap.server = 'kafka-0.kafka.svc:9092,kafka-1.kafka.svc:9092',
    scan.startup.mode = 'earliest',
    group.id.prefix = 'cha-acme',
    properties.security.protocol = 'SASL_PLAINTEXT',
    properties.sasl.mechanism = 'SCRAM-SHA-512',
    properties.sasl.username = '[redacted]',
    properties.sasl.password = '[redacted]'
)
FORMAT PLAIN ENCODE JSON;

-- MaterializedView acme.sessions (sha256:44f4a4dd8c8d4ff06d39e626)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    MAX(connector_type) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(occurred_at) FILTER (WHERE event_type = 'StopTransaction') AS stopped_at,
    MIN(energy_kwh) AS meter_start_kwh,
    MAX(energy_kwh) AS meter_last_kwh,
    COUNT(*) AS event_count
FROM "acme"."ocpp_events"
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '86400 seconds'
GROUP BY session_id, station_id, connector_id;

-- MaterializedView acme.completed_sessions (sha256:361aa388de195d76c392a649)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."completed_sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    stopped_at,
    ROUND(EXTRACT(EPOCH FROM (stopped_at - started_at)) / 60, 2) AS duration_minutes,
    ROUND(CAST(meter_last_kwh - meter_start_kwh AS NUMERIC), 3) AS energy_kwh,
    ROUND(
        CAST(meter_last_kwh - meter_start_kwh AS NUMERIC) * CASE connector_type
            WHEN 'CCS' THEN 0.59
            WHEN 'CHAdeMO' THEN 0.49
            WHEN 'Type2' THEN 0.35
        END,
        2
    ) AS revenue,
    'EUR' AS currency
FROM "acme"."sessions"
WHERE stopped_at IS NOT NULL;

-- MaterializedView acme.active_sessions (sha256:771f5a5a60f0c675a769270b)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."active_sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    meter_last_kwh - meter_start_kwh AS energy_kwh
FROM "acme"."sessions"
WHERE stopped_at IS NULL;

-- View acme.active_sessions_live (sha256:d91e13923ec083819b3eda2e)
CREATE VIEW IF NOT EXISTS "acme"."active_sessions_live" AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh,
    ROUND(EXTRACT(EPOCH FROM (NOW() - started_at)) / 60, 1) AS elapsed_minutes,
    ROUND(EXTRACT(EPOCH FROM (NOW() - last_event_at)) / 60, 1) AS idle_minutes
FROM "acme"."active_sessions";

-- MaterializedView acme.station_revenue (sha256:164cfb5457faff4158f1b1c2)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."station_revenue" AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    'EUR' AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE("acme"."completed_sessions", stopped_at, INTERVAL '3600 seconds')
WHERE window_end > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, window_start, window_end;

-- MaterializedView acme.connector_availability (sha256:9b34afc7dd1803d7cce7c43f)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_availability" AS
WITH status_reports AS (
    SELECT station_id, connector_id, status, occurred_at
    FROM "acme"."ocpp_events"
    WHERE event_type = 'StatusNotification'
)
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    COUNT(*) AS status_reports,
    ROUND(COUNT(*) FILTER (WHERE status = 'Available') * 100.0 / COUNT(*), 2) AS free_pct,
    ROUND(COUNT(*) FILTER (WHERE status NOT IN ('Faulted', 'Unavailable')) * 100.0 / COUNT(*), 2)
        AS uptime_pct
FROM HOP(status_reports, occurred_at, INTERVAL '60 seconds', INTERVAL '900 seconds')
WHERE window_end > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, connector_id, window_start, window_end;

-- MaterializedView acme.stalled_sessions (sha256:7d1f06c7c7b89a4b07121df4)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."stalled_sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    MAX(connector_type) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(energy_kwh) - MIN(energy_kwh) AS energy_kwh
FROM "acme"."ocpp_events"
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '86400 seconds'
GROUP BY session_id, station_id, connector_id
HAVING COUNT(*) FILTER (WHERE event_type = 'StopTransaction') = 0
    AND MAX(occurred_at) < NOW() - INTERVAL '600 seconds';

-- MaterializedView acme.connector_faults (sha256:abb18b761a60e3888d0eabcf)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_faults" AS
SELECT
    event_id,
    station_id,
    connector_id,
    connector_type,
    error_code,
    occurred_at
FROM "acme"."ocpp_events"
WHERE event_type = 'StatusNotification'
    AND status = 'Faulted'
    AND occurred_at > NOW() - INTERVAL '86400 seconds';

-- MaterializedView acme.low_availability (sha256:7188c70fbfb153dcbe0fbac4)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."low_availability" AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    status_reports,
    uptime_pct
FROM "acme"."connector_availability"
WHERE uptime_pct < 80.0
    AND window_end <= NOW()
    AND window_end > NOW() - INTERVAL '60 seconds';

-- MaterializedView acme.alerts (sha256:2f3a45dacb8b5e7ae090f1fb)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."alerts" AS
SELECT
    'stalled_session:' || session_id AS alert_id,
    'StalledSession' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    session_id,
    'no event since ' || CAST(last_event_at AS VARCHAR) AS detail,
    last_event_at AS detected_at
FROM "acme"."stalled_sessions"
UNION ALL
SELECT
    'connector_fault:' || event_id AS alert_id,
    'ConnectorFault' AS alert_type,
    'critical' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'error code ' || COALESCE(error_code, 'unknown') AS detail,
    occurred_at AS detected_at
FROM "acme"."connector_faults"
UNION ALL
SELECT
    'low_availability:' || station_id || ':' || CAST(connector_id AS VARCHAR) || ':'
        || CAST(window_end AS VARCHAR) AS alert_id,
    'LowAvailability' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'uptime ' || CAST(uptime_pct AS VARCHAR) || '% in the window ending ' || CAST(window_end AS VARCHAR)
        AS detail,
    window_end AS detected_at
FROM "acme"."low_availability";

-- Sink acme.alerts_to_kafka (sha256:cc7059e236b6bade6055d57a)
CREATE SINK IF NOT EXISTS "acme"."alerts_to_kafka" FROM "acme"."alerts"
WITH (
    connector = 'kafka',
    properties.bootstrap.server = 'kafka-0.kafka.svc:9092,kafka-1.kafka.svc:9092',
    topic = 'ocpp.acme.alerts',
    primary_key = 'alert_id',
    properties.security.protocol = 'SASL_PLAINTEXT',
    properties.sasl.mechanism = 'SCRAM-SHA-512',
    properties.sasl.username = '[redacted]',
    properties.sasl.password = '[redacted]'
)
FORMAT PLAIN ENCODE JSON (force_append_only = 'true');

-- Sink acme.alerts_to_postgres (sha256:113d294dd1776843316fbe6e)
CREATE SINK IF NOT EXISTS "acme"."alerts_to_postgres" FROM "acme"."alerts"
WITH (
    connector = 'jdbc',
    jdbc.url = 'jdbc:postgresql://alerts-db.tenants.svc:5432/alerts?sslmode=disable',
    user = '[redacted]',
    password = '[redacted]',
    schema.name = 'public',
    table.name = 'acme_alerts',
    type = 'upsert',
    primary_key = 'alert_id'
);

-- User acme_reader (sha256:7cd7995f181370231774217c)
CREATE USER "acme_reader" WITH NOSUPERUSER NOCREATEDB NOCREATEUSER LOGIN PASSWORD '[redacted]';

