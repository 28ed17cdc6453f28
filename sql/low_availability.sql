-- Connectors whose uptime in the most recently closed availability window is below the threshold.
-- window_end <= NOW() waits for the window to close; window_end > NOW() - slide keeps only the
-- latest closed window, so there is at most one row per connector, replaced each slide while the
-- condition holds (the alert keeps its id; see alerts_low_availability.sql).
CREATE MATERIALIZED VIEW IF NOT EXISTS {low_availability} AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    observed_seconds,
    uptime_pct
FROM {connector_uptime}
WHERE uptime_pct < {threshold_pct}
    AND window_end <= NOW()
    AND window_end > NOW() - {availability_slide}
