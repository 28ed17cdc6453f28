-- Sessions without a StopTransaction that had an event within stateRetention. Elapsed time needs
-- NOW() at read time, so it lives in the plain view active_sessions_live, not here.
CREATE MATERIALIZED VIEW IF NOT EXISTS {active_sessions} AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM {sessions}
WHERE stopped_at IS NULL
    AND last_event_at > NOW() - {retention}
