-- Active sessions with no event for longer than the threshold, derived from active_sessions (one
-- aggregation's state instead of two). last_event_at < NOW() - threshold is the delaying
-- (upper-bound) temporal filter: a row appears once the session has been quiet for the threshold
-- and is retracted when an event arrives or the session stops.
CREATE MATERIALIZED VIEW IF NOT EXISTS {stalled_sessions} AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    last_event_at,
    energy_kwh
FROM {active_sessions}
WHERE last_event_at < NOW() - {stalled_after}
