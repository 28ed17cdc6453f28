SELECT
    'connector_down:' || station_id || ':' || CAST(connector_id AS VARCHAR) || ':'
        || CAST(CAST(EXTRACT(EPOCH FROM since) * 1000 AS BIGINT) AS VARCHAR) AS alert_id,
    'ConnectorDown' AS alert_type,
    'critical' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    status || ' since ' || CAST(since AS VARCHAR) || ' (error code ' || COALESCE(error_code, 'unknown')
        || ')' AS detail,
    since AS detected_at
FROM {connector_down}
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND since IS NOT NULL AND status IS NOT NULL
