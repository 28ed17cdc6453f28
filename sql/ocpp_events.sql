-- The tenant's OCPP event stream. A SOURCE stores nothing in RisingWave; the materialized views
-- read the shared Kafka stream. No WATERMARK on purpose: a watermark makes every job drop rows
-- behind it, and chargers replay queued transactions hours later with their original
-- timestamps. Lateness is bounded by the views' own temporal filters instead (stateRetention).
-- Missing JSON keys read as NULL.
CREATE SOURCE IF NOT EXISTS {ocpp_events} (
    event_id VARCHAR,
    event_type VARCHAR,
    station_id VARCHAR,
    connector_id INT,
    connector_type VARCHAR,
    session_id VARCHAR,
    status VARCHAR,
    error_code VARCHAR,
    energy_kwh DOUBLE PRECISION,
    occurred_at TIMESTAMPTZ
)
WITH (
    connector = 'kafka',
    topic = {topic},
    properties.bootstrap.server = {bootstrap_servers},
    scan.startup.mode = {startup_mode},
    group.id.prefix = {consumer_group_prefix}{kafka_security}
)
FORMAT PLAIN ENCODE JSON
