"""Full charging sessions from ``ocpp`` library charge points, over real WebSockets, through the
gateway into the tenant's topic on the real Kafka broker."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import jsonschema
from ocpp.v16 import call as v16
from ocpp.v201 import call as v201

from charging_analytics.events import OcppEvent, event_json_schema, format_timestamp
from charging_analytics.spec import ChargingAnalytics
from charging_analytics.validation import load_file
from testbed.kafka import consume_all
from tests.e2e.gateway.support import charge_point, gateway_config, running, tenant

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "acme.yaml"


def tariffs() -> dict[str, Decimal]:
    resource: ChargingAnalytics = load_file(EXAMPLE).resources[0]
    return resource.spec.analytics.tariffs.price_per_kwh.as_decimal()


def session_totals(evs: list[OcppEvent]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per session: energy (last minus first reading, docs/events.md) and revenue at the tariff."""
    prices = tariffs()
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for sid in {e.session_id for e in evs if e.session_id}:
        readings = [Decimal(str(e.energy_kwh)) for e in evs if e.session_id == sid]
        kind = next(e.connector_type for e in evs if e.session_id == sid)
        energy = max(readings) - min(readings)
        out[sid] = (energy, energy * prices[kind])
    return out


def check_schema(bootstrap: str, topic: str) -> list[OcppEvent]:
    records = consume_all(bootstrap, topic)
    validator = jsonschema.Draft202012Validator(
        event_json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for record in records:
        validator.validate(record.json())
    parsed = [OcppEvent.from_json(r.value or b"") for r in records]
    assert all(r.key == e.station_id.encode() for r, e in zip(records, parsed, strict=True))
    return parsed


def test_v16_session_lands_in_the_topic_as_the_source_reads_it(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-0001": {1: "CCS", 2: "Type2"}})

    async def session() -> None:
        async with (
            running(gateway_config(kafka_broker, acme)) as gw,
            charge_point(gw, "acme", "ST-0001") as cp,
        ):
            boot = await cp.call(v16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            assert (boot.status, boot.interval) == ("Accepted", 300)
            await cp.call(v16.Heartbeat())
            status = v16.StatusNotification(
                connector_id=2, error_code="NoError", status="Preparing", timestamp="2025-03-01T06:00:00.000Z"
            )
            await cp.call(status)
            auth = await cp.call(v16.Authorize(id_tag="RFID-1"))
            assert auth.id_tag_info["status"] == "Accepted"
            start = await cp.call(
                v16.StartTransaction(
                    connector_id=2,
                    id_tag="RFID-1",
                    meter_start=19_779_701,
                    timestamp="2025-03-01T06:01:15.639Z",
                )
            )
            assert start.id_tag_info["status"] == "Accepted"
            tx = start.transaction_id
            await cp.call(
                v16.StatusNotification(
                    connector_id=2,
                    error_code="NoError",
                    status="Charging",
                    timestamp="2025-03-01T06:01:18.481Z",
                )
            )
            # One reading in Wh, the next labelled kWh; power and a phase value beside them.
            for minute, value, unit in ((2, "19780785", "Wh"), (3, "19781.871", "kWh")):
                await cp.call(
                    v16.MeterValues(
                        connector_id=2,
                        transaction_id=tx,
                        meter_value=[
                            {
                                "timestamp": f"2025-03-01T06:0{minute}:15.000Z",
                                "sampledValue": [
                                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"},
                                    {"value": "6000000", "phase": "L1"},
                                    {"value": value, "unit": unit},
                                ],
                            }
                        ],
                    )
                )
            await cp.call(
                v16.StopTransaction(
                    transaction_id=tx,
                    meter_stop=19_782_901,
                    timestamp="2025-03-01T06:04:00.000Z",
                    reason="EVDisconnected",
                )
            )
            await cp.call(v16.StatusNotification(connector_id=0, error_code="NoError", status="Available"))

    asyncio.run(session())
    evs = check_schema(kafka_broker, acme.topic)
    assert [(e.event_type, e.connector_id, e.status, e.energy_kwh) for e in evs] == [
        ("StatusNotification", 2, "Preparing", None),
        ("StartTransaction", 2, None, 19779.701),
        ("StatusNotification", 2, "Charging", None),
        ("MeterValues", 2, None, 19780.785),
        ("MeterValues", 2, None, 19781.871),
        ("StopTransaction", 2, None, 19782.901),
    ]
    assert {e.connector_type for e in evs} == {"Type2"}
    assert [format_timestamp(e.occurred_at) for e in evs[:2]] == [
        "2025-03-01T06:00:00.000Z",
        "2025-03-01T06:01:15.639Z",
    ]
    assert len({e.event_id for e in evs}) == 6
    (totals,) = session_totals(evs).values()
    assert totals == (Decimal("3.200"), Decimal("3.200") * Decimal("0.35"))


def _report(evse: int, value: str) -> dict[str, object]:
    return {
        "component": {"name": "Connector", "evse": {"id": evse, "connectorId": 1}},
        "variable": {"name": "ConnectorType"},
        "variableAttribute": [{"type": "Actual", "value": value}],
    }


def test_v201_session_lands_in_the_topic_as_the_source_reads_it(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"CP-201": {1: "Type2", 2: "Type2"}})

    def tx_event(kind: str, seq: int, at: str, **extra: object) -> v201.TransactionEvent:
        return v201.TransactionEvent(
            event_type=kind,
            timestamp=at,
            trigger_reason=extra.pop("trigger", "MeterValuePeriodic"),
            seq_no=seq,
            transaction_info={"transactionId": "b1f0c2", **extra.pop("info", {})},
            **extra,
        )

    def reading(
        at: str, value: float, unit: str = "Wh", multiplier: int = 0, context: str = "Sample.Periodic"
    ) -> list[dict[str, object]]:
        return [
            {
                "timestamp": at,
                "sampledValue": [
                    {
                        "value": value,
                        "context": context,
                        "unitOfMeasure": {"unit": unit, "multiplier": multiplier},
                    },
                    {
                        "value": 1234.0,
                        "phase": "L1-N",
                        "measurand": "Voltage",
                        "unitOfMeasure": {"unit": "V"},
                    },
                ],
            }
        ]

    async def session() -> None:
        async with (
            running(gateway_config(kafka_broker, acme)) as gw,
            charge_point(gw, "acme", "CP-201", "ocpp2.0.1") as cp,
        ):
            boot = await cp.call(
                v201.BootNotification(charging_station={"model": "M", "vendorName": "V"}, reason="PowerUp")
            )
            assert (boot.status, boot.interval) == ("Accepted", 300)
            # The device model says EVSE 2 is CCS (the registry says Type2): the report wins.
            await cp.call(
                v201.NotifyReport(
                    request_id=1,
                    generated_at="2025-03-01T05:59:00Z",
                    seq_no=0,
                    report_data=[_report(2, "cCCS2")],
                )
            )
            await cp.call(
                v201.StatusNotification(
                    timestamp="2025-03-01T06:00:00Z", connector_status="Occupied", evse_id=2, connector_id=1
                )
            )
            await cp.call(
                tx_event(
                    "Started",
                    0,
                    "2025-03-01T06:01:00Z",
                    trigger="CablePluggedIn",
                    info={"chargingState": "Charging"},
                    evse={"id": 2, "connectorId": 1},
                    meter_value=reading("2025-03-01T06:01:00Z", 50_000.0, context="Transaction.Begin"),
                )
            )
            # Offline-queued update: its own (earlier-than-now) timestamp is kept; kWh with multiplier.
            await cp.call(
                tx_event(
                    "Updated",
                    1,
                    "2025-03-01T06:16:00Z",
                    offline=True,
                    meter_value=reading("2025-03-01T06:16:00Z", 6.25, "kWh", 1),
                )
            )
            await cp.call(
                tx_event(
                    "Ended",
                    2,
                    "2025-03-01T06:30:00Z",
                    trigger="EVDeparted",
                    info={"stoppedReason": "EVDisconnected"},
                    meter_value=reading("2025-03-01T06:30:00Z", 95.5, "Wh", 3, "Transaction.End"),
                )
            )
            await cp.call(
                v201.StatusNotification(
                    timestamp="2025-03-01T06:31:00Z", connector_status="Available", evse_id=2, connector_id=1
                )
            )

    asyncio.run(session())
    evs = check_schema(kafka_broker, acme.topic)
    assert [(e.event_type, e.connector_id, e.connector_type, e.status, e.energy_kwh) for e in evs] == [
        ("StatusNotification", 2, "CCS", "Preparing", None),
        ("StartTransaction", 2, "CCS", None, 50.0),
        ("StatusNotification", 2, "CCS", "Charging", None),
        ("MeterValues", 2, "CCS", None, 62.5),
        ("StopTransaction", 2, "CCS", None, 95.5),
        ("StatusNotification", 2, "CCS", "Available", None),
    ]
    assert evs[3].occurred_at.isoformat() == "2025-03-01T06:16:00+00:00"
    (totals,) = session_totals(evs).values()
    assert totals == (Decimal("45.5"), Decimal("45.5") * Decimal("0.59"))
