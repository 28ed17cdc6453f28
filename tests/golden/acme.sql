-- tenant acme (tenants/acme)

-- Schema acme (sha256:48a74eca9ed78c33d96f44c3)
CREATE SCHEMA IF NOT EXISTS "acme";

-- Source acme.ocpp_events (sha256:cbb4107632086221807c5885)
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
    occurred_at TIMESTAMPTZ
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

-- MaterializedView acme.sessions (sha256:f9adf21484e86a44fc46c061)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."sessions" AS
SELECT
    station_id,
    session_id,
    COALESCE(
        MAX(connector_id) FILTER (WHERE event_type = 'StartTransaction'), MAX(connector_id)
    ) AS connector_id,
    COALESCE(
        MAX(connector_type) FILTER (WHERE event_type = 'StartTransaction'), MAX(connector_type)
    ) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(occurred_at) FILTER (WHERE event_type = 'StopTransaction') AS stopped_at,
    COALESCE(
        MAX(energy_kwh) FILTER (WHERE event_type = 'StopTransaction')
            - MIN(energy_kwh) FILTER (WHERE event_type = 'StartTransaction'),
        MAX(energy_kwh) - MIN(energy_kwh)
    ) AS energy_kwh,
    COUNT(*) AS event_count
FROM "acme"."ocpp_events"
WHERE session_id IS NOT NULL
    AND station_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '259200 seconds'
GROUP BY station_id, session_id;

-- MaterializedView acme.completed_sessions (sha256:b48ac516704cabb1bc70780c)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."completed_sessions" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    stopped_at,
    ROUND(EXTRACT(EPOCH FROM (stopped_at - started_at)) / 60, 2) AS duration_minutes,
    ROUND(CAST(energy_kwh AS NUMERIC), 3) AS energy_kwh,
    ROUND(
        CAST(energy_kwh AS NUMERIC) * CASE connector_type
            WHEN 'CCS' THEN 0.59
            WHEN 'CHAdeMO' THEN 0.49
            WHEN 'Type2' THEN 0.35
        END,
        2
    ) AS revenue,
    'EUR' AS currency
FROM "acme"."sessions"
WHERE stopped_at IS NOT NULL
    AND stopped_at > NOW() - INTERVAL '86400 seconds';

-- MaterializedView acme.active_sessions (sha256:767c6e8026eb48de5fac168e)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."active_sessions" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM "acme"."sessions"
WHERE stopped_at IS NULL
    AND last_event_at > NOW() - INTERVAL '86400 seconds';

-- View acme.active_sessions_live (sha256:da1f399d5096bb78c2d10c96)
CREATE VIEW IF NOT EXISTS "acme"."active_sessions_live" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh,
    ROUND(EXTRACT(EPOCH FROM (NOW() - started_at)) / 60, 1) AS elapsed_minutes,
    ROUND(EXTRACT(EPOCH FROM (NOW() - last_event_at)) / 60, 1) AS idle_minutes
FROM "acme"."active_sessions";

-- MaterializedView acme.station_revenue (sha256:4c458bc7a8e74ad70e3da871)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."station_revenue" AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    COUNT(*) FILTER (WHERE revenue IS NULL) AS unpriced_sessions,
    'EUR' AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE("acme"."completed_sessions", stopped_at, INTERVAL '3600 seconds')
WHERE window_start > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, window_start, window_end;

-- MaterializedView acme.stalled_sessions (sha256:9eb8b27cb94d0ae339a3044e)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."stalled_sessions" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM "acme"."active_sessions"
WHERE last_event_at < NOW() - INTERVAL '600 seconds';

-- MaterializedView acme.status_intervals (sha256:d6e09109678f80b1c77918f7)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."status_intervals" AS
SELECT
    station_id,
    connector_id,
    status,
    occurred_at AS valid_from,
    LEAD(occurred_at) OVER (
        PARTITION BY station_id, connector_id ORDER BY occurred_at, event_id
    ) AS valid_to
FROM "acme"."ocpp_events"
WHERE event_type = 'StatusNotification'
    AND station_id IS NOT NULL
    AND connector_id > 0
    AND status IS NOT NULL
    AND occurred_at > NOW() - INTERVAL '259200 seconds';

-- MaterializedView acme.status_minutes (sha256:47ad238ac7603ea16f07fb2a)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."status_minutes" AS
SELECT
    station_id,
    connector_id,
    status,
    bucket,
    EXTRACT(EPOCH FROM (LEAST(valid_to, bucket + INTERVAL '1 minute') - GREATEST(valid_from, bucket)))
        AS seconds
FROM (
    SELECT
        station_id,
        connector_id,
        status,
        valid_from,
        valid_to,
        generate_series(date_trunc('minute', valid_from), valid_to, INTERVAL '1 minute') AS bucket
    FROM "acme"."status_intervals"
    WHERE valid_to IS NOT NULL
) AS intervals
WHERE bucket < valid_to;

-- MaterializedView acme.connector_status_time (sha256:6d8ce1c5c9e23135abb2ee34)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_status_time" AS
SELECT
    station_id,
    connector_id,
    status,
    window_start,
    window_end,
    SUM(seconds) AS seconds
