"""End to end: gateway, charge points and simulator through real Kafka; the views' numbers on real
PostgreSQL."""
