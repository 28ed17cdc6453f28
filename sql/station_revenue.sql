-- Revenue per station per tumbling window (aligned to the UTC epoch), attributed to the window in
-- which a session stopped. Filtered on window_start, so a window leaves before any of its
-- sessions leaves completed_sessions: a reported window never loses sessions. unpriced_sessions
-- counts sessions without a revenue (unknown connector type, or no meter reading); their energy
-- is still in energy_kwh.
CREATE MATERIALIZED VIEW IF NOT EXISTS {station_revenue} AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    COUNT(*) FILTER (WHERE revenue IS NULL) AS unpriced_sessions,
    {currency} AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE({completed_sessions}, stopped_at, {revenue_window})
WHERE window_start > NOW() - {retention}
GROUP BY station_id, window_start, window_end
