-- Rotated inline SASL credentials reach the running source in place (RisingWave >= 2.6), so a
-- rotation does not recreate the source and re-read the topic.
ALTER SOURCE {ocpp_events} CONNECTOR WITH (properties.sasl.username = {username}, properties.sasl.password = {password})
