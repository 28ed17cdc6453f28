-- All of the tenant's open alerts in one shape, for the sinks. Each enabled alert relation
-- contributes one branch (alerts_*.sql), joined with UNION ALL. Every branch builds alert_id from
-- non-NULL parts only and filters rows with a NULL part, and each type's id is unique within it
-- (one row per session or connector), so alert_id is a key the sinks can upsert and delete by.
CREATE MATERIALIZED VIEW IF NOT EXISTS {alerts} AS
{branches}
