"""OCPP 1.6 transactions started offline: MeterValues and StopTransaction with an id the gateway
never assigned (``-1``, or the charger's own number) are resolved to the transaction they belong
to, and still form correct sessions with their original timestamps.

The pure rules (``v16_meter_values_tracked``, ``v16_stop_tracked``) first, then ``ocpp`` library
charge points against the gateway and the real Kafka broker, across a gateway restart.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from ocpp.v16 import call as v16

from charging_analytics.gateway import mapping
from charging_analytics.gateway.mapping import EMPTY_STATION16, Station16, StationContext
from tests.e2e.gateway.support import (
    call_accepted,
    charge_point,
    events,
    gateway_config,
    running,
    tenant,
    unique,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
CTX = StationContext("acme", "ST-1", {1: "CCS", 2: "Type2"})
ONE = StationContext("acme", "ST-9", {1: "CCS"})


def start(
    ctx: StationContext, state: Station16, connector: int, wh: int, at: str, tag: str
) -> tuple[int, Station16]:
    payload = {"connector_id": connector, "id_tag": tag, "meter_start": wh, "timestamp": at}
    transaction, event = mapping.v16_start(ctx, payload, NOW)
    return transaction, mapping.v16_started(state, transaction, event, tag)


def meter(connector: int, transaction: int, *readings: tuple[str, str]) -> dict[str, Any]:
    return {
        "connector_id": connector,
        "transaction_id": transaction,
        "meter_value": [{"timestamp": at, "sampled_value": [{"value": wh}]} for at, wh in readings],
    }


def stop(transaction: int, wh: int, at: str, **extra: Any) -> dict[str, Any]:
    return {"transaction_id": transaction, "meter_stop": wh, "timestamp": at, **extra}


def summary(evs: list[Any]) -> list[tuple[str, int, str | None, float | None, str]]:
    return [
        (e.event_type, e.connector_id, e.session_id, e.energy_kwh, e.occurred_at.isoformat()) for e in evs
    ]


def test_minus_one_readings_and_stop_belong_to_the_connectors_open_transaction() -> None:
    tx, state = start(CTX, EMPTY_STATION16, 2, 5000, "2026-03-01T08:00:00Z", "TAG")
    readings, state = mapping.v16_meter_values_tracked(
        CTX, meter(2, -1, ("2026-03-01T08:10:00Z", "7000")), state, NOW
    )
    stopped, state = mapping.v16_stop_tracked(CTX, stop(-1, 9000, "2026-03-01T08:20:00Z"), state, NOW)
    session = mapping.session_id(CTX, str(tx))
    assert summary(readings + stopped) == [
        ("MeterValues", 2, session, 7.0, "2026-03-01T08:10:00+00:00"),
        ("StopTransaction", 2, session, 9.0, "2026-03-01T08:20:00+00:00"),
    ]
    assert state.open == {}


def test_a_charger_numbered_transaction_without_a_start_gets_a_gateway_id_from_its_first_reading() -> None:
    readings, state = mapping.v16_meter_values_tracked(
        CTX,
        meter(1, 7, ("2026-03-01T09:00:00Z", "100000"), ("2026-03-01T09:15:00Z", "104000")),
        EMPTY_STATION16,
        NOW,
    )
    stopped, state = mapping.v16_stop_tracked(CTX, stop(7, 106500, "2026-03-01T09:30:00Z"), state, NOW)
    assigned = mapping.v16_transaction_id(1, datetime(2026, 3, 1, 9, tzinfo=UTC))
    session = mapping.session_id(CTX, str(assigned))
    assert summary(readings + stopped) == [
        ("StartTransaction", 1, session, 100.0, "2026-03-01T09:00:00+00:00"),
        ("MeterValues", 1, session, 104.0, "2026-03-01T09:15:00+00:00"),
        ("StopTransaction", 1, session, 106.5, "2026-03-01T09:30:00+00:00"),
    ]
    assert state.open == {}
    assert state.aliases == {}


def test_with_two_open_transactions_the_id_tag_then_the_register_picks_the_stopped_one() -> None:
    tx1, state = start(CTX, EMPTY_STATION16, 1, 50_000, "2026-03-01T10:00:00Z", "ANNA")
    tx2, state = start(CTX, state, 2, 20_000, "2026-03-01T10:05:00Z", "BEN")
    by_tag, after = mapping.v16_stop_tracked(
        CTX, stop(-1, 60_000, "2026-03-01T11:00:00Z", id_tag="BEN"), state, NOW
    )
    assert [(e.connector_id, e.session_id) for e in by_tag] == [(2, mapping.session_id(CTX, str(tx2)))]
    assert list(after.open) == [1]
    # Without idTag: the register that fits, the highest meterStart not above meterStop.
    by_meter, _ = mapping.v16_stop_tracked(CTX, stop(-1, 30_000, "2026-03-01T11:00:00Z"), state, NOW)
    assert [e.connector_id for e in by_meter] == [2]
    by_meter, _ = mapping.v16_stop_tracked(CTX, stop(-1, 55_000, "2026-03-01T11:00:00Z"), state, NOW)
    assert [(e.connector_id, e.session_id) for e in by_meter] == [(1, mapping.session_id(CTX, str(tx1)))]


def test_a_re_sent_stop_of_a_foreign_id_yields_the_same_events_again() -> None:
    _, state = start(CTX, EMPTY_STATION16, 1, 1000, "2026-03-01T10:00:00Z", "T")
    first, state = mapping.v16_stop_tracked(CTX, stop(-1, 2000, "2026-03-01T10:30:00Z"), state, NOW)
    again, state = mapping.v16_stop_tracked(CTX, stop(-1, 2000, "2026-03-01T10:30:00Z"), state, NOW)
    assert first == again
    assert len(first) == 1


def test_a_lone_stop_on_a_single_connector_station_starts_at_its_begin_reading() -> None:
    data = [
        {
            "timestamp": "2026-03-01T07:00:00Z",
            "sampled_value": [{"value": "3000", "context": "Transaction.Begin"}],
        },
        {
            "timestamp": "2026-03-01T07:30:00Z",
            "sampled_value": [{"value": "8000", "context": "Transaction.End"}],
        },
    ]
    evs, _ = mapping.v16_stop_tracked(
        ONE, stop(-1, 8000, "2026-03-01T07:30:00Z", transaction_data=data), EMPTY_STATION16, NOW
    )
    assert [(e.event_type, e.energy_kwh, e.occurred_at.isoformat()) for e in evs] == [
        ("StartTransaction", 3.0, "2026-03-01T07:00:00+00:00"),
        ("StopTransaction", 8.0, "2026-03-01T07:30:00+00:00"),
    ]
    assert len({e.session_id for e in evs}) == 1


def test_an_unresolvable_stop_publishes_nothing() -> None:
    # Two connectors, nothing open, no data: its connector and its start are unknowable.
    assert mapping.v16_stop_tracked(CTX, stop(-1, 8000, "2026-03-01T07:30:00Z"), EMPTY_STATION16, NOW) == (
        [],
        EMPTY_STATION16,
    )


def test_station_state_round_trips_through_json() -> None:
    _, state = start(CTX, EMPTY_STATION16, 1, 1000, "2026-03-01T10:00:00Z", "T")
    _, state = mapping.v16_meter_values_tracked(CTX, meter(2, 41, ("2026-03-01T10:01:00Z", "1")), state, NOW)
    assert Station16.from_json(state.to_json()) == state


# --------------------------------------------------------------------------------------------
# Real charge points, real Kafka, a gateway restart in the middle
# --------------------------------------------------------------------------------------------


def test_offline_started_transactions_form_sessions_through_the_gateway_and_a_restart(
    kafka_broker: str,
) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS", 2: "Type2"}})
    config = gateway_config(kafka_broker, acme, state_topic=f"gw-state-{uuid.uuid4().hex[:8]}")
    answers: dict[str, Any] = {}

    async def replay_part_one() -> None:
        async with running(config) as gw, charge_point(gw, "acme", "ST-1") as cp:
            # Queued while offline and replayed in order: the start (given an id only now), then
            # readings and the stop still carrying -1, since the charger never substituted it.
            answers["start"] = await call_accepted(
                cp,
                v16.StartTransaction(
                    connector_id=2, id_tag="T", meter_start=10_000, timestamp="2026-02-01T06:00:00Z"
                ),
            )
            await call_accepted(
                cp, v16.MeterValues(**_camel(meter(2, -1, ("2026-02-01T06:20:00Z", "14000"))))
            )
            await call_accepted(cp, v16.StopTransaction(**_camel(stop(-1, 17_000, "2026-02-01T06:40:00Z"))))
            # A second one the charger numbered itself (no StartTransaction ever sent).
            await call_accepted(
                cp,
                v16.MeterValues(
                    **_camel(
                        meter(1, 3, ("2026-02-01T07:00:00Z", "50000"), ("2026-02-01T07:10:00Z", "52000"))
                    )
                ),
            )

    async def replay_part_two() -> None:  # a new gateway process: the state topic remembers
        async with running(config) as gw, charge_point(gw, "acme", "ST-1") as cp:
            await call_accepted(cp, v16.StopTransaction(**_camel(stop(3, 55_500, "2026-02-01T07:30:00Z"))))

    asyncio.run(replay_part_one())
    asyncio.run(replay_part_two())
    evs = unique(events(kafka_broker, acme.topic, min_messages=6))
    first = mapping.session_id(CTX, str(answers["start"].transaction_id))
    second = mapping.session_id(CTX, str(mapping.v16_transaction_id(1, datetime(2026, 2, 1, 7, tzinfo=UTC))))
    assert [
        (e.event_type, e.connector_id, e.session_id, e.energy_kwh, e.occurred_at.isoformat()) for e in evs
    ] == [
        ("StartTransaction", 2, first, 10.0, "2026-02-01T06:00:00+00:00"),
        ("MeterValues", 2, first, 14.0, "2026-02-01T06:20:00+00:00"),
        ("StopTransaction", 2, first, 17.0, "2026-02-01T06:40:00+00:00"),
        ("StartTransaction", 1, second, 50.0, "2026-02-01T07:00:00+00:00"),
        ("MeterValues", 1, second, 52.0, "2026-02-01T07:10:00+00:00"),
        ("StopTransaction", 1, second, 55.5, "2026-02-01T07:30:00+00:00"),
    ]
    # Sessions as the pipeline computes them: energy = last minus first reading.
    energy = {
        sid: max(e.energy_kwh or 0 for e in evs if e.session_id == sid)
        - min(e.energy_kwh or 0 for e in evs if e.session_id == sid)
        for sid in (first, second)
    }
    assert energy == {first: 7.0, second: 5.5}


def _camel(payload: dict[str, Any]) -> dict[str, Any]:
    """The snake_case payloads above as the library's call dataclasses take them."""
    out = dict(payload)
    if "meter_value" in out:
        out["meter_value"] = [
            {"timestamp": v["timestamp"], "sampledValue": v["sampled_value"]} for v in out["meter_value"]
        ]
    return out
