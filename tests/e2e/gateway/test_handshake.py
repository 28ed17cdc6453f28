"""Handshake refusals: path, subprotocol, credentials, cross-tenant attempts; each refused with
its HTTP status, counted by reason, and nothing published."""

from __future__ import annotations

import asyncio
import base64

import pytest
import websockets
from ocpp.v16 import call as v16
from websockets.exceptions import InvalidStatus

from charging_analytics.gateway.server import Gateway
from testbed.kafka import consume_all
from tests.e2e.gateway.support import PASSWORD, basic, charge_point, gateway_config, running, tenant


async def status_of(
    gateway: Gateway, path: str, headers: dict[str, str], subprotocols: list[str] | None
) -> int:
    try:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{gateway.port}{path}",
            subprotocols=subprotocols,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=10,
        )
    except InvalidStatus as refused:
        return int(refused.response.status_code)
    await ws.close()
    return 101


OK = "ocpp1.6"


def test_refused_handshakes_get_their_status_are_counted_and_publish_nothing(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}, "ST-2": {1: "CCS"}})
    volt = tenant(kafka_broker, "volt", {"ST-1": {1: "Type2"}, "V-9": {1: "Type2"}})
    own = basic("ST-1", f"{PASSWORD}-ST-1")  # volt's ST-1 has the same password, but another tenant
    cases = [
        # (path, headers, subprotocols, status, reason)
        ("/ocpp/acme/ST-1", own, [OK], 101, None),
        ("/ocpp/acme/ST-1", own, ["ocpp2.0.1"], 101, None),
        ("/ocpp/acme/ST-1", own, None, 400, "no_subprotocol"),
        ("/ocpp/acme/ST-1", own, ["ocpp1.5"], 400, "no_subprotocol"),
        ("/ocpp/nobody/ST-1", own, [OK], 404, "unknown_tenant"),
        ("/ocpp/acme/ST-404", basic("ST-404", "x"), [OK], 404, "unknown_station"),
        ("/ocpp/acme/ST-1", {}, [OK], 401, "no_credentials"),
        ("/ocpp/acme/ST-1", {"Authorization": "Bearer abc"}, [OK], 401, "no_credentials"),
        ("/ocpp/acme/ST-1", {"Authorization": "Basic %%%"}, [OK], 401, "no_credentials"),
        ("/ocpp/acme/ST-1", basic("ST-1", "wrong"), [OK], 401, "bad_credentials"),
        # Another station's valid credentials on this station's path.
        ("/ocpp/acme/ST-1", basic("ST-2", f"{PASSWORD}-ST-2"), [OK], 401, "bad_credentials"),
        # acme's station on volt's path: volt's V-9 with acme's ST-1 credentials.
        ("/ocpp/volt/V-9", own, [OK], 401, "bad_credentials"),
        # Path tricks: encoded separators, dot segments, extra segments, query strings, case.
        ("/ocpp/volt%2F..%2Facme/ST-1", own, [OK], 404, "bad_path"),
        ("/ocpp/acme/..%2Fvolt%2FST-1", own, [OK], 404, "bad_path"),
        ("/ocpp/acme/%53T-1", own, [OK], 404, "bad_path"),
        ("/ocpp/volt/../acme/ST-1", own, [OK], 404, "bad_path"),
        ("/ocpp/acme/ST-1/extra", own, [OK], 404, "bad_path"),
        ("/ocpp/acme/ST-1/", own, [OK], 404, "bad_path"),
        ("//ocpp/acme/ST-1", own, [OK], 404, "bad_path"),
        ("/ocpp/acme/ST-1?tenant=volt", own, [OK], 404, "bad_path"),
        ("/OCPP/acme/ST-1", own, [OK], 404, "bad_path"),
        ("/ocpp/acme", own, [OK], 404, "bad_path"),
    ]

    async def attempt() -> tuple[list[int], dict[str, float]]:
        async with running(gateway_config(kafka_broker, acme, volt)) as gw:
            got = [await status_of(gw, path, headers, protos) for path, headers, protos, _, _ in cases]
            counted = {
                s.labels["reason"]: s.value
                for m in gw.metrics.rejected.collect()
                for s in m.samples
                if s.name.endswith("_total")
            }
            return got, counted

    got, counted = asyncio.run(attempt())
    assert got == [status for _, _, _, status, _ in cases]
    expected: dict[str, float] = {}
    for *_, reason in cases:
        if reason:
            expected[reason] = expected.get(reason, 0) + 1
    assert counted == expected
    assert consume_all(kafka_broker, acme.topic) == []
    assert consume_all(kafka_broker, volt.topic) == []


