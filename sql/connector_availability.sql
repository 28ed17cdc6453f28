-- Share of a connector's status reports per hopping window: free_pct counts 'Available' reports,
-- uptime_pct counts every report that is not 'Faulted' or 'Unavailable' (occupied is up, not free).
-- Only StatusNotification events count; HOP needs a named relation, hence the CTE.
-- HOP(relation, time, slide, size): size is a multiple of slide (validated in the spec).
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_availability} AS
WITH status_reports AS (
    SELECT station_id, connector_id, status, occurred_at
    FROM {source}
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
FROM HOP(status_reports, occurred_at, {availability_slide}, {availability_window})
WHERE window_end > NOW() - {retention}
GROUP BY station_id, connector_id, window_start, window_end
