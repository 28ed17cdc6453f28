-- Connectors whose current status is Faulted (open from the Faulted report until the connector
-- reports another status).
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_faults} AS
SELECT
    station_id,
    connector_id,
    error_code,
    since
FROM {connector_status}
WHERE status = 'Faulted'
