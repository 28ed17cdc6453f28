-- Every Faulted status report within the retention horizon.
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_faults} AS
SELECT
    event_id,
    station_id,
    connector_id,
    connector_type,
    error_code,
    occurred_at
FROM {source}
WHERE event_type = 'StatusNotification'
    AND status = 'Faulted'
    AND occurred_at > NOW() - {retention}
