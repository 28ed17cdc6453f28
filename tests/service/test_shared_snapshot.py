"""The reconcile service shares one catalog snapshot per RisingWave endpoint (behaviour, not timing).

``Service`` runs directly against the RisingWave double with an in-memory stand-in for the few
Kubernetes calls it makes, so no apiserver, Kafka or PostgreSQL is needed (``check_kafka`` off,
tenants without a PostgreSQL sink or read-only user). Catalog reads are counted twice: by the
service's own ``cha_catalog_reads_total{endpoint}`` counter and by wrapping
``RisingWaveClient.snapshot`` (which also sees reads that bypass the shared cache).

The snapshot cache's age is driven by one clock (real monotonic time plus an offset the test
advances) given to both the service, which ages the snapshot, and the client, which stamps its
``taken_at``; so nothing here sleeps or depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import REGISTRY

from charging_analytics import constants as c
from charging_analytics.catalog import CatalogSnapshot, TenantCatalog
from charging_analytics.operator import endpoints as endpoints_module
from charging_analytics.operator import service as service_module
from charging_analytics.operator.endpoints import EndpointPool
from charging_analytics.operator.kube import ApiSession, KubeError
from charging_analytics.operator.service import Outcome, Resource, Service
from charging_analytics.operator.settings import OperatorSettings
from charging_analytics.rw import client as client_module
from charging_analytics.rw.client import Endpoint, RisingWaveClient
from charging_analytics.secret_source import StoredSecret
from testbed.specs import resource, spec_dict
from tests.rw_double import RisingWaveDouble

TENANTS = 50
NAMESPACE = "fleet"
#: Far longer than the test runs: only the test's clock ages the shared snapshot.
CACHE_SECONDS = 3600.0


def no_apiserver() -> Any:
    raise KubeError(None, "this test has no API server")


class FakeKube:
    """The Kubernetes calls the service makes (the ``KubeApi`` protocol), against resource bodies
    held in memory; the raw session (Grafana objects, which these tenants do not have) refuses."""

    def __init__(self, bodies: Mapping[str, dict[str, Any]]) -> None:
        self.api = ApiSession(login=no_apiserver)
        self.bodies = dict(bodies)  # by resource name (one namespace)
        self.secrets: dict[tuple[str, str], StoredSecret] = {}
        self.status_patches = 0

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        return self.secrets.get((namespace, name))

    async def write_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        *,
        owner: Mapping[str, str],
        existing: StoredSecret | None,
    ) -> None:
        encoded = {k: v.encode() for k, v in data.items()}
        self.secrets[(namespace, name)] = StoredSecret(encoded, frozenset({owner["uid"]}))

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """A merge patch of the status subresource (``None`` removes a key)."""
        self.status_patches += 1
        body = self.bodies.get(name)
        if body is None or body["metadata"]["namespace"] != namespace:
            return
        merged = dict(body.get("status") or {})
        for key, value in status.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        body["status"] = merged

    async def get_resource(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.bodies.get(name)
        return body if body is not None and body["metadata"]["namespace"] == namespace else None

    async def list_resources(self, namespace: str) -> list[dict[str, Any]]:
        return [b for b in self.bodies.values() if b["metadata"]["namespace"] == namespace]

    async def close(self) -> None:
        return None


class Clock:
    """Stands in for the ``time`` module of the service and the client: monotonic + ``offset``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


