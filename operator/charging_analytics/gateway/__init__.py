"""The OCPP gateway: real charge points (OCPP 1.6J and 2.0.1 over WebSocket) into each tenant's
events topic.  ``config`` (tenants file, :class:`~.config.GatewayConfig`), ``mapping`` (pure OCPP
message → :class:`~charging_analytics.events.OcppEvent` rules), ``state`` (transaction state in a
compacted Kafka topic), ``delivery`` (the acknowledged Kafka producer) and ``server`` (WebSocket
endpoint, handshake checks, OCPP handlers, metrics)."""
