-- The still-open status interval of every connector, measured when read (a plain view, so NOW()
-- may appear in its select list).
CREATE VIEW IF NOT EXISTS {connector_status_live} AS
SELECT
    station_id,
    connector_id,
    status,
    error_code,
    since,
    status IN ({up_statuses}) AS is_up,
    ROUND(EXTRACT(EPOCH FROM (NOW() - since)) / 60, 1) AS minutes_in_status
FROM {connector_status}
