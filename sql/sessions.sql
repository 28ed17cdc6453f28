-- One row per charging session, keyed by (station_id, session_id): OCPP 1.6 StopTransaction
-- carries no connector id, so the connector and its type come from the StartTransaction (any
-- event's when the start is missing). Energy is meter stop - meter start when both were seen,
-- else the difference of the highest and lowest reading (the register only grows). The horizon
-- (session_horizon, 3 x stateRetention) is longer than any consumer's, so a session that a
-- consumer still reports never loses events to the temporal filter.
CREATE MATERIALIZED VIEW IF NOT EXISTS {sessions} AS
SELECT
    station_id,
    session_id,
    COALESCE(
        MAX(connector_id) FILTER (WHERE event_type = 'StartTransaction'), MAX(connector_id)
    ) AS connector_id,
    COALESCE(
        MAX(connector_type) FILTER (WHERE event_type = 'StartTransaction'), MAX(connector_type)
    ) AS connector_type,
    MIN(occurred_at) AS started_at,
    MAX(occurred_at) AS last_event_at,
    MAX(occurred_at) FILTER (WHERE event_type = 'StopTransaction') AS stopped_at,
    COALESCE(
        MAX(energy_kwh) FILTER (WHERE event_type = 'StopTransaction')
            - MIN(energy_kwh) FILTER (WHERE event_type = 'StartTransaction'),
        MAX(energy_kwh) - MIN(energy_kwh)
    ) AS energy_kwh,
    COUNT(*) AS event_count
FROM {ocpp_events}
WHERE session_id IS NOT NULL
    AND station_id IS NOT NULL
    AND event_type IN ('StartTransaction', 'MeterValues', 'StopTransaction')
    AND occurred_at > NOW() - {session_horizon}
GROUP BY station_id, session_id
