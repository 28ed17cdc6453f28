-- Open alerts upserted into PostgreSQL through the JDBC sink: a row is inserted when an alert
-- opens and deleted when it clears. The target table must exist with alert_id as its primary key
-- (the operator creates it: postgres_alerts_table.sql).
CREATE SINK IF NOT EXISTS {alerts_to_postgres} FROM {alerts}
WITH (
    connector = 'jdbc',
    jdbc.url = {jdbc_url},
    user = {user},
    password = {password},
    schema.name = {target_schema},
    table.name = {target_table},
    type = 'upsert',
    primary_key = 'alert_id'
)
