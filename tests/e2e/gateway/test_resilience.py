"""Delivery under failure: gateway restarts and replicas share transaction state through the
compacted topic; Kafka stopped mid-session loses and duplicates nothing (after dedupe by
event_id); shutdown answers what is in flight and closes with 1001."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

from ocpp.exceptions import InternalError
from ocpp.v16 import call as v16
from ocpp.v201 import call as v201
from websockets.exceptions import ConnectionClosed

from charging_analytics.gateway.server import Gateway
from testbed.kafka import KafkaBroker
from tests.e2e.gateway.support import (
    call_accepted,
    charge_point,
    connect,
    events,
    gateway_config,
    running,
    tenant,
    unique,
)


def tx_event(kind: str, seq: int, at: str, wh: float | None, **extra: object) -> v201.TransactionEvent:
    meter = None if wh is None else [{"timestamp": at, "sampledValue": [{"value": wh}]}]
    return v201.TransactionEvent(
        event_type=kind,
        timestamp=at,
        trigger_reason="MeterValuePeriodic",
        seq_no=seq,
        transaction_info={"transactionId": "TX-77"},
        meter_value=meter,
        **extra,  # type: ignore[arg-type]
    )


def test_transactions_survive_a_gateway_restart(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"CP-1": {1: "CCS", 2: "Type2"}, "CP-6": {1: "CCS", 2: "CHAdeMO"}})
    config = gateway_config(kafka_broker, acme)

    async def before() -> int:
        async with running(config) as gw:
            async with charge_point(gw, "acme", "CP-1", "ocpp2.0.1") as cp:
                await call_accepted(
                    cp,
                    tx_event("Started", 0, "2025-03-01T06:00:00Z", 1000.0, evse={"id": 2, "connectorId": 1}),
                )
            async with charge_point(gw, "acme", "CP-6") as cp16:
                start = await call_accepted(
                    cp16,
                    v16.StartTransaction(
                        connector_id=2, id_tag="t", meter_start=500, timestamp="2025-03-01T06:00:00Z"
                    ),
                )
                return int(start.transaction_id)

    async def after(tx16: int) -> None:
        async with running(config) as gw:  # a new process: nothing in memory
            async with charge_point(gw, "acme", "CP-1", "ocpp2.0.1") as cp:
                await call_accepted(cp, tx_event("Updated", 1, "2025-03-01T06:10:00Z", 5000.0))
                await call_accepted(cp, tx_event("Ended", 2, "2025-03-01T06:20:00Z", None))
            async with charge_point(gw, "acme", "CP-6") as cp16:
                await call_accepted(
                    cp16,
                    v16.StopTransaction(
                        transaction_id=tx16, meter_stop=2500, timestamp="2025-03-01T06:30:00Z"
                    ),
                )

    tx16 = asyncio.run(before())
    asyncio.run(after(tx16))
    evs = unique(events(kafka_broker, acme.topic))
    assert [(e.station_id, e.event_type, e.connector_id, e.connector_type, e.energy_kwh) for e in evs] == [
        ("CP-1", "StartTransaction", 2, "Type2", 1.0),
        ("CP-6", "StartTransaction", 2, "CHAdeMO", 0.5),
        ("CP-1", "MeterValues", 2, "Type2", 5.0),
        ("CP-1", "StopTransaction", 2, "Type2", 5.0),  # Ended without reading: the last one
        ("CP-6", "StopTransaction", 2, "CHAdeMO", 2.5),
    ]
    assert len({e.session_id for e in evs if e.station_id == "CP-1"}) == 1


def test_a_station_moving_between_replicas_keeps_its_transaction(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"CP-1": {1: "CCS", 3: "Type2"}})
    config = gateway_config(kafka_broker, acme)

    async def session() -> None:
        async with running(config) as a, running(config) as b:
            async with charge_point(a, "acme", "CP-1", "ocpp2.0.1") as cp:
                await call_accepted(
                    cp, tx_event("Started", 0, "2025-03-01T06:00:00Z", 1000.0, evse={"id": 3})
                )
            async with charge_point(b, "acme", "CP-1", "ocpp2.0.1") as cp:
                await call_accepted(cp, tx_event("Updated", 1, "2025-03-01T06:10:00Z", 4000.0))
            async with charge_point(a, "acme", "CP-1", "ocpp2.0.1") as cp:
                await call_accepted(cp, tx_event("Ended", 2, "2025-03-01T06:20:00Z", None))

    asyncio.run(session())
    evs = unique(events(kafka_broker, acme.topic))
    # Replica a's Ended sees replica b's reading (4 kWh), not its own older state (1 kWh).
    assert [(e.event_type, e.connector_id, e.energy_kwh) for e in evs] == [
        ("StartTransaction", 3, 1.0),
        ("MeterValues", 3, 4.0),
        ("StopTransaction", 3, 4.0),
    ]


def test_kafka_outage_mid_session_loses_and_duplicates_nothing() -> None:
    # The charge point and the gateway run in a thread of their own; the broker is halted and
    # resumed from this (long-lived) thread, since the test bed ties a service's life to the
    # thread that started it.
    broker = KafkaBroker().start()
    halted, first_error, go_on = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, float] = {"errors": 0, "produce_errors": 0}
    failure: list[BaseException] = []
    try:
        bootstrap = broker.bootstrap
        acme = tenant(bootstrap, "acme", {"ST-1": {1: "CCS"}})
        config = gateway_config(bootstrap, acme, delivery_timeout_s=3.0)

        async def call_until_accepted(cp: Any, request: object) -> object:
            """A charger's behaviour: a transaction message that failed is sent again."""
            for _ in range(120):
                try:
                    return await cp.call(request, suppress=False)
                except InternalError:
                    outcome["errors"] += 1
                    first_error.set()
                    await asyncio.sleep(1)
            raise AssertionError("the gateway did not recover within 120 attempts")

        def meter(tx: int, minute: int, wh: str) -> v16.MeterValues:
            return v16.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[{"timestamp": f"2025-03-01T06:0{minute}:00Z", "sampledValue": [{"value": wh}]}],
            )

        async def session() -> None:
            async with running(config) as gw, charge_point(gw, "acme", "ST-1") as cp:
                start = await cp.call(
                    v16.StartTransaction(
                        connector_id=1, id_tag="t", meter_start=10_000, timestamp="2025-03-01T06:00:00Z"
                    )
                )
                tx = start.transaction_id
                await cp.call(meter(tx, 1, "11000"))
                halted.set()
                await asyncio.to_thread(go_on.wait)
                for minute, wh in ((2, "12000"), (3, "13000")):
                    await call_until_accepted(cp, meter(tx, minute, wh))
                await call_until_accepted(
                    cp,
                    v16.StopTransaction(
                        transaction_id=tx, meter_stop=14_000, timestamp="2025-03-01T06:04:00Z"
                    ),
                )
                outcome["produce_errors"] = sum(
                    s.value
                    for m in gw.metrics.produce_errors.collect()
                    for s in m.samples
                    if s.name.endswith("_total")
                )

        def run() -> None:
            try:
                asyncio.run(session())
            except BaseException as err:  # reported by the main thread
                failure.append(err)
                first_error.set()

        worker = threading.Thread(target=run)
        # Halt before the session's next call; it then fails until the broker is back.
        worker.start()
        assert halted.wait(120)
        broker.halt()
        go_on.set()  # the charger calls while the broker is down
        assert first_error.wait(60)
        broker.resume()
        worker.join(240)
        assert not worker.is_alive()
        if failure:
            raise failure[0]
        assert outcome["errors"] >= 1  # the charger saw the outage as CallError InternalError
        assert outcome["produce_errors"] >= 1
        evs = events(bootstrap, acme.topic)
        unique = {e.event_id: e for e in evs}
        assert sorted((e.event_type, e.energy_kwh) for e in unique.values()) == sorted(
            [
                ("StartTransaction", 10.0),
                ("MeterValues", 11.0),
                ("MeterValues", 12.0),
                ("MeterValues", 13.0),
                ("StopTransaction", 14.0),
            ]
        )
        # A duplicate can only be an identical record (a retry of what was stored).
        for e in evs:
            assert unique[e.event_id] == e
    finally:
        broker.stop()


def test_shutdown_answers_calls_in_flight_then_closes_with_1001(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})

    async def session() -> tuple[list[object], int | None]:
        gw = Gateway(gateway_config(kafka_broker, acme))
        await gw.start("127.0.0.1", 0)
        ws = await connect(gw, "acme", "ST-1")
        frame = [
            2,
            uuid.uuid4().hex,
            "StartTransaction",
            {"connectorId": 1, "idTag": "t", "meterStart": 0, "timestamp": "2025-03-01T06:00:00Z"},
        ]
        await ws.send(json.dumps(frame))
        while not any(  # noqa: ASYNC110 -- waits for the gateway to have received the call
            s.value for m in gw.metrics.messages.collect() for s in m.samples if s.name.endswith("_total")
        ):
            await asyncio.sleep(0.001)
        shutdown = asyncio.create_task(gw.shutdown())
        reply = json.loads(await ws.recv())
        try:
            await ws.recv()
            code = None
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
        await shutdown
        return reply, code

    reply, code = asyncio.run(session())
    assert reply[0] == 3
    assert "transactionId" in reply[2]  # type: ignore[operator]
    assert code == 1001
    assert [e.event_type for e in events(kafka_broker, acme.topic)] == ["StartTransaction"]
