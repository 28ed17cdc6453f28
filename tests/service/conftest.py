"""Fixtures for the operator's end-to-end tests: the real apiserver (via KopfRunner), the real Kafka
broker and PostgreSQL, and the RisingWave double (or a live RisingWave with ``RISINGWAVE_DSN``).

The operator reads its settings from the environment when ``charging_analytics.operator.main`` is
imported, so the fast intervals below are set before anything imports it.
"""

from __future__ import annotations

import os

TEST_SETTINGS = {
    "CHA_DRIFT_INTERVAL_SECONDS": "2",
    "CHA_PROGRESS_INTERVAL_SECONDS": "0.5",
    "CHA_CATALOG_CACHE_SECONDS": "1",
    "CHA_BACKOFF_BASE_SECONDS": "1",
    "CHA_BACKOFF_MAX_SECONDS": "4",
    "CHA_CONNECT_TIMEOUT_SECONDS": "2",
    "CHA_KAFKA_TIMEOUT_SECONDS": "5",
    "CHA_STATEMENT_TIMEOUT_SECONDS": "30",
    "CHA_SECRET_STORE": "inline",
    "CHA_METRICS_PORT": "0",
}
for _key, _value in TEST_SETTINGS.items():
    os.environ.setdefault(_key, _value)

import functools  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from charging_analytics.operator.service import Service  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.postgres import PostgresServer  # noqa: E402
from tests.rw_double.fixtures import RisingWaveTarget  # noqa: E402
from tests.service.harness import Harness, Reconciles  # noqa: E402


@pytest.fixture
def harness(
    control_plane: ControlPlane,
    namespace: str,
    kafka_broker: str,
    postgres_server: PostgresServer,
    risingwave: RisingWaveTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    """Everything a lifecycle test needs, bound to a fresh namespace; the operator is started by
    the test (``with harness.operator(): ...``) so restarts can be tested too."""
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    h = Harness(control_plane, namespace, kafka_broker, postgres_server, risingwave)
    yield h
    h.close()


@pytest.fixture
def reconciles(monkeypatch: pytest.MonkeyPatch) -> Reconciles:
    seen = Reconciles()
    original = Service.reconcile

    @functools.wraps(original)
    async def spy(self: Service, res: Any, *, origin: str) -> Any:
        seen.append((origin, res.name))
        seen.running += 1
        try:
            outcome = await original(self, res, origin=origin)
            seen.results.append((origin, res.name, outcome.result))
            return outcome
        finally:
            seen.running -= 1

    monkeypatch.setattr(Service, "reconcile", spy)
    return seen
