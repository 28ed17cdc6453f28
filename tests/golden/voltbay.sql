-- tenant voltbay (tenants/voltbay)

-- Schema voltbay (sha256:c67c38caa3a07a7ea92e3b72)
CREATE SCHEMA IF NOT EXISTS "voltbay";

-- Source voltbay.ocpp_events (sha256:dbd784deadfdb27a8272efe7)
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
    occurred_at TIMESTAMPTZ
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

-- MaterializedView voltbay.sessions (sha256:5b2b6c4410ce404f1851b5b9)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."sessions" AS
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
FROM "voltbay"."ocpp_events"
WHERE session_id IS NOT NULL
    AND station_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - INTERVAL '259200 seconds'
GROUP BY station_id, session_id;

-- MaterializedView voltbay.completed_sessions (sha256:30eb9a5716e849be03d1e859)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."completed_sessions" AS
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
            WHEN 'CCS' THEN 0.69
            WHEN 'CHAdeMO' THEN 0.55
            WHEN 'Type2' THEN 0.42
        END,
        2
    ) AS revenue,
    'GBP' AS currency
FROM "voltbay"."sessions"
WHERE stopped_at IS NOT NULL
    AND stopped_at > NOW() - INTERVAL '86400 seconds';

-- MaterializedView voltbay.active_sessions (sha256:a3916269a9a7291d34bb122a)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."active_sessions" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM "voltbay"."sessions"
WHERE stopped_at IS NULL
    AND last_event_at > NOW() - INTERVAL '86400 seconds';

-- View voltbay.active_sessions_live (sha256:ba26e84eb9533d3e71295840)
CREATE VIEW IF NOT EXISTS "voltbay"."active_sessions_live" AS
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
FROM "voltbay"."active_sessions";

-- MaterializedView voltbay.station_revenue (sha256:cc2afdf6fc3e7e393c1b4a81)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."station_revenue" AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    COUNT(*) FILTER (WHERE revenue IS NULL) AS unpriced_sessions,
    'GBP' AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE("voltbay"."completed_sessions", stopped_at, INTERVAL '1800 seconds')
WHERE window_start > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, window_start, window_end;

-- MaterializedView voltbay.stalled_sessions (sha256:78f7e80854c7caae2827b7f5)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."stalled_sessions" AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM "voltbay"."active_sessions"
WHERE last_event_at < NOW() - INTERVAL '1200 seconds';

-- MaterializedView voltbay.status_intervals (sha256:2625838ac993d29ba391e8c1)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."status_intervals" AS
SELECT
    station_id,
    connector_id,
    status,
    occurred_at AS valid_from,
    LEAD(occurred_at) OVER (
        PARTITION BY station_id, connector_id ORDER BY occurred_at, event_id
    ) AS valid_to
FROM "voltbay"."ocpp_events"
WHERE event_type = 'StatusNotification'
    AND station_id IS NOT NULL
    AND connector_id > 0
    AND status IS NOT NULL
    AND occurred_at > NOW() - INTERVAL '259200 seconds';

-- MaterializedView voltbay.status_minutes (sha256:5f97dd3dd8a380648aae027e)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."status_minutes" AS
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
    FROM "voltbay"."status_intervals"
    WHERE valid_to IS NOT NULL
) AS intervals
WHERE bucket < valid_to;

-- MaterializedView voltbay.connector_status_time (sha256:9a422f67ed12bbfa8cd04a18)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_status_time" AS
SELECT
    station_id,
    connector_id,
    status,
    window_start,
    window_end,
    SUM(seconds) AS seconds
FROM HOP("voltbay"."status_minutes", bucket, INTERVAL '60 seconds', INTERVAL '900 seconds')
WHERE window_start > NOW() - INTERVAL '86400 seconds'
GROUP BY station_id, connector_id, status, window_start, window_end;

-- MaterializedView voltbay.connector_uptime (sha256:9b5fd2153d291e31285546a9)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_uptime" AS
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
FROM "voltbay"."connector_status_time"
GROUP BY station_id, connector_id, window_start, window_end;

-- MaterializedView voltbay.connector_status (sha256:2a367aebfda78585f1a04e5a)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_status" AS
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
    FROM "voltbay"."ocpp_events"
    WHERE event_type = 'StatusNotification'
        AND station_id IS NOT NULL
        AND connector_id > 0
        AND status IS NOT NULL
        AND occurred_at IS NOT NULL
) AS reports
WHERE rn = 1;

-- View voltbay.connector_status_live (sha256:6bd9fe519c3ecf462aedb998)
CREATE VIEW IF NOT EXISTS "voltbay"."connector_status_live" AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since,
    status IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved') AS is_up,
    ROUND(EXTRACT(EPOCH FROM (NOW() - since)) / 60, 1) AS minutes_in_status
FROM "voltbay"."connector_status";

-- MaterializedView voltbay.connector_down (sha256:54df43250b3601ee28f198da)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_down" AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since
FROM "voltbay"."connector_status"
WHERE status NOT IN ('Available', 'Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved')
    AND since < NOW() - INTERVAL '1800 seconds';

-- MaterializedView voltbay.connector_faults (sha256:0f7f44db6e7d27e573a4e399)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."connector_faults" AS
SELECT
    station_id,
    connector_id,
    error_code,
    since
FROM "voltbay"."connector_status"
WHERE status = 'Faulted';

-- MaterializedView voltbay.alerts (sha256:00280e178237b71d691b69e1)
CREATE MATERIALIZED VIEW IF NOT EXISTS "voltbay"."alerts" AS
SELECT
    'stalled_session:' || station_id || ':' || session_id AS alert_id,
    'StalledSession' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    session_id,
    'no event since ' || CAST(last_event_at AS VARCHAR) AS detail,
    last_event_at AS detected_at
FROM "voltbay"."stalled_sessions"
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
FROM "voltbay"."connector_down"
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
FROM "voltbay"."connector_faults"
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND since IS NOT NULL;

-- Sink voltbay.alerts_to_kafka (sha256:4eedfee3d849f10276a15330)
CREATE SINK IF NOT EXISTS "voltbay"."alerts_to_kafka" FROM "voltbay"."alerts"
WITH (
    connector = 'kafka',
    properties.bootstrap.server = 'kafka-0.kafka.svc:9092',
    topic = 'ocpp.voltbay.alerts',
    primary_key = 'alert_id',
    properties.security.protocol = 'PLAINTEXT'
)
FORMAT UPSERT ENCODE JSON
KEY ENCODE TEXT;

