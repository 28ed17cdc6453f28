-- Open sessions with no event for longer than the threshold. The HAVING condition is a temporal
-- filter in its valid form (column expression < NOW() - interval): a row appears once the session
-- has been quiet for the threshold and is retracted when an event arrives or the session stops.
CREATE MATERIALIZED VIEW IF NOT EXISTS {stalled_sessions} AS
SELECT
    session_id,
    station_id,
    connector_id,
    MAX(connector_type) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(energy_kwh) - MIN(energy_kwh) AS energy_kwh
FROM {source}
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - {retention}
GROUP BY session_id, station_id, connector_id
HAVING COUNT(*) FILTER (WHERE event_type = 'StopTransaction') = 0
    AND MAX(occurred_at) < NOW() - {stalled_after}
