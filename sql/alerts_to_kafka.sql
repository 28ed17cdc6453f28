-- Alert events to Kafka, keyed by alert_id. The alerts view retracts rows when an alert clears;
-- force_append_only publishes each alert once, when it opens.
CREATE SINK IF NOT EXISTS {sink} FROM {alerts}
WITH (
    connector = 'kafka',
    properties.bootstrap.server = {bootstrap_servers},
    topic = {topic},
    primary_key = 'alert_id'{kafka_security}
)
FORMAT PLAIN ENCODE JSON (force_append_only = 'true')
