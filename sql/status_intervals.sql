-- One row per status interval of a connector: from a StatusNotification to the connector's next
-- one (valid_to is NULL while it is the current status). Connector 0 is the charge point as a
-- whole, not a connector, and is excluded. StatusNotification is sent on change only, so time,
-- not the number of reports, is what availability measures.
CREATE MATERIALIZED VIEW IF NOT EXISTS {status_intervals} AS
SELECT
    station_id,
    connector_id,
    status,
    occurred_at AS valid_from,
    LEAD(occurred_at) OVER (
        PARTITION BY station_id, connector_id ORDER BY occurred_at, event_id
    ) AS valid_to
FROM {ocpp_events}
WHERE event_type = 'StatusNotification'
    AND station_id IS NOT NULL
    AND connector_id > 0
    AND status IS NOT NULL
    AND occurred_at > NOW() - {status_horizon}
