"""Helpers for the gateway tests: a gateway on a random port in the test's event loop, and
charge points written with the ``ocpp`` library over real WebSockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import websockets
from ocpp.exceptions import InternalError
from ocpp.v16 import ChargePoint as V16ChargePoint
from ocpp.v201 import ChargePoint as V201ChargePoint
from websockets.asyncio.client import ClientConnection

from charging_analytics.events import ConnectorType, OcppEvent
from charging_analytics.gateway.config import GatewayConfig, StateSpec, Station, Tenant
from charging_analytics.gateway.server import Gateway
from charging_analytics.spec import KafkaSpec
from testbed.kafka import consume_all, create_topic

PASSWORD = "s3cret-Passw0rd-for-tests"


def tenant(
    bootstrap: str,
    name: str,
    stations: Mapping[str, Mapping[int, ConnectorType]],
    *,
    topic: str | None = None,
) -> Tenant:
    topic = topic or f"ocpp.{name}.{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, 1)
    kafka = KafkaSpec.model_validate({"bootstrapServers": [bootstrap], "eventsTopic": topic})
    return Tenant(
        name, kafka, {sid: Station(sid, f"{PASSWORD}-{sid}", dict(types)) for sid, types in stations.items()}
    )


def gateway_config(
    bootstrap: str, *tenants: Tenant, state_topic: str | None = None, **options: Any
) -> GatewayConfig:
    state = StateSpec.model_validate(
        {
            "bootstrapServers": [bootstrap],
            "topic": state_topic or f"gw-state-{uuid.uuid4().hex[:8]}",
            "partitions": 2,
        }
    )
    return GatewayConfig(tenants={t.tenant: t for t in tenants}, state=state, **options)


@contextlib.asynccontextmanager
async def running(config: GatewayConfig) -> AsyncIterator[Gateway]:
    gateway = Gateway(config)
    await gateway.start("127.0.0.1", 0)
    try:
        yield gateway
    finally:
        await gateway.shutdown(drain_timeout=10)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def connect(
    gateway: Gateway,
    tenant_name: str,
    station: str,
    version: str = "ocpp1.6",
    *,
    password: str | None = None,
    path: str | None = None,
) -> ClientConnection:
    url = f"ws://127.0.0.1:{gateway.port}" + (path or f"/ocpp/{tenant_name}/{station}")
    return await websockets.connect(
        url,
        subprotocols=[version],  # type: ignore[list-item]
        additional_headers=basic(station, password if password is not None else f"{PASSWORD}-{station}"),
        open_timeout=10,
    )


@contextlib.asynccontextmanager
async def charge_point(
    gateway: Gateway, tenant_name: str, station: str, version: str = "ocpp1.6"
) -> AsyncIterator[Any]:
    """A library charge point connected to the gateway, its receive loop running."""
    ws = await connect(gateway, tenant_name, station, version)
    cls = V16ChargePoint if version == "ocpp1.6" else V201ChargePoint
    cp = cls(station, ws, response_timeout=15)
    task = asyncio.create_task(cp.start())
    try:
        yield cp
    finally:
        task.cancel()
        await ws.close()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


def events(bootstrap: str, topic: str, min_messages: int = 0) -> list[OcppEvent]:
    """Every event in ``topic``, each validated by the contract model."""
    return [
        OcppEvent.from_json(r.value or b"") for r in consume_all(bootstrap, topic, min_messages=min_messages)
    ]


async def call_accepted(cp: Any, request: object, attempts: int = 30) -> Any:
    """Send like a charger does: a CallError ``InternalError`` (the gateway could not store the
    message yet) is retried; any other CallError is raised, never silently ignored."""
    for _ in range(attempts):
        try:
            return await cp.call(request, suppress=False)
        except InternalError:
            await asyncio.sleep(0.5)
    raise AssertionError(f"{type(request).__name__} not accepted after {attempts} attempts")


def unique(evs: list[OcppEvent]) -> list[OcppEvent]:
    """Deduplicated by ``event_id``, first occurrence kept (what a consumer downstream does)."""
    seen: dict[str, OcppEvent] = {}
    for e in evs:
        assert seen.setdefault(e.event_id, e) == e  # a re-delivery is the identical event
    return list(seen.values())


def http_get(url: str) -> tuple[int, str]:
    """The status and body of a GET of the gateway's probes or metrics (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 -- http://127.0.0.1 only
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()
    except OSError:
        return 0, ""


def still_running(proc: subprocess.Popen[str]) -> None:
    """A wait's check on a gateway process: it must not have exited (its stderr says why)."""
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
