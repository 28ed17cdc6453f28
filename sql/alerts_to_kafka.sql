-- Alert events to Kafka as an upsert stream keyed by alert_id (a plain-text key): an opened or
-- updated alert is a record with the alert as JSON value, a cleared alert is a tombstone (null
-- value). A compacted topic therefore holds exactly the open alerts. See docs/alerts.md.
CREATE SINK IF NOT EXISTS {alerts_to_kafka} FROM {alerts}
WITH (
    connector = 'kafka',
    properties.bootstrap.server = {bootstrap_servers},
    topic = {topic},
    primary_key = 'alert_id'{kafka_security}
)
FORMAT UPSERT ENCODE JSON
KEY ENCODE TEXT
