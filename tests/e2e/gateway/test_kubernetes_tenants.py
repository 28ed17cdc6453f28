"""Tenants from the Kubernetes API: the gateway follows ChargingAnalytics resources and their
Secrets on the real kube-apiserver, authenticated as the chart's gateway ServiceAccount (only
the chart's gateway Role and RoleBinding applied), with ``ocpp`` library charge points over real
WebSockets and the real Kafka broker.

* a resource with ``spec.gateway`` is served; a station added at runtime is accepted, a changed
  events topic is used by a connected station, a rotated password disconnects the station and
  refuses the old one, a deleted resource disconnects its stations and refuses them (404); all
  without a restart, and with no request refused by RBAC;
* the Role grants exactly list and watch on charginganalytics and secrets, which is exactly what
  the apiserver lets the identity do in the watched namespace; each of the four is needed (the
  refusal names it, and the source then does not sync, or misses later changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import websockets
from ocpp.v16 import call as v16
from ocpp.v201 import call as v201
from websockets.exceptions import InvalidStatus

from charging_analytics import constants as c
from charging_analytics.gateway.kube_tenants import KubeTenantSource
from charging_analytics.gateway.server import Gateway
from testbed import specs
from testbed.bed import unique_name
from testbed.controlplane import ControlPlane
from testbed.kafka import create_topic
from testbed.polling import Poll, wait_for, wait_for_async
from tests.e2e.gateway.support import basic, call_accepted, events, gateway_config
from tests.service.rbac_support import (
    ChartRbac,
    Permission,
    permissions,
    rbac_objects,
    render_release,
    spy_kubernetes_client_refusals,
)

pytestmark = [pytest.mark.k8s, pytest.mark.helm]

CR_LIST, CR_WATCH = ((c.GROUP, c.PLURAL, v) for v in ("list", "watch"))
SECRET_LIST, SECRET_WATCH = (("", "secrets", v) for v in ("list", "watch"))
USED: set[Permission] = {CR_LIST, CR_WATCH, SECRET_LIST, SECRET_WATCH}


# --------------------------------------------------------------------------------------------
# Set-up: the chart's gateway RBAC, resources, a gateway fed by the source
# --------------------------------------------------------------------------------------------


def gateway_rbac(cp: ControlPlane, tmp_path: Path, watched: str) -> ChartRbac:
    """The chart's gateway ServiceAccount, Role and RoleBinding (source=kubernetes) applied."""
    # Short names: the client certificate's CN (system:serviceaccount:<ns>:<sa>) is <= 64 chars.
    release_ns = unique_name("g")
    cp.create_namespace(release_ns, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"})
    values = {
        "gateway": {
            "enabled": True,
            "tenants": {"source": "kubernetes", "watchNamespaces": [watched]},
            "state": {"bootstrapServers": ["kafka:9092"]},
            "serviceAccount": {"name": "gw"},
        }
    }
    docs = [
        d
        for d in rbac_objects(render_release(tmp_path, values, release_ns))
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"
    ]
    rbac = ChartRbac(cp, docs, namespace=watched)
    rbac.install()
    return rbac


def sa_client(rbac: ChartRbac) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(rbac.kubeconfig))  # type: ignore[no-untyped-call]


def apply_secret(cp: ControlPlane, ns: str, name: str, data: dict[str, str]) -> None:
    meta = {"name": name, "namespace": ns}
    cp.rest.apply({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data})


def resource(
    name: str, tenant: str, bootstrap: str, topic: str, stations: dict[str, list[int]], **kafka: Any
) -> dict[str, Any]:
    gateway = {
        "stationsSecretRef": {"name": f"{name}-stations"},
        "stations": [
            {"id": sid, "connectors": [{"id": i, "standard": "IEC_62196_T2_COMBO"} for i in conns]}
            for sid, conns in stations.items()
        ],
    }
    spec = specs.spec_dict(
        tenant,
        bootstrap=bootstrap,
        events_topic=topic,
        alerts=None,
        mode="Plan",  # no operator runs here; the gateway only reads the spec
        kafka=kafka,
        gateway=gateway,
    )
    return specs.resource(name, None, spec)


def cr_path(ns: str, name: str | None = None) -> str:
    base = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{ns}/{c.PLURAL}"
    return base if name is None else f"{base}/{name}"