class ReadCounter:
    """Counts every ``RisingWaveClient.snapshot()`` call (shared-cache reads or not)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = RisingWaveClient.snapshot

        async def counted(
            client: RisingWaveClient, previous: CatalogSnapshot | None = None
        ) -> CatalogSnapshot:
            self.calls += 1
            return await original(client, previous)

        monkeypatch.setattr(RisingWaveClient, "snapshot", counted)


def tenant_body(i: int, double: RisingWaveDouble) -> dict[str, Any]:
    rw = {"host": double.host, "port": double.port, "database": "dev", "sslmode": "disable"}
    return resource(
        f"tenant-{i:02d}",
        NAMESPACE,
        spec_dict(f"fleet_{i:02d}", bootstrap="127.0.0.1:9092", risingwave=rw),
        generation=1,
        uid=str(uuid.uuid4()),
        finalizers=[c.FINALIZER],  # adopted by the operator (timer reconciles need it)
    )


def settings() -> OperatorSettings:
    return OperatorSettings(
        check_kafka=False,
        manage_postgres_table=False,
        catalog_cache_seconds=CACHE_SECONDS,
        secret_store="inline",
        metrics_port=0,
        # progress is published only during applies that outlast this; keep it out of the counts
        progress_interval_seconds=CACHE_SECONDS,
    )


def catalog_reads_metric(endpoint_key: str) -> float:
    value = REGISTRY.get_sample_value("cha_catalog_reads_total", {"endpoint": endpoint_key})
    return value or 0.0


def is_up_to_date(outcome: Outcome) -> bool:
    return any(
        cond.type == c.COND_READY and cond.status == "True" and cond.reason == "UpToDate"
        for cond in outcome.conditions
    )


def test_timer_reconciles_of_many_tenants_share_one_catalog_read_per_interval(
    risingwave_double: RisingWaveDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    double = risingwave_double
    endpoint_key = f"{double.host}:{double.port}/dev"
    kube = FakeKube({b["metadata"]["name"]: b for b in (tenant_body(i, double) for i in range(TENANTS))})
    clock = Clock()
    monkeypatch.setattr(service_module, "time", clock)
    monkeypatch.setattr(client_module, "time", clock)
    client_reads = ReadCounter(monkeypatch)
    trims: list[bool] = []

    def trimmed() -> bool:
        trims.append(True)
        return True

    monkeypatch.setattr(endpoints_module, "release_free_memory", trimmed)

    def reads() -> tuple[float, int]:
        """(the service's counter for this endpoint, snapshot() calls on any client)"""
        return catalog_reads_metric(endpoint_key), client_reads.calls

    def plus(before: tuple[float, int], n: int) -> tuple[float, int]:
        return before[0] + n, before[1] + n

    async def reconcile_all(service: Service, origin: str) -> list[Outcome]:
        """Every tenant at once, as Kopf's timers fire them (each reconcile re-reads its body)."""
        return await asyncio.gather(
            *(service.reconcile(Resource.from_body(b), origin=origin) for b in kube.bodies.values())
        )

    async def scenario() -> None:
        service = Service(settings(), kube, clock=clock.monotonic)
        try:
            # Initial apply, one tenant after the other (origin "create" reads fresh each time).
            for body in kube.bodies.values():
                outcome = await service.reconcile(Resource.from_body(body), origin="create")
                assert outcome.result == "ok", (body["metadata"]["name"], outcome.conditions)
            tenants = {b["spec"]["tenant"] for b in kube.bodies.values()}
            assert tenants <= {o.schema for o in double.objects()}

            # Interval 1: the cache has aged past catalog_cache_seconds -> exactly one read.
            clock.offset += CACHE_SECONDS + 1
            before = reads()
            outcomes = await reconcile_all(service, "timer")
            assert all(is_up_to_date(o) for o in outcomes), [o.conditions for o in outcomes]
            assert reads() == plus(before, 1), "50 timer reconciles must share one catalog read"

            # Still inside interval 1: another pass over every tenant reads nothing.
            before = reads()
            outcomes = await reconcile_all(service, "timer")
            assert all(is_up_to_date(o) for o in outcomes)
            assert reads() == before

            # Interval 2: once the cache age has passed, exactly one more read, whose unchanged
            # objects are those the first read made (not a second copy of the catalog).
            client = next(iter(service.endpoints.clients.values()))
            one = (await service.endpoints.view(client, sorted(tenants)[0])).catalog
            clock.offset += CACHE_SECONDS + 1
            before = reads()
            outcomes = await reconcile_all(service, "timer")
            assert all(is_up_to_date(o) for o in outcomes)
            assert reads() == plus(before, 1)
            two = (await service.endpoints.view(client, sorted(tenants)[0])).catalog
            assert reads() == plus(before, 1)
            assert two is not one
            assert len(one.objects) >= 5
            assert all(two.objects[name] is obj for name, obj in one.objects.items())
            assert all(two.ledger[name] is entry for name, entry in one.ledger.items())

            # A spec change (origin "update") never plans against a cached snapshot: it reads anew,
            # though the cache is young, and (nothing to apply) reads nothing else.
            first = next(iter(kube.bodies.values()))
            before = reads()
            outcome = await service.reconcile(Resource.from_body(first), origin="update")
            assert is_up_to_date(outcome), outcome.conditions
            assert reads() == plus(before, 1)

            # ... and that fresh read becomes the shared snapshot for the timers that follow.
            before = reads()
            outcomes = await reconcile_all(service, "timer")
            assert all(is_up_to_date(o) for o in outcomes)
            assert reads() == before
            # each read's C memory (its whole result) went back to the system once it was done
            assert len(trims) == client_reads.calls
        finally:
            await service.close()

    asyncio.run(scenario())


def test_concurrent_fresh_reads_share_one_read_and_a_later_request_waits_for_the_next(
    risingwave_double: RisingWaveDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single-flight: requests whose freshness the read in flight satisfies join it; one that
    needs a read begun after that one's start gets the next read, which then serves it."""
    double = risingwave_double
    clock = Clock()
    client_reads = ReadCounter(monkeypatch)
    endpoint = Endpoint(host=double.host, port=double.port, database="dev", user="root", password="")

    async def scenario() -> None:
        pool = EndpointPool(settings(), clock.monotonic)
        client = await pool.client(endpoint)
        try:
            before = clock.monotonic()
            views = await asyncio.gather(*(pool.view(client, f"t{i}", fresh_since=before) for i in range(20)))
            assert client_reads.calls == 1, "20 requests met by the one read in flight"
            assert all(v.owner is None and not v.catalog.schema_exists for v in views)

            first = asyncio.create_task(pool.view(client, "t0", fresh_since=clock.monotonic()))
            await asyncio.sleep(0)  # the first read is now in flight
            clock.offset += 0.001  # a request arriving after that read began ...
            later = pool.view(client, "t1", fresh_since=clock.monotonic())
            joined = pool.view(client, "t2", fresh_since=before)  # ... and one it satisfies
            await asyncio.gather(first, later, joined)
            assert client_reads.calls == 3, "the later request waited for one more read, no more"

            # what a tenant's own apply left is seen without a read while the snapshot is young
            written = TenantCatalog(tenant="t3", schema_exists=True, owner="fleet/t3")
            pool.wrote(endpoint, "t3", written)
            own = await pool.view(client, "t3")
            assert (own.catalog, own.owner, client_reads.calls) == (written, "fleet/t3", 3)
            # ... and an unknown result (a failed apply) forces the tenant's next view to read
            pool.wrote(endpoint, "t4", None)
            await pool.view(client, "t4")
            assert client_reads.calls == 4
            # once the snapshot ages out, a read that began after the apply replaces its record
            clock.offset += CACHE_SECONDS + 1
            replaced = await pool.view(client, "t3")
            assert client_reads.calls == 5
            assert replaced.owner is None  # nothing was really applied for t3 in the double
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_a_burst_of_creates_holds_rendered_plans_for_twice_the_apply_slots_at_most(
    risingwave_double: RisingWaveDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a reconcile holds between its render and the end of its apply (its statements and
    plan) is bounded per endpoint, however many creates arrive at once; all of them still apply."""
    double = risingwave_double
    bodies = [tenant_body(i, double) for i in range(12)]
    kube = FakeKube({b["metadata"]["name"]: b for b in bodies})
    holding = [0, 0]  # now, most at once
    original = Service._plan_and_apply

    async def counted(self: Service, *args: Any, **kwargs: Any) -> Outcome:
        holding[0] += 1
        holding[1] = max(holding)
        try:
            return await original(self, *args, **kwargs)
        finally:
            holding[0] -= 1

    monkeypatch.setattr(Service, "_plan_and_apply", counted)

    async def scenario() -> None:
        service = Service(settings().model_copy(update={"max_concurrent_applies": 2}), kube)
        try:
            outcomes = await asyncio.gather(
                *(service.reconcile(Resource.from_body(b), origin="create") for b in bodies)
            )
        finally:
            await service.close()
        assert [o.result for o in outcomes] == ["ok"] * len(bodies), [o.conditions for o in outcomes]

    asyncio.run(scenario())
    assert 2 <= holding[1] <= 4, holding
