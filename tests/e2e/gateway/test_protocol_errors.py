"""Malformed frames, wrong JSON, schema violations, unknown actions, oversized messages: the
OCPP CallError codes of each version, and a connection that survives where the spec says so."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from testbed.kafka import consume_all
from tests.e2e.gateway.support import connect, gateway_config, running, tenant


async def exchange(ws: ClientConnection, frame: str) -> list[object] | None:
    await ws.send(frame)
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), 3))  # type: ignore[no-any-return]
    except TimeoutError:
        return None


HEARTBEAT = '[2,"hb","Heartbeat",{}]'


def run_frames(
    kafka_broker: str, version: str, frames: list[str]
) -> tuple[list[list[object] | None], list[object]]:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})

    async def session() -> tuple[list[list[object] | None], list[object]]:
        async with running(gateway_config(kafka_broker, acme)) as gw:
            ws = await connect(gw, "acme", "ST-1", version)
            replies = [await exchange(ws, f) for f in frames]
            alive = await exchange(ws, HEARTBEAT)  # the connection survived all of it
            await ws.close()
            assert alive is not None
            return replies, alive

    replies, alive = asyncio.run(session())
    assert consume_all(kafka_broker, acme.topic) == []
    return replies, alive


def codes(replies: list[list[object] | None]) -> list[tuple[object, object] | None]:
    return [None if r is None else (r[1], r[2]) for r in replies]


def test_v16_error_codes(kafka_broker: str) -> None:
    replies, alive = run_frames(
        kafka_broker,
        "ocpp1.6",
        [
            "not json at all",  # no message id: dropped
            '{"a": 1}',  # not an array: dropped
            '[2,"m1","StatusNotification",{"connectorId":1}',  # truncated JSON: no id
            '[2,"m2","StatusNotification",{"connectorId":1}]',  # required fields missing
            '[2,"m3","StatusNotification",{"connectorId":"1","errorCode":"NoError","status":"Available"}]',
            '[2,"m4","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available","x":1}]',
            '[2,"m5","Teleport",{}]',  # not an OCPP 1.6 action
            # an OCPP 1.6 action the gateway does not handle
            '[2,"m6","FirmwareStatusNotification",{"status":"Idle"}]',
            '[2,"m7","StatusNotification",{"connectorId":9,"errorCode":"NoError","status":"Available"}]',
            '[7,"m8","Heartbeat",{}]',  # unknown message type
        ],
    )
    assert codes(replies) == [
        None,
        None,
        None,
        ("m2", "ProtocolError"),
        ("m3", "TypeConstraintViolation"),
        ("m4", "FormationViolation"),  # 1.6's spelling
        ("m5", "NotImplemented"),
        ("m6", "NotSupported"),
        ("m7", "PropertyConstraintViolation"),  # connector 9 is not in the registry
        ("m8", "PropertyConstraintViolation"),
    ]
    assert alive[:2] == [3, "hb"]


def test_v201_error_codes(kafka_broker: str) -> None:
    replies, alive = run_frames(
        kafka_broker,
        "ocpp2.0.1",
        [
            "not json at all",
            '[2,"m2","Heartbeat",{"extra":true}]',
            '[2,"m3","Teleport",{}]',
            '[2,"m4","FirmwareStatusNotification",{"status":"Idle"}]',
        ],
    )
    assert codes(replies) == [
        ("-1", "RpcFrameworkError"),  # message id unreadable: answered as "-1"
        ("m2", "FormatViolation"),
        ("m3", "NotImplemented"),
        ("m4", "NotSupported"),
    ]
    assert alive[0] == 3


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
def test_oversized_message_closes_the_connection_with_1009(kafka_broker: str, version: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})

    async def session() -> int | None:
        async with running(gateway_config(kafka_broker, acme, max_message_bytes=4096)) as gw:
            ws = await connect(gw, "acme", "ST-1", version)
            big = json.dumps([2, "big", "DataTransfer", {"vendorId": "v", "data": "x" * 5000}])
            await ws.send(big)
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
            return None

    assert asyncio.run(session()) == 1009
