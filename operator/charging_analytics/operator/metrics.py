"""Prometheus metrics of the operator."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILE_SECONDS = Histogram(
    "cha_reconcile_duration_seconds",
    "Duration of a reconcile",
    ["result"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
_RECONCILE_SECONDS_BY_RESULT: dict[str, Histogram] = {}


def reconcile_seconds(result: str) -> Histogram:
    """:data:`RECONCILE_SECONDS` for one result, looked up once per result (every drift pass
    observes one; ``labels()`` validates and locks on each call)."""
    child = _RECONCILE_SECONDS_BY_RESULT.get(result)
    if child is None:
        child = _RECONCILE_SECONDS_BY_RESULT[result] = RECONCILE_SECONDS.labels(result)
    return child


RECONCILE_ERRORS = Counter(
    "cha_reconcile_errors_total", "Reconciles that ended Stalled or failed", ["reason"]
)
MANAGED_OBJECTS = Gauge("cha_managed_objects", "RisingWave objects managed per tenant", ["namespace", "name"])
DRIFT_CORRECTIONS = Counter("cha_drift_corrections_total", "Drift repairs applied", ["namespace", "name"])
DRIFT_DETECTED = Gauge("cha_drifted", "1 when the tenant differs from its spec", ["namespace", "name"])
PENDING_APPROVALS = Gauge(
    "cha_pending_approvals", "1 when a destructive plan waits for approval", ["namespace", "name"]
)
CATALOG_READS = Counter("cha_catalog_reads_total", "Catalog snapshots read from RisingWave", ["endpoint"])
APPLIED_ACTIONS = Counter("cha_applied_actions_total", "DDL actions applied", ["type"])
KAFKA_CLIENTS = Counter("cha_kafka_admin_clients_opened_total", "Kafka admin clients created")
KAFKA_CHECKS = Counter("cha_kafka_checks_total", "Kafka topic checks (one metadata request each)")
POSTGRES_CONNECTIONS = Counter(
    "cha_postgres_connections_opened_total", "Connections opened to PostgreSQL alert databases"
)


def serve(port: int) -> None:
    if port:
        start_http_server(port)
