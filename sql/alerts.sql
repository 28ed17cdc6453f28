-- All of the tenant's open alerts in one shape, for the sinks. Each enabled alert relation
-- contributes one branch (alerts_*.sql), joined with UNION ALL.
CREATE MATERIALIZED VIEW IF NOT EXISTS {alerts} AS
{branches}
