-- The current status of every connector: its latest StatusNotification (top 1 per connector).
-- No temporal filter: over the append-only source the top-1 state is one row per connector.
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_status} AS
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
    FROM {ocpp_events}
    WHERE event_type = 'StatusNotification'
        AND station_id IS NOT NULL
        AND connector_id > 0
        AND status IS NOT NULL
        AND occurred_at IS NOT NULL
) AS reports
WHERE rn = 1
