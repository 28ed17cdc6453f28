-- Uptime by time per hopping window: the share of the observed seconds spent in an up status
-- (analytics.upStatuses). observed_seconds is the time covered by closed status intervals;
-- available_pct is the share spent Available (free for a new driver).
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_uptime} AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    SUM(seconds) AS observed_seconds,
    COALESCE(SUM(seconds) FILTER (WHERE status IN ({up_statuses})), 0) AS up_seconds,
    ROUND(
        CAST(
            COALESCE(SUM(seconds) FILTER (WHERE status IN ({up_statuses})), 0) * 100.0
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
FROM {connector_status_time}
GROUP BY station_id, connector_id, window_start, window_end
