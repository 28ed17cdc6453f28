-- Connectors whose uptime in the most recently closed availability window is below the threshold.
-- window_end <= NOW() waits for the window to close; window_end > NOW() - slide keeps only the
-- latest closed window, so an alert row lasts one slide and repeats while the condition holds.
CREATE MATERIALIZED VIEW IF NOT EXISTS {low_availability} AS
SELECT
    station_id,
    connector_id,
    window_start,
    window_end,
    status_reports,
    uptime_pct
FROM {connector_availability}
WHERE uptime_pct < {threshold_pct}
    AND window_end <= NOW()
    AND window_end > NOW() - {availability_slide}
