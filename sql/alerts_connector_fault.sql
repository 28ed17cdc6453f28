SELECT
    'connector_fault:' || event_id AS alert_id,
    'ConnectorFault' AS alert_type,
    'critical' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'error code ' || COALESCE(error_code, 'unknown') AS detail,
    occurred_at AS detected_at
FROM {connector_faults}
