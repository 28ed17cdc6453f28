"""The event contract: OcppEvent, its JSON form, EVENT_COLUMNS and the JSON Schema export."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from charging_analytics.events import (
    CONNECTOR_STATUSES,
    CONNECTOR_TYPES,
    ERROR_CODES,
    EVENT_COLUMNS,
    EVENT_TYPES,
    ConnectorStatus,
    ErrorCode,
    EventType,
    OcppEvent,
    event_json_schema,
    format_timestamp,
)

from .support import valid_event_docs

jsonschema = pytest.importorskip("jsonschema")

CONTRACT_KEYS = (
    "event_id",
    "event_type",
    "station_id",
    "connector_id",
    "connector_type",
    "session_id",
    "status",
    "error_code",
    "energy_kwh",
    "occurred_at",
)


def meter_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "0f" * 16,
        "event_type": "MeterValues",
        "station_id": "ST-0007",
        "connector_id": 2,
        "connector_type": "CCS",
        "session_id": "3b0e" * 8,
        "status": None,
        "error_code": None,
        "energy_kwh": 18234.512,
        "occurred_at": "2025-03-01T08:15:00.123Z",
    }
    doc.update(changes)
    return doc


def status_doc(**changes: Any) -> dict[str, Any]:
    return (
        meter_doc(
            event_type="StatusNotification",
            session_id=None,
            energy_kwh=None,
            status="Available",
            error_code="NoError",
        )
        | changes
    )


def validate(doc: dict[str, Any]) -> OcppEvent:
    """Validate as the consumer does: from the JSON text."""
    return OcppEvent.model_validate_json(json.dumps(doc))


def schema_validator() -> Any:
    cls = jsonschema.Draft202012Validator
    return cls(event_json_schema(), format_checker=cls.FORMAT_CHECKER)


# --------------------------------------------------------------------------------------------
# Columns and keys
# --------------------------------------------------------------------------------------------


def test_event_columns_name_the_contract_keys_in_contract_order() -> None:
    assert tuple(name for name, _ in EVENT_COLUMNS) == CONTRACT_KEYS
    assert tuple(OcppEvent.model_fields) == CONTRACT_KEYS


def test_event_columns_carry_the_agreed_risingwave_types() -> None:
    assert tuple(kind for _, kind in EVENT_COLUMNS) == (
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "INT",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "VARCHAR",
        "DOUBLE PRECISION",
        "TIMESTAMPTZ",
    )


def test_event_columns_agree_with_the_source_sql_template() -> None:
    template = Path(__file__).resolve().parents[3] / "sql" / "ocpp_events.sql"
    if not template.is_file():
        pytest.skip(f"{template} not present")
    body = template.read_text(encoding="utf-8").split("(", 1)[1]
    declared = tuple(
        (m.group(1), " ".join(m.group(2).split()))
        for m in re.finditer(r"^\s*([a-z_]+)\s+([A-Z][A-Z ]*?)\s*,?\s*$", body, re.MULTILINE)
        if m.group(1) != "WATERMARK"
    )
    assert declared == EVENT_COLUMNS


@given(valid_event_docs())
def test_to_json_emits_exactly_the_event_columns_as_keys(doc: dict[str, Any]) -> None:
    text = validate(doc).to_json()
    assert list(json.loads(text)) == [name for name, _ in EVENT_COLUMNS]


def test_to_json_is_compact_and_keeps_nulls() -> None:
    text = validate(status_doc()).to_json()
    assert " " not in text
    assert "\n" not in text
    decoded = json.loads(text)
    assert decoded["session_id"] is None
    assert decoded["energy_kwh"] is None
    assert text.startswith('{"event_id":"' + "0f" * 16 + '","event_type":"StatusNotification",')
    assert validate(status_doc()).to_json_bytes() == text.encode()


@given(valid_event_docs())
def test_json_round_trip_gives_back_an_equal_event(doc: dict[str, Any]) -> None:
    event = validate(doc)
    again = OcppEvent.from_json(event.to_json())
    assert again == event
    assert again.to_json() == event.to_json()
    assert json.loads(event.to_json())["occurred_at"] == doc["occurred_at"]


# --------------------------------------------------------------------------------------------
# Timestamps
# --------------------------------------------------------------------------------------------


def test_occurred_at_is_written_in_utc_with_milliseconds_and_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    event = OcppEvent(**meter_doc(occurred_at=datetime(2025, 3, 1, 10, 15, 0, 123_999, tzinfo=plus_two)))
    assert json.loads(event.to_json())["occurred_at"] == "2025-03-01T08:15:00.123Z"
    assert event.occurred_at == datetime(2025, 3, 1, 8, 15, 0, 123_000, tzinfo=UTC)
    assert format_timestamp(datetime(2025, 3, 1, tzinfo=UTC)) == "2025-03-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01T08:15:00Z",  # no milliseconds
        "2025-03-01T08:15:00.123456Z",  # microseconds
        "2025-03-01T08:15:00.123+00:00",  # offset instead of Z
        "2025-03-01T08:15:00.123",  # no zone
        "2025-03-01 08:15:00.123Z",  # space
        "2025-02-30T08:15:00.123Z",  # no such day
        "2025-03-01T24:00:00.000Z",
        "1741000000000",
    ],
)
def test_occurred_at_rejects_anything_but_the_contract_format(text: str) -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        validate(meter_doc(occurred_at=text))


def test_occurred_at_rejects_naive_datetimes_and_numbers() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        OcppEvent(**meter_doc(occurred_at=datetime(2025, 3, 1)))
    with pytest.raises(ValidationError):
        validate(meter_doc(occurred_at=1_741_000_000_000))


# --------------------------------------------------------------------------------------------
# Field and cross-field rules
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["status", "error_code"])
def test_status_notification_requires_status_and_error_code(field: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} is required on StatusNotification"):
        validate(status_doc(**{field: None}))


@pytest.mark.parametrize(("field", "value"), [("session_id", "abc"), ("energy_kwh", 1.0)])
def test_status_notification_rejects_session_and_energy(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=f"{field} must be null on StatusNotification"):
        validate(status_doc(**{field: value}))


@pytest.mark.parametrize("event_type", ["StartTransaction", "MeterValues", "StopTransaction"])
@pytest.mark.parametrize("field", ["session_id", "energy_kwh"])
def test_transaction_events_require_session_and_energy(event_type: str, field: str) -> None:
    validate(meter_doc(event_type=event_type))
    with pytest.raises(ValidationError, match=f"{field} is required on {event_type}"):
        validate(meter_doc(event_type=event_type, **{field: None}))


@pytest.mark.parametrize(("field", "value"), [("status", "Charging"), ("error_code", "NoError")])
def test_transaction_events_reject_status_and_error_code(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=f"{field} is only valid on StatusNotification"):
        validate(meter_doc(**{field: value}))


def test_faulted_needs_an_error_code_other_than_no_error() -> None:
    with pytest.raises(ValidationError, match="Faulted status needs an error_code"):
        validate(status_doc(status="Faulted", error_code="NoError"))
    assert validate(status_doc(status="Faulted", error_code="GroundFailure")).error_code == "GroundFailure"
    # A warning with a non-faulted status is legal OCPP 1.6.
    assert validate(status_doc(status="Available", error_code="HighTemperature")).status == "Available"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("connector_id", "1"),
        ("connector_id", True),
        ("connector_id", 1.5),
        ("connector_id", 0),
        ("connector_id", 256),
        ("energy_kwh", "1.5"),
        ("energy_kwh", True),
        ("energy_kwh", -0.001),
        ("event_type", "metervalues"),
        ("event_type", "Heartbeat"),
        ("connector_type", "CCS2"),
        ("connector_type", "type2"),
        ("event_id", "0F" * 16),
        ("event_id", "0f" * 15),
        ("event_id", "0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f"),
        ("station_id", ""),
        ("station_id", "ST 7"),
        ("station_id", "S" * 65),
        ("session_id", ""),
    ],
)
def test_fields_are_strict_and_bounded(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        validate(meter_doc(**{field: value}))


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_energy_must_be_finite(text: str) -> None:
    raw = json.dumps(meter_doc(energy_kwh=0.5)).replace("0.5", text)
    with pytest.raises(ValidationError, match="energy_kwh"):
        OcppEvent.model_validate_json(raw)


def test_every_key_must_be_present_and_no_other_key_allowed() -> None:
    for key in CONTRACT_KEYS:
        doc = meter_doc()
        del doc[key]
        with pytest.raises(ValidationError, match=key):
            validate(doc)
    with pytest.raises(ValidationError, match="extra"):
        validate(meter_doc(power_kw=50.0))


def test_events_are_immutable() -> None:
    event = validate(meter_doc())
    with pytest.raises(ValidationError):
        event.energy_kwh = 1.0  # type: ignore[misc]


def test_enumerations_are_the_contract_values() -> None:
    assert EVENT_TYPES == ("StartTransaction", "MeterValues", "StopTransaction", "StatusNotification")
    assert get_args(EventType) == EVENT_TYPES
    assert CONNECTOR_TYPES == ("CCS", "CHAdeMO", "Type2")
    assert set(CONNECTOR_STATUSES) == {
        "Available",
        "Preparing",
        "Charging",
        "SuspendedEV",
        "SuspendedEVSE",
        "Finishing",
        "Reserved",
        "Unavailable",
        "Faulted",
    }
    assert get_args(ConnectorStatus) == CONNECTOR_STATUSES
    # OCPP 1.6 ChargePointErrorCode, all 16 values.
    assert len(ERROR_CODES) == 16
    assert "NoError" in ERROR_CODES
    assert "OverCurrentFailure" in ERROR_CODES
    assert get_args(ErrorCode) == ERROR_CODES


# --------------------------------------------------------------------------------------------
# The JSON Schema export
# --------------------------------------------------------------------------------------------


def test_json_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = event_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_json_schema_requires_exactly_the_contract_keys_and_no_others() -> None:
    schema = event_json_schema()
    assert tuple(schema["properties"]) == CONTRACT_KEYS
    assert schema["required"] == list(CONTRACT_KEYS)
    assert schema["additionalProperties"] is False


def test_json_schema_enumerations_match_the_model() -> None:
    props = event_json_schema()["properties"]

    def enum_of(prop: dict[str, Any]) -> tuple[str, ...]:
        if "enum" in prop:
            return tuple(prop["enum"])
        (branch,) = [b for b in prop["anyOf"] if b.get("type") != "null"]
        return tuple(branch["enum"])

    assert enum_of(props["event_type"]) == EVENT_TYPES
    assert enum_of(props["connector_type"]) == CONNECTOR_TYPES
    assert enum_of(props["status"]) == CONNECTOR_STATUSES
    assert enum_of(props["error_code"]) == ERROR_CODES


def test_event_json_schema_returns_an_independent_copy() -> None:
    first = event_json_schema()
    first["properties"].clear()
    assert event_json_schema()["properties"]


# Values a broken producer might send.  Not in the pool: integral floats (2.0), which JSON Schema
# counts as integers but the strict model does not, and strings ending in "\n", which Python's
# ``re`` (used by the jsonschema package) matches with "$" although ECMA 262 does not.
_ODD_VALUES: tuple[object, ...] = (
    None,
    "",
    "x",
    "ST-0001",
    "0f" * 16,
    "CCS",
    "Charging",
    "Faulted",
    "NoError",
    "GroundFailure",
    "StatusNotification",
    "MeterValues",
    "2025-03-01T00:00:00.000Z",
    "2025-03-01T00:00:00Z",
    "2025-02-30T00:00:00.000Z",
    0,
    1,
    -1,
    255,
    256,
    1.5,
    -0.5,
    1e308,
    True,
    False,
    [],
    {},
)


@st.composite
def mutated_docs(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(valid_event_docs())
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        action = draw(st.sampled_from(("set", "set", "set", "drop", "add")))
        if action == "set":
            doc[draw(st.sampled_from(CONTRACT_KEYS))] = draw(st.sampled_from(_ODD_VALUES))
        elif action == "drop" and doc:
            del doc[draw(st.sampled_from(sorted(doc)))]
        else:
            doc[draw(st.sampled_from(("extra", "power_kw")))] = 1
    return doc


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_docs())
def test_json_schema_accepts_exactly_what_the_model_accepts(doc: dict[str, Any]) -> None:
    try:
        validate(doc)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_validator().is_valid(doc) == model_ok, doc


def test_json_schema_and_model_agree_on_every_cross_field_combination() -> None:
    validator = schema_validator()
    combos = itertools.product(
        EVENT_TYPES,
        (None, "3b0e" * 8),  # session_id
        (None, "Available", "Faulted"),  # status
        (None, "NoError", "GroundFailure"),  # error_code
        (None, 12.5),  # energy_kwh
    )
    accepted = 0
    for event_type, session_id, status, error_code, energy in combos:
        doc = meter_doc(
            event_type=event_type,
            session_id=session_id,
            status=status,
            error_code=error_code,
            energy_kwh=energy,
        )
        try:
            validate(doc)
            model_ok = True
        except ValidationError:
            model_ok = False
        accepted += model_ok
        assert validator.is_valid(doc) == model_ok, doc
    # 3 transaction types x 1 shape, plus StatusNotification: 2 statuses x 2 codes - Faulted/NoError.
    assert accepted == 3 + 3


def test_json_schema_rejects_the_cross_field_violations() -> None:
    validator = schema_validator()
    assert validator.is_valid(meter_doc())
    assert validator.is_valid(status_doc())
    for doc in (
        status_doc(status="Faulted", error_code="NoError"),
        status_doc(session_id="abc"),
        status_doc(energy_kwh=1.0),
        status_doc(status=None),
        meter_doc(status="Charging"),
        meter_doc(error_code="NoError"),
        meter_doc(session_id=None),
        meter_doc(energy_kwh=None),
    ):
        assert not validator.is_valid(doc), doc