def test_password_with_colons_and_unicode_is_compared_exactly(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})
    station = acme.stations["ST-1"]
    object.__setattr__(station, "password", "pä:ss:wörd")
    token = base64.b64encode("ST-1:pä:ss:wörd".encode()).decode()

    async def attempt() -> list[int]:
        async with running(gateway_config(kafka_broker, acme)) as gw:
            return [
                await status_of(gw, "/ocpp/acme/ST-1", {"Authorization": f"Basic {token}"}, [OK]),
                await status_of(gw, "/ocpp/acme/ST-1", basic("ST-1", "pä:ss"), [OK]),
            ]

    assert asyncio.run(attempt()) == [101, 401]


def test_connected_station_publishes_only_into_its_own_tenants_topic(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})
    volt = tenant(kafka_broker, "volt", {"ST-1": {1: "Type2"}})

    async def session() -> dict[str, float]:
        async with running(gateway_config(kafka_broker, acme, volt)) as gw:
            async with charge_point(gw, "volt", "ST-1") as cp:
                await cp.call(
                    v16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
                )
                assert {
                    s.labels["tenant"]: s.value for m in gw.metrics.connected.collect() for s in m.samples
                } == {"volt": 1.0}
            await asyncio.sleep(0.2)
            return {s.labels["tenant"]: s.value for m in gw.metrics.connected.collect() for s in m.samples}

    assert asyncio.run(session()) == {"volt": 0.0}
    assert consume_all(kafka_broker, acme.topic) == []
    (record,) = consume_all(kafka_broker, volt.topic)
    assert record.json()["connector_type"] == "Type2"


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
def test_both_subprotocols_are_negotiated_on_one_port(kafka_broker: str, version: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})

    async def negotiate() -> str | None:
        async with running(gateway_config(kafka_broker, acme)) as gw:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{gw.port}/ocpp/acme/ST-1",
                subprotocols=["ocpp1.5", version],  # type: ignore[list-item]
                additional_headers=basic("ST-1", f"{PASSWORD}-ST-1"),
            )
            chosen = ws.subprotocol
            await ws.close()
            return chosen

    assert asyncio.run(negotiate()) == version


def test_permessage_deflate_is_not_negotiated_and_calls_work_without_it(kafka_broker: str) -> None:
    """A charger that offers compression gets none (its zlib state would cost the gateway about
    100 KiB per idle connection) and is served as usual."""
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})

    async def offer_deflate() -> tuple[str | None, str]:
        async with running(gateway_config(kafka_broker, acme)) as gw:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{gw.port}/ocpp/acme/ST-1",
                subprotocols=[OK],  # type: ignore[list-item]
                additional_headers=basic("ST-1", f"{PASSWORD}-ST-1"),
                compression="deflate",
            )
            assert ws.request is not None
            assert ws.response is not None
            assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
            extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
            await ws.send('[2,"1","Heartbeat",{}]')
            reply = await asyncio.wait_for(ws.recv(), 15)
            await ws.close()
            return extensions, str(reply)

    extensions, reply = asyncio.run(offer_deflate())
    assert extensions is None
    assert reply.startswith('[3,"1",{"currentTime":')
