-- Connectors whose current status has been a down status (not in analytics.upStatuses) for
-- longer than alerts.connectorDownMinutes, even when the charger sends nothing more. The
-- delaying filter since < NOW() - threshold makes the row appear at since + threshold; the
-- connector's next status report retracts it.
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_down} AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since
FROM {connector_status}
WHERE status NOT IN ({up_statuses})
    AND since < NOW() - {down_after}
