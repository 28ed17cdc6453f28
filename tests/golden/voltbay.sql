-- tenant voltbay (tenants/voltbay)

-- Schema voltbay (sha256:c67c38caa3a07a7ea92e3b72)
CREATE SCHEMA IF NOT EXISTS "voltbay";

-- Source voltbay.ocpp_events (sha256:423ff2640359184ca8499bf5)
CREATE SOURCE IF NOT EXISTS "voltbay"."ocpp_events" (
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
    topic = 'ocpp.voltbay.events',
    properties.bootstrap.server = 'kafka-0.kafka.svc:9092',
    scan.startup.mode = 'latest',
    group.id.prefix = 'cha-voltbay',
    properties.security.protocol = 'PLAINTEXT'
)
FORMAT PLAIN ENCODE JSON;

-- MaterializedView voltbay.sessions (sha256:5ee141ac1cfa908815a232e0)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."sessions" AS
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
FROM "voltbay"."ocpp_events"
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '86400 seconds'
GROUP BY session_id, station_id, connector_id;

-- MaterializedView voltbay.completed_sessions (sha256:3efac4137505afa356fb840d)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."completed_sessions" AS
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
            WHEN 'CCS' THEN 0.69
            WHEN 'CHAdeMO' THEN 0.55
            WHEN 'Type2' THEN 0.42
        END,
        2
    ) AS revenue,
    'GBP' AS currency
FROM "voltbay"."sessions"
WHERE stopped_at IS NOT NULL;

-- MaterializedView voltbay.active_sessions (sha256:d627af2990f935f39971e0d0)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."active_sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    meter_last_kwh - meter_start_kwh AS energy_kwh
FROM "voltbay"."sessions"
WHERE stopped_at IS NULL;

-- View voltbay.active_sessions_live (sha256:81a737509ab1041b781f2adb)
CREATE VIEW IF NOT EXISTS "voltbay"."active_sessions_live" AS
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
FROM "voltbay"."active_sessions";

-- MaterializedView voltbay.station_revenue (sha256:da5745549fd6c00c9626e1de)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."station_revenue" AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    'GBP' AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE("voltbay"."completed_sessions", stopped_at, INTERVAL '1800 seconds')
WHERE window_end > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, window_start, window_end;

-- MaterializedView voltbay.connector_availability (sha256:5dd08d84d34f648db89ca15e)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_availability" AS
WITH status_reports AS (
    SELECT station_id, connector_id, status, occurred_at
    FROM "voltbay"."ocpp_events"
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

-- MaterializedView voltbay.stalled_sessions (sha256:40d576ec879aa90ee60e3ba3)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."stalled_sessions" AS
SELECT
    session_id,
    station_id,
    connector_id,
    MAX(connector_type) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(energy_kwh) - MIN(energy_kwh) AS energy_kwh
FROM "voltbay"."ocpp_events"
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '86400 seconds'
GROUP BY session_id, station_id, connector_id
HAVING COUNT(*) FILTER (WHERE event_type = 'StopTransaction') = 0
    AND MAX(occurred_at) < NOW() - INTERVAL '1200 seconds';

-- MaterializedView voltbay.connector_faults (sha256:b9b378660ec3abbb21c1e1eb)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_faults" AS
SELECT
    event_id,
    station_id,
    connector_id,
    connector_type,
    error_code,
    occurred_at
FROM "voltbay"."ocpp_events"
WHERE event_type = 'StatusNotification'
    AND status = 'Faulted'
    AND occurred_at > NOW() - INTERVAL '86400 seconds';

-- MaterializedView voltbay.alerts (sha256:8e2956b07f44c373825087cf)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."alerts" AS
SELECT
    'stalled_session:' || session_id AS alert_id,
    'StalledSession' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    session_id,
    'no event since ' || CAST(last_event_at AS VARCHAR) AS detail,
    last_event_at AS detected_at
FROM "voltbay"."stalled_sessions"
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
FROM "voltbay"."connector_faults";

-- Sink voltbay.alerts_to_kafka (sha256:b5825eb8931dcf896a7d066a)
CREATE SINK IF NOT EXISTS "voltbay"."alerts_to_kafka" FROM "voltbay"."alerts"
WITH (
    connector = 'kafka',
    properties.bootstrap.server = 'kafka-0.kafka.svc:9092',
    topic = 'ocpp.voltbay.alerts',
    primary_key = 'alert_id',
    properties.security.protocol = 'PLAINTEXT'
)
FORMAT PLAIN ENCODE JSON (force_append_only = 'true');

