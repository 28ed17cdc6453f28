-- Revenue per station per tumbling window, attributed to the window in which a session stopped.
-- TUMBLE's first argument is a named relation. The temporal filter on window_end runs before the
-- aggregation, so windows older than the retention horizon leave the state.
CREATE MATERIALIZED VIEW IF NOT EXISTS {station_revenue} AS
SELECT
    station_id,
    window_start,
    window_end,
    COUNT(*) AS sessions,
    SUM(energy_kwh) AS energy_kwh,
    SUM(revenue) AS revenue,
    {currency} AS currency,
    ROUND(AVG(duration_minutes), 2) AS avg_duration_minutes
FROM TUMBLE({completed_sessions}, stopped_at, {revenue_window})
WHERE window_end > NOW() - {retention}
GROUP BY station_id, window_start, window_end