@contextlib.asynccontextmanager
async def gateway_from_kubernetes(
    bootstrap: str, ns: str, api: kubernetes.client.ApiClient
) -> AsyncIterator[tuple[Gateway, KubeTenantSource]]:
    """What ``charging-analytics gateway --kubernetes`` runs, on a random port."""
    gateway = Gateway(gateway_config(bootstrap))
    loop = asyncio.get_running_loop()
    source = KubeTenantSource([ns], lambda t: loop.call_soon_threadsafe(gateway.update_tenants, t), api=api)
    source.start()
    try:
        assert await asyncio.to_thread(source.wait_synced, 30), source.not_synced()
        gateway.update_tenants(source.current())
        await gateway.start("127.0.0.1", 0)
        yield gateway, source
    finally:
        source.stop()
        await gateway.shutdown(drain_timeout=10)


async def connect(gw: Gateway, tenant: str, station: str, password: str, version: str = "ocpp1.6") -> Any:
    return await websockets.connect(
        f"ws://127.0.0.1:{gw.port}/ocpp/{tenant}/{station}",
        subprotocols=[version],  # type: ignore[list-item]
        additional_headers=basic(station, password),
        open_timeout=10,
    )


@contextlib.asynccontextmanager
async def library_cp(ws: Any, station: str, version: str = "ocpp1.6") -> AsyncIterator[Any]:
    from ocpp.v16 import ChargePoint as V16
    from ocpp.v201 import ChargePoint as V201

    cp = (V16 if version == "ocpp1.6" else V201)(station, ws, response_timeout=15)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        task.cancel()
        await ws.close()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


