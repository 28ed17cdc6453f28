-- Sessions that have stopped: duration, delivered energy and revenue at the tenant's tariff
-- (price per kWh by connector type). Unknown connector types get a NULL revenue, not a guess.
CREATE MATERIALIZED VIEW IF NOT EXISTS {completed_sessions} AS
SELECT
    session_id,
    station_id,
    connector_id,
    connector_type,
    started_at,
    stopped_at,
    ROUND(EXTRACT(EPOCH FROM (stopped_at - started_at)) / 60, 2) AS duration_minutes,
    ROUND(CAST(meter_last_kwh - meter_start_kwh AS NUMERIC), 3) AS energy_kwh,
    ROUND(
        CAST(meter_last_kwh - meter_start_kwh AS NUMERIC) * CASE connector_type
            WHEN 'CCS' THEN {price_ccs}
            WHEN 'CHAdeMO' THEN {price_chademo}
            WHEN 'Type2' THEN {price_type2}
        END,
        2
    ) AS revenue,
    {currency} AS currency
FROM {sessions}
WHERE stopped_at IS NOT NULL
