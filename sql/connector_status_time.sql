-- Time (seconds) each connector spent in each status per hopping window. HOP(relation, time,
-- slide, size): size is a multiple of slide (validated in the spec). Filtered on window_start,
-- inside the status intervals' longer horizon.
CREATE MATERIALIZED VIEW IF NOT EXISTS {connector_status_time} AS
SELECT
    station_id,
    connector_id,
    status,
    window_start,
    window_end,
    SUM(seconds) AS seconds
FROM HOP({status_minutes}, bucket, {availability_slide}, {availability_window})
WHERE window_start > NOW() - {retention}
GROUP BY station_id, connector_id, status, window_start, window_end
