"""A drift pass that changes nothing, after one that wrote nothing, has nothing to publish.

The first drift pass after an apply writes the status (Ready's reason becomes UpToDate); the next
renders once more (the status it compares is new) and writes nothing. From then on a pass takes
that pass's report as settled: it neither parses the stored status nor builds a status patch,
until anything it depends on changes. ``Service`` runs against the RisingWave double with the
in-memory Kubernetes stand-in of ``test_shared_snapshot``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from charging_analytics.operator.service import Outcome, Resource, Service
from tests.rw_double import RisingWaveDouble
from tests.service.test_shared_snapshot import FakeKube, is_up_to_date, settings, tenant_body


async def timer_pass(service: Service, body: dict[str, Any]) -> tuple[Resource, Outcome]:
    res = Resource.from_body(body)
    return res, await service.reconcile(res, origin="timer")


Steps = Callable[[Service, FakeKube, dict[str, Any]], Awaitable[None]]


def after_create(double: RisingWaveDouble, steps: Steps) -> None:
    """Create one tenant through the service, then run ``steps`` (service, kube, resource body)."""
    body = tenant_body(0, double)
    kube = FakeKube({body["metadata"]["name"]: body})

    async def scenario() -> None:
        service = Service(settings(), kube)
        try:
            created = await service.reconcile(Resource.from_body(body), origin="create")
            assert created.result == "ok", created.conditions
            await steps(service, kube, body)
        finally:
            await service.close()

    asyncio.run(scenario())


def test_a_settled_drift_pass_neither_parses_the_status_nor_patches_it(
    risingwave_double: RisingWaveDouble,
) -> None:
    async def steps(service: Service, kube: FakeKube, body: dict[str, Any]) -> None:
        _, first = await timer_pass(service, body)
        assert is_up_to_date(first)
        assert not first.settled
        writes = kube.status_patches
        _, second = await timer_pass(service, body)  # it compares the status just written
        assert is_up_to_date(second)
        assert not second.settled
        assert kube.status_patches == writes

        for _ in range(3):
            res, settled = await timer_pass(service, body)
            assert is_up_to_date(settled)
            assert settled.settled
            assert "status" not in vars(res), "a settled pass parsed the stored status"
        assert kube.status_patches == writes

    after_create(risingwave_double, steps)


def test_a_new_generation_with_the_same_spec_reaches_the_status_on_the_next_pass(
    risingwave_double: RisingWaveDouble,
) -> None:
    async def steps(service: Service, kube: FakeKube, body: dict[str, Any]) -> None:
        for _ in range(3):
            _, outcome = await timer_pass(service, body)
        assert outcome.settled
        # a spec edited and edited back: the same spec under a new generation
        body["metadata"]["generation"] = 2
        _, outcome = await timer_pass(service, body)
        assert not outcome.settled
        assert body["status"]["observedGeneration"] == 2
        _, outcome = await timer_pass(service, body)
        assert not outcome.settled  # the status it compares was just written
        _, outcome = await timer_pass(service, body)
        assert outcome.settled

    after_create(risingwave_double, steps)
