SELECT
    'low_availability:' || station_id || ':' || CAST(connector_id AS VARCHAR) AS alert_id,
    'LowAvailability' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    CAST(NULL AS VARCHAR) AS session_id,
    'uptime ' || CAST(uptime_pct AS VARCHAR) || '% in the window ending ' || CAST(window_end AS VARCHAR)
        AS detail,
    window_start AS detected_at
FROM {low_availability}
WHERE station_id IS NOT NULL AND connector_id IS NOT NULL AND uptime_pct IS NOT NULL
