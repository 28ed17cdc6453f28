-- A plain (non-materialized) view is planned as a batch query on every read, so NOW() may appear
-- in its select list: elapsed and idle minutes are computed when a dashboard asks.
CREATE VIEW IF NOT EXISTS {active_sessions_live} AS
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
FROM {active_sessions}
