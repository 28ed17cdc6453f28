"""The OCPP simulator (``charging-analytics simulate``): a seeded fleet model of stations and
drivers (:mod:`.simulate`), written to Kafka as OCPP events or played by real OCPP charge points
against a gateway (:mod:`.chargepoints`); :mod:`.cli` is the subcommand. It is a client of the
event contract (:mod:`charging_analytics.events`); the operator does not import it."""