FROM HOP("acme"."status_minutes", bucket, INTERVAL '60 seconds', INTERVAL '900 seconds')
WHERE window_start > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, connector_id, status, window_start, window_end;

-- MaterializedView acme.connector_uptime (sha256:06854e5c1aca7ef69ae0e480)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_uptime" AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    SUM(seconds) AS observed_seconds,
    COALESCE(SUM(seconds) FILTER (WHERE status IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved')), 0) AS up_seconds,
    ROUND(
        CAST(
            COALESCE(SUM(seconds) FILTER (WHERE status IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved')), 0) * 100.0
                / NULLIF(SUM(seconds), 0) AS NUMERIC
        ),
        2
    ) AS uptime_pct,
    ROUND(
        CAST(
            COALESCE(SUM(seconds) FILTER (WHERE status = 'Available'), 0) * 100.0
                / NULLIF(SUM(seconds), 0) AS NUMERIC
        ),
        2
    ) AS available_pct
FROM "acme"."connector_status_time"
GROUP BY station_id, connector_id, window_start, window_end;

-- MaterializedView acme.connector_status (sha256:13c92a6bf92736ef5709eac1)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_status" AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since
FROM (
    SELECT
        station_id,
        connector_id,
        status,
        error_code,
        occurred_at AS since,
        ROW_NUMBER() OVER (
            PARTITION BY station_id, connector_id ORDER BY occurred_at DESC, event_id DESC
        ) AS rn
    FROM "acme"."ocpp_events"
    WHERE event_type = 'StatusNotification'
        AND station_id IS NOT NULL
        AND connector_id > 0
        AND status IS NOT NULL
        AND occurred_at IS NOT NULL
) AS reports
WHERE rn = 1;

-- View acme.connector_status_live (sha256:ed57f51ced088828d663fd16)
CREATE VIEW IF NOT EXISTS "acme"."connector_status_live" AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since,
    status IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved') AS is_up,
    ROUND(EXTRACT(EPOCH FROM (NOW() - since)) / 60, 1) AS minutes_in_status
FROM "acme"."connector_status";

-- MaterializedView acme.connector_down (sha256:763eda8da3b7eb30875ae65a)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_down" AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since
FROM "acme"."connector_status"
WHERE status NOT IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved')
    AND since < NOW() - INTERVAL '1800 seconds';

-- MaterializedView acme.connector_faults (sha256:755d05171865ba9ee5e6100e)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."connector_faults" AS
SELECT
    station_id,
    connector_id,
    error_code,
    since
FROM "acme"."connector_status"
WHERE status = 'Faulted';

-- MaterializedView acme.low_availability (sha256:71e3c1340058a76794004440)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."low_availability" AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    observed_seconds,
    uptime_pct
FROM "acme"."connector_uptime"
WHERE uptime_pct < 80.0
    AND window_end <= NOW()
    AND window_end > NOW() - INTERVAL '60 seconds';

-- MaterializedView acme.alerts (sha256:04a61a05449b0099abe6a2bb)
CREATE MATERIALIZED VIEW IF NOT EXISTS "acme"."alerts" AS
SELECT
    'stalled_session:' || station_id || ':' || session_id AS alert_id,
    'StalledSession' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    session_id,
    'no event since ' || CAST(last_event_at AS VARCHAR) AS detail,
    last_event_at AS detected_at
FROM "acme"."stalled_sessions"
WHERE station_id IS NOT NULL AND session_id IS NOT NULL AND last_event_at IS NOT NULL
UNION ALL
SELECT
    'connector_down:' || station_id || ':' || CAST(connector_id AS VARCHAR) || ':'
        || CAST(CAST(EXTRACT(EPOCH FROM since) * 1000 AS BIGINT) AS VARCHAR) AS alert_id,
    'ConnectorDown' AS alert_type,
    'critical' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    status || ' since ' || CAST(since AS VARCHAR) || ' (error code ' || COALESCE(error_code, 'unknown')
        || ')' AS detail,
    since AS detected_at
FROM "acme"."connector_down"
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND since IS NOT NULL AND status IS NOT NULL
UNION ALL
SELECT
    'connector_fault:' || station_id || ':' || CAST(connector_id AS VARCHAR) || ':'
        || CAST(CAST(EXTRACT(EPOCH FROM since) * 1000 AS BIGINT) AS VARCHAR) AS alert_id,
    'ConnectorFault' AS alert_type,
    'critical' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'error code ' || COALESCE(error_code, 'unknown') AS detail,
    since AS detected_at
FROM "acme"."connector_faults"
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND since IS NOT NULL
UNION ALL
SELECT
    'low_availability:' || station_id || ':' || CAST(connector_id AS VARCHAR) AS alert_id,
    'LowAvailability' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'uptime ' || CAST(uptime_pct AS VARCHAR) || '% in the window ending ' || CAST(window_end AS VARCHAR)
        AS detail,
    window_start AS detected_at
FROM "acme"."low_availability"
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND uptime_pct IS NOT NULL;

-- Sink acme.alerts_to_kafka (sha256:2a2bacc5d324c7976c741460)
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
FORMAT UPSERT ENCODE JSON
KEY ENCODE TEXT;

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

