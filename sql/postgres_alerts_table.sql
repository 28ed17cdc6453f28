-- Runs on the PostgreSQL alert database (not RisingWave): the JDBC upsert sink needs this table
-- to exist, with the same column names and types as the alerts view and alert_id as primary key.
CREATE TABLE IF NOT EXISTS {table} (
    alert_id VARCHAR PRIMARY KEY,
    alert_type VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    station_id VARCHAR,
    connector_id INTEGER,
    session_id VARCHAR,
    detail VARCHAR,
    detected_at TIMESTAMPTZ
)
