-- One row per charging session seen within the retention horizon. Energy is the difference of the
-- meter register readings (energy_kwh is absolute). No NOW() in the select list; the lower-bound
-- temporal filter expires old events so the aggregation state stays bounded.
CREATE MATERIALIZED VIEW IF NOT EXISTS {sessions} AS
SELECT
    session_id,
    station_id,
    connector_id,
    MAX(connector_type) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(occurred_at) FILTER (WHERE event_type = 'StopTransaction') AS stopped_at,
    MIN(energy_kwh) AS meter_start_kwh,
    MAX(energy_kwh) AS meter_last_kwh,
    COUNT(*) AS event_count
FROM {source}
WHERE session_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - {retention}
GROUP BY session_id, station_id, connector_id
