"""The OCPP → contract mapping rules, one test each (pure functions, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from charging_analytics.events import OcppEvent
from charging_analytics.gateway import mapping
from charging_analytics.gateway.mapping import MappingError, StationContext, Transaction201
from charging_analytics.spec import GatewayConnector, tariff_type

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
CTX = StationContext("acme", "ST-1", {1: "CCS", 2: "Type2"})
TX1 = mapping.v16_transaction_id(1, datetime(2026, 1, 1, 10, tzinfo=UTC))  # a transaction on connector 1


def sv16(value: str, **extra: Any) -> dict[str, Any]:
    return {"value": value, **extra}


def sv201(
    value: float, unit: str | None = None, multiplier: int | None = None, **extra: Any
) -> dict[str, Any]:
    uom: dict[str, Any] = {}
    if unit is not None:
        uom["unit"] = unit
    if multiplier is not None:
        uom["multiplier"] = multiplier
    return {"value": value, **({"unit_of_measure": uom} if uom else {}), **extra}


# --- units -----------------------------------------------------------------------------------


def test_v16_register_defaults_to_wh_and_reads_kwh_when_labelled() -> None:
    assert mapping.v16_register_kwh([sv16("12345")]) == 12.345
    assert mapping.v16_register_kwh([sv16("12.345", unit="kWh")]) == 12.345
    assert (
        mapping.v16_register_kwh([sv16("12345", unit="Wh", measurand="Energy.Active.Import.Register")])
        == 12.345
    )


def test_v201_multiplier_is_a_power_of_ten_on_top_of_the_unit() -> None:
    assert mapping.v201_register_kwh([sv201(12345)]) == 12.345
    assert mapping.v201_register_kwh([sv201(12.345, unit="kWh")]) == 12.345
    assert mapping.v201_register_kwh([sv201(12345, unit="Wh", multiplier=3)]) == 12345.0
    assert mapping.v201_register_kwh([sv201(123.45, unit="Wh", multiplier=2)]) == 12.345
    assert mapping.v201_register_kwh([sv201(1.2345, unit="kWh", multiplier=1)]) == 12.345


def test_other_measurands_and_units_are_not_the_register() -> None:
    assert mapping.v16_register_kwh([sv16("7000", measurand="Power.Active.Import", unit="W")]) is None
    assert mapping.v201_register_kwh([sv201(5, measurand="Current.Import", unit="A")]) is None
    assert mapping.v16_register_kwh([sv16("500", unit="varh")]) is None
    assert mapping.v16_register_kwh([sv16("not a number")]) is None


# --- phases and signed data ------------------------------------------------------------------


def test_phase_values_are_never_summed_into_the_register() -> None:
    phases = [sv16("4000", phase=p) for p in ("L1", "L2", "L3")]
    assert mapping.v16_register_kwh(phases) is None
    assert mapping.v16_register_kwh([*phases, sv16("11000")]) == 11.0
    assert mapping.v201_register_kwh([sv201(4000, phase="L1"), sv201(4100, phase="L2")]) is None
    assert mapping.v201_register_kwh([sv201(4000, phase="L1"), sv201(12000)]) == 12.0


def test_signed_data_is_ignored() -> None:
    signed = sv16("PE9DUE1fU2lnbmVkTWV0ZXJWYWx1ZT4=", format="SignedData")
    assert mapping.v16_register_kwh([signed]) is None
    assert mapping.v16_register_kwh([signed, sv16("9000", format="Raw")]) == 9.0
    # 2.0.1 carries the signature beside the number: the number is used, the signature is not.
    assert mapping.v201_register_kwh([sv201(9000, signed_meter_value={"signed_meter_data": "abc"})]) == 9.0


def test_readings_of_other_locations_are_not_the_connector_register() -> None:
    assert mapping.v16_register_kwh([sv16("100", location="EV")]) is None
    assert mapping.v201_register_kwh([sv201(100, location="Inlet")]) is None


# --- connector 0, connector from the start ------------------------------------------------


def test_connector_zero_is_the_station_and_yields_no_connector_event() -> None:
    status = {"connector_id": 0, "status": "Unavailable", "error_code": "NoError"}
    assert mapping.v16_status(CTX, status, NOW) == []
    meter = {
        "connector_id": 0,
        "transaction_id": 5,
        "meter_value": [{"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [sv16("1")]}],
    }
    assert mapping.v16_meter_values(CTX, meter, NOW) == []
    assert (
        mapping.v201_status(
            CTX,
            {
                "timestamp": "2026-01-01T10:00:00Z",
                "connector_status": "Faulted",
                "evse_id": 0,
                "connector_id": 0,
            },
            NOW,
        )
        == []
    )


def test_v16_stop_gets_its_connector_from_the_transaction_id() -> None:
    start = {"connector_id": 2, "id_tag": "t", "meter_start": 1000, "timestamp": "2026-01-01T10:00:00Z"}
    transaction, started = mapping.v16_start(CTX, start, NOW)
    stopped = mapping.v16_stop(
        CTX, {"transaction_id": transaction, "meter_stop": 21000, "timestamp": "2026-01-01T11:00:00Z"}, NOW
    )
    assert (started.connector_id, stopped.connector_id) == (2, 2)
    assert (started.connector_type, stopped.connector_type) == ("Type2", "Type2")
    assert started.session_id == stopped.session_id
    assert stopped.energy_kwh - started.energy_kwh == 20.0  # type: ignore[operator]


def test_v16_transaction_ids_fit_int32_and_differ_per_connector_and_second() -> None:
    t = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    ids = {mapping.v16_transaction_id(c, t.replace(second=s)) for c in (1, 2, 255) for s in range(60)}
    assert len(ids) == 180
    assert all(0 < i < 2**31 for i in ids)
    assert all(mapping.v16_connector_of(mapping.v16_transaction_id(c, t)) == c for c in (1, 2, 255))


def test_v16_transaction_id_is_the_same_for_a_retried_start() -> None:
    start = {"connector_id": 1, "id_tag": "t", "meter_start": 1000, "timestamp": "2026-01-01T10:00:00Z"}
    first = mapping.v16_start(CTX, start, NOW)
    again = mapping.v16_start(CTX, start, datetime(2026, 1, 2, tzinfo=UTC))
    assert first == again


def test_v16_stop_of_a_transaction_the_gateway_never_assigned_is_refused() -> None:
    for bad in (-1, 0, 256):  # -1: started offline, 256: connector bits 0
        with pytest.raises(MappingError, match="not assigned"):
            mapping.v16_stop(
                CTX, {"transaction_id": bad, "meter_stop": 1, "timestamp": "2026-01-01T11:00:00Z"}, NOW
            )


def test_v16_meter_values_of_a_foreign_or_other_connectors_transaction_are_refused() -> None:
    for transaction, connector in ((-1, 1), (TX1, 2)):
        meter = {
            "connector_id": connector,
            "transaction_id": transaction,
            "meter_value": [{"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [sv16("1")]}],
        }
        with pytest.raises(MappingError, match="not assigned by this gateway to connector"):
            mapping.v16_meter_values(CTX, meter, NOW)


def test_v201_later_events_get_the_evse_of_the_transactions_first_event() -> None:
    started = {
        "event_type": "Started",
        "timestamp": "2026-01-01T10:00:00Z",
        "trigger_reason": "CablePluggedIn",
        "seq_no": 0,
        "transaction_info": {"transaction_id": "tx-1"},
        "evse": {"id": 2, "connector_id": 1},
        "meter_value": [{"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [sv201(5000)]}],
    }
    events, state = mapping.v201_transaction_event(CTX, started, None, NOW)
    assert [(e.event_type, e.connector_id) for e in events] == [("StartTransaction", 2)]
    ended = {
        "event_type": "Ended",
        "timestamp": "2026-01-01T11:00:00Z",
        "trigger_reason": "EVDeparted",
        "seq_no": 1,
        "transaction_info": {"transaction_id": "tx-1", "stopped_reason": "EVDisconnected"},
        "meter_value": [{"timestamp": "2026-01-01T11:00:00Z", "sampled_value": [sv201(15000)]}],
    }
    # Through JSON, as the state topic stores it.
    restored = Transaction201.from_json(state.to_json())
    events, _ = mapping.v201_transaction_event(CTX, ended, restored, NOW)
    assert [(e.event_type, e.connector_id, e.connector_type, e.energy_kwh) for e in events] == [
        ("StopTransaction", 2, "Type2", 15.0)
    ]


def test_v201_event_of_an_unknown_transaction_without_evse_is_refused() -> None:
    updated = {
        "event_type": "Updated",
        "timestamp": "2026-01-01T10:00:00Z",
        "trigger_reason": "MeterValuePeriodic",
        "seq_no": 3,
        "transaction_info": {"transaction_id": "nobody"},
    }
    with pytest.raises(MappingError, match="without evse"):
        mapping.v201_transaction_event(CTX, updated, None, NOW)


def test_v201_start_without_reading_is_published_with_the_first_reading() -> None:
    started = {
        "event_type": "Started",
        "timestamp": "2026-01-01T10:00:00Z",
        "trigger_reason": "Authorized",
        "seq_no": 0,
        "transaction_info": {"transaction_id": "tx-2", "charging_state": "Charging"},
        "evse": {"id": 1},
    }
    events, state = mapping.v201_transaction_event(CTX, started, None, NOW)
    assert [(e.event_type, e.status) for e in events] == [("StatusNotification", "Charging")]
    assert not state.start_published
    updated = {
        "event_type": "Updated",
        "timestamp": "2026-01-01T10:01:00Z",
        "trigger_reason": "MeterValuePeriodic",
        "seq_no": 1,
        "transaction_info": {"transaction_id": "tx-2"},
        "meter_value": [{"timestamp": "2026-01-01T10:01:00Z", "sampled_value": [sv201(7000)]}],
    }
    events, state = mapping.v201_transaction_event(CTX, updated, state, NOW)
    assert [(e.event_type, e.occurred_at.isoformat(), e.energy_kwh) for e in events] == [
        ("StartTransaction", "2026-01-01T10:00:00+00:00", 7.0),
        ("MeterValues", "2026-01-01T10:01:00+00:00", 7.0),
    ]
    ended = {
        "event_type": "Ended",
        "timestamp": "2026-01-01T10:30:00Z",
        "trigger_reason": "StopAuthorized",
        "seq_no": 2,
        "transaction_info": {"transaction_id": "tx-2"},
    }
    events, _ = mapping.v201_transaction_event(CTX, ended, state, NOW)
    assert [(e.event_type, e.energy_kwh) for e in events] == [("StopTransaction", 7.0)]


# --- timestamps and ids ----------------------------------------------------------------------


def test_offline_queued_messages_keep_their_original_timestamps() -> None:
    old = "2025-06-01T08:00:00.250Z"
    meter = {
        "connector_id": 1,
        "transaction_id": TX1,
        "meter_value": [{"timestamp": old, "sampled_value": [sv16("1")]}],
    }
    (event,) = mapping.v16_meter_values(CTX, meter, NOW)
    assert event.to_json().count('"occurred_at":"2025-06-01T08:00:00.250Z"') == 1
    # Without a timestamp (optional in 1.6 StatusNotification) it is the time of receipt.
    (status,) = mapping.v16_status(
        CTX, {"connector_id": 1, "status": "Available", "error_code": "NoError"}, NOW
    )
    assert status.occurred_at == NOW


def test_timestamps_with_offsets_are_converted_to_utc() -> None:
    assert mapping.parse_time("2026-01-01T12:00:00+02:00", NOW) == datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(MappingError, match="RFC 3339"):
        mapping.parse_time("yesterday", NOW)


def test_event_id_is_deterministic_from_content() -> None:
    meter = {
        "connector_id": 1,
        "transaction_id": TX1,
        "meter_value": [{"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [sv16("1")]}],
    }
    first = mapping.v16_meter_values(CTX, meter, NOW)
    again = mapping.v16_meter_values(CTX, meter, datetime(2030, 1, 1, tzinfo=UTC))
    assert first == again
    other_station = mapping.v16_meter_values(StationContext("acme", "ST-2", {1: "CCS"}), meter, NOW)
    other_tenant = mapping.v16_meter_values(StationContext("volt", "ST-1", {1: "CCS"}), meter, NOW)
    ids = {first[0].event_id, other_station[0].event_id, other_tenant[0].event_id}
    assert len(ids) == 3
    assert len({first[0].session_id, other_station[0].session_id, other_tenant[0].session_id}) == 3


def test_v201_seq_no_is_part_of_the_event_id() -> None:
    base = {
        "event_type": "Updated",
        "timestamp": "2026-01-01T10:00:00Z",
        "trigger_reason": "MeterValuePeriodic",
        "transaction_info": {"transaction_id": "tx"},
        "evse": {"id": 1},
        "meter_value": [{"timestamp": "2026-01-01T10:00:00Z", "sampled_value": [sv201(1000)]}],
    }
    state = Transaction201(1, None, "2026-01-01T09:00:00.000Z", True, 0.5)
    a, _ = mapping.v201_transaction_event(CTX, {**base, "seq_no": 4}, state, NOW)
    b, _ = mapping.v201_transaction_event(CTX, {**base, "seq_no": 5}, state, NOW)
    assert a[0].event_id != b[0].event_id


# --- status ----------------------------------------------------------------------------------


def test_a_fault_without_error_code_still_is_a_fault() -> None:
    (v16,) = mapping.v16_status(CTX, {"connector_id": 1, "status": "Faulted", "error_code": "NoError"}, NOW)
    (v201,) = mapping.v201_status(
        CTX,
        {"timestamp": "2026-01-01T10:00:00Z", "connector_status": "Faulted", "evse_id": 1, "connector_id": 1},
        NOW,
    )
    assert (v16.status, v16.error_code) == (v201.status, v201.error_code) == ("Faulted", "OtherError")


def test_v16_status_and_error_code_are_carried_over() -> None:
    payload = {
        "connector_id": 2,
        "status": "Available",
        "error_code": "HighTemperature",
        "timestamp": "2026-01-01T10:00:00Z",
    }
    (event,) = mapping.v16_status(CTX, payload, NOW)
    assert (event.connector_id, event.connector_type, event.status, event.error_code) == (
        2,
        "Type2",
        "Available",
        "HighTemperature",
    )


# --- connector types -------------------------------------------------------------------------


def test_ocpi_standards_map_to_tariff_types() -> None:
    assert [
        tariff_type(s) for s in ("IEC_62196_T2_COMBO", "IEC_62196_T1_COMBO", "CHADEMO", "IEC_62196_T2")
    ] == ["CCS", "CCS", "CHAdeMO", "Type2"]
    assert GatewayConnector.model_validate({"id": 1, "standard": "CHADEMO"}).connector_type == "CHAdeMO"
    with pytest.raises(ValueError, match=r"standard\n  Input should be 'IEC_62196_T1_COMBO'"):
        GatewayConnector.model_validate({"id": 1, "standard": "DOMESTIC_F"})


def test_connector_missing_from_the_registry_is_refused() -> None:
    with pytest.raises(MappingError, match="connector 3 of station ST-1 is not in the station registry"):
        mapping.v16_status(CTX, {"connector_id": 3, "status": "Available", "error_code": "NoError"}, NOW)


def test_v201_reported_connector_type_takes_precedence_over_the_registry() -> None:
    report = {
        "request_id": 1,
        "generated_at": "2026-01-01T10:00:00Z",
        "seq_no": 0,
        "report_data": [
            {
                "component": {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
                "variable": {"name": "ConnectorType"},
                "variable_attribute": [{"type": "Actual", "value": "cG105"}],
            },
            {
                "component": {"name": "Connector", "evse": {"id": 2, "connector_id": 1}},
                "variable": {"name": "ConnectorType"},
                "variable_attribute": [{"value": "sType3"}],
            },  # no tariff type
            {
                "component": {"name": "EVSE", "evse": {"id": 2}},
                "variable": {"name": "Power"},
                "variable_attribute": [{"value": "22000"}],
            },
        ],
    }
    reported = mapping.v201_reported_connector_types(report)
    assert reported == {(1, 1): "CHAdeMO"}
    ctx = StationContext("acme", "ST-1", {1: "CCS", 2: "Type2"}, reported)
    (status,) = mapping.v201_status(
        ctx,
        {
            "timestamp": "2026-01-01T10:00:00Z",
            "connector_status": "Available",
            "evse_id": 1,
            "connector_id": 1,
        },
        NOW,
    )
    assert status.connector_type == "CHAdeMO"
    assert ctx.connector_type(2) == "Type2"


def test_every_mapped_event_is_a_valid_contract_event() -> None:
    start = {"connector_id": 1, "id_tag": "t", "meter_start": 0, "timestamp": "2026-01-01T10:00:00Z"}
    _, event = mapping.v16_start(CTX, start, NOW)
    assert OcppEvent.from_json(event.to_json_bytes()) == event
