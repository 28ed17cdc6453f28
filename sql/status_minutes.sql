-- Seconds each connector spent in each status, per one-minute bucket, from the closed status
-- intervals (the open one is in connector_status_live).
CREATE MATERIALIZED VIEW IF NOT EXISTS {status_minutes} AS
SELECT
    station_id,
    connector_id,
    status,
    bucket,
    EXTRACT(EPOCH FROM (LEAST(valid_to, bucket + INTERVAL '1 minute') - GREATEST(valid_from, bucket)))
        AS seconds
FROM (
    SELECT
        station_id,
        connector_id,
        status,
        valid_from,
        valid_to,
        generate_series(date_trunc('minute', valid_from), valid_to, INTERVAL '1 minute') AS bucket
    FROM {status_intervals}
    WHERE valid_to IS NOT NULL
) AS intervals
WHERE bucket < valid_to
