-- Sessions that stopped within stateRetention: duration, delivered energy and revenue at the
-- tenant's tariff (price per kWh by connector type). A session on an unknown connector type (or
-- without any meter reading) has a NULL revenue: station_revenue counts it as unpriced. Filtered
-- on its own time column (stopped_at), inside the sessions view's longer horizon.
CREATE MATERIALIZED VIEW IF NOT EXISTS {completed_sessions} AS
SELECT
    station_id,
    session_id,
    connector_id,
    connector_type,
    started_at,
    stopped_at,
    ROUND(EXTRACT(EPOCH FROM (stopped_at - started_at)) / 60, 2) AS duration_minutes,
    ROUND(CAST(energy_kwh AS NUMERIC), 3) AS energy_kwh,
    ROUND(
        CAST(energy_kwh AS NUMERIC) * CASE connector_type
            WHEN 'CCS' THEN {price_ccs}
            WHEN 'CHAdeMO' THEN {price_chademo}
            WHEN 'Type2' THEN {price_type2}
        END,
        2
    ) AS revenue,
    {currency} AS currency
FROM {sessions}
WHERE stopped_at IS NOT NULL
    AND stopped_at > NOW() - {retention}
