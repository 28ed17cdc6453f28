SELECT
    'stalled_session:' || station_id || ':' || session_id AS alert_id,
    'StalledSession' AS alert_type,
    'warning' AS severity,
    station_id,
    connector_id,
    session_id,
    'no event since ' || CAST(last_event_at AS VARCHAR) AS detail,
    last_event_at AS detected_at
FROM {stalled_sessions}
WHERE station_id IS NOT NULL AND session_id IS NOT NULL AND last_event_at IS NOT NULL