async def refused_status(gw: Gateway, tenant: str, station: str, password: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        await connect(gw, tenant, station, password)
    return int(refused.value.response.status_code)


# --------------------------------------------------------------------------------------------
# Tenants follow the resources, without a restart
# --------------------------------------------------------------------------------------------


def test_tenants_follow_the_resources_and_secrets_at_runtime(
    control_plane: ControlPlane,
    namespace: str,
    kafka_broker: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cp, ns = control_plane, namespace
    rbac = gateway_rbac(cp, tmp_path, ns)
    refusals = spy_kubernetes_client_refusals(monkeypatch)
    tenant = f"gw_{uuid.uuid4().hex[:8]}"
    topic, topic2 = (f"ocpp.{tenant}.{n}" for n in ("events", "moved"))
    for t in (topic, topic2):
        create_topic(kafka_broker, t, 1)
    apply_secret(cp, ns, "fleet-stations", {"ST-1": "pw-one"})
    cp.rest.create(resource("fleet", tenant, kafka_broker, topic, {"ST-1": [1]}), namespace=ns)

    async def scenario() -> None:
        async with gateway_from_kubernetes(kafka_broker, ns, sa_client(rbac)) as (gw, _):
            assert gw.config.station(tenant, "ST-1") is not None
            # An unknown station of the tenant is refused; the served one runs a session.
            assert await refused_status(gw, tenant, "ST-2", "pw-two") == 404
            ws1 = await connect(gw, tenant, "ST-1", "pw-one")
            async with library_cp(ws1, "ST-1") as cp1:
                start = await call_accepted(
                    cp1,
                    v16.StartTransaction(
                        connector_id=1, id_tag="T", meter_start=1000, timestamp="2025-03-01T06:00:00Z"
                    ),
                )
                await call_accepted(
                    cp1,
                    v16.StopTransaction(
                        transaction_id=start.transaction_id, meter_stop=6000, timestamp="2025-03-01T06:30:00Z"
                    ),
                )

                # A station added to the registry and the Secret is accepted at once.
                apply_secret(cp, ns, "fleet-stations", {"ST-1": "pw-one", "ST-2": "pw-two"})
                both = {"ST-1": [1], "ST-2": [1, 2]}
                cp.rest.apply(resource("fleet", tenant, kafka_broker, topic, both), namespace=ns)
                await wait_for_async(lambda: gw.config.station(tenant, "ST-2") is not None, 20, "ST-2 served")
                ws2 = await connect(gw, tenant, "ST-2", "pw-two", "ocpp2.0.1")
                async with library_cp(ws2, "ST-2", "ocpp2.0.1") as cp2:
                    await call_accepted(
                        cp2,
                        v201.StatusNotification(
                            timestamp="2025-03-01T07:00:00Z",
                            connector_status="Occupied",
                            evse_id=2,
                            connector_id=1,
                        ),
                    )
                    # The events topic moves: the connected station's next event goes there.
                    cp.rest.apply(resource("fleet", tenant, kafka_broker, topic2, both), namespace=ns)
                    moved = lambda: gw.config.tenants[tenant].topic == topic2  # noqa: E731
                    await wait_for_async(moved, 20, "topic changed")
                    await call_accepted(
                        cp2,
                        v201.StatusNotification(
                            timestamp="2025-03-01T07:05:00Z",
                            connector_status="Available",
                            evse_id=2,
                            connector_id=1,
                        ),
                    )

                    # A rotated password disconnects the station; the old one is refused.
                    apply_secret(cp, ns, "fleet-stations", {"ST-1": "pw-one-rotated", "ST-2": "pw-two"})
                    await asyncio.wait_for(ws1.wait_closed(), 20)
                    assert ws1.close_code == 1008
                    assert await refused_status(gw, tenant, "ST-1", "pw-one") == 401
                    await (await connect(gw, tenant, "ST-1", "pw-one-rotated")).close()

                    # The resource deleted: its stations are disconnected and refused.
                    cp.rest.delete(cr_path(ns, "fleet"))
                    await asyncio.wait_for(ws2.wait_closed(), 20)
                    assert ws2.close_code == 1008
                    assert await refused_status(gw, tenant, "ST-2", "pw-two") == 404
                    assert tenant not in gw.config.tenants

    asyncio.run(scenario())
    first = events(kafka_broker, topic, min_messages=3)
    assert [(e.station_id, e.event_type, e.energy_kwh) for e in first] == [
        ("ST-1", "StartTransaction", 1.0),
        ("ST-1", "StopTransaction", 6.0),
        ("ST-2", "StatusNotification", None),
    ]
    moved = events(kafka_broker, topic2, min_messages=1)
    assert [(e.station_id, e.connector_id, e.status) for e in moved] == [("ST-2", 2, "Available")]
    assert list(refusals) == []  # the chart's Role allowed every request the source made


# --------------------------------------------------------------------------------------------
# RBAC: exactly what it uses, and each of it needed
# --------------------------------------------------------------------------------------------


def test_the_gateway_role_grants_exactly_list_and_watch_on_resources_and_secrets(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    rbac = gateway_rbac(control_plane, tmp_path, namespace)
    assert rbac.granted == USED
    assert rbac.effective_permissions(namespace) == USED
    other = unique_name("other")
    control_plane.create_namespace(other, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"})
    assert rbac.effective_permissions(other) == set()  # nothing outside the watched namespaces
    assert not rbac.can(("", "secrets", "get"), namespace)


@pytest.fixture
def watched(control_plane: ControlPlane, namespace: str, kafka_broker: str) -> str:
    """A namespace holding one served resource; yields its tenant name."""
    tenant = f"gw_{uuid.uuid4().hex[:8]}"
    apply_secret(control_plane, namespace, "fleet-stations", {"ST-1": "pw"})
    control_plane.rest.create(
        resource("fleet", tenant, kafka_broker, f"ocpp.{tenant}", {"ST-1": [1]}), namespace=namespace
    )
    return tenant


@pytest.mark.parametrize("dropped", sorted(USED), ids=lambda p: f"{p[1]}-{p[2]}")
def test_each_granted_permission_is_needed(
    dropped: Permission,
    control_plane: ControlPlane,
    namespace: str,
    watched: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rbac = gateway_rbac(control_plane, tmp_path, namespace)
    rbac.drop(dropped)
    refusals = spy_kubernetes_client_refusals(monkeypatch)
    seen: list[dict[str, Any]] = []
    source = KubeTenantSource([namespace], seen.append, api=sa_client(rbac))
    source.start()
    try:
        if dropped[2] == "list":
            # Without list nothing is ever known: no tenant is served at all.
            assert not source.wait_synced(5)
            assert seen == []
        else:
            # Listing works, so the tenant is served; without watch a later change is missed.
            assert source.wait_synced(20)
            assert set(source.current()) == {watched}
            if dropped[1] == "secrets":
                apply_secret(control_plane, namespace, "fleet-stations", {"ST-1": "rotated"})
            else:
                control_plane.rest.delete(cr_path(namespace, "fleet"))
            time.sleep(3)
            tenant = source.current()[watched]
            assert tenant.stations["ST-1"].password == "pw"
        wait_for(lambda: dropped in refusals.permissions, 10, f"the refusal of {dropped}", poll=Poll(0.1))
        assert refusals.permissions == {dropped}
    finally:
        source.stop()


def test_the_used_permissions_are_the_chart_role(tmp_path: Path) -> None:
    """The list above is the chart's: a rule added to the Role without a use fails here."""
    values = {
        "gateway": {
            "enabled": True,
            "tenants": {"source": "kubernetes", "watchNamespaces": ["a"]},
            "state": {"bootstrapServers": ["kafka:9092"]},
        }
    }
    docs = rbac_objects(render_release(tmp_path, values, "r"))
    (role,) = [d for d in docs if d["kind"] == "Role" and "gateway" in d["metadata"]["name"]]
    assert permissions(role) == USED
