-- Sessions without a StopTransaction yet. Elapsed time needs NOW() at read time, so it lives in
-- the plain view active_sessions_live, not here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {active_sessions} AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    meter_last_kwh - meter_start_kwh AS energy_kwh
FROM {sessions}
WHERE stopped_at IS NULL
