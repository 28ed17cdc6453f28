"""The gateway's compiled schema check accepts and rejects what the ``ocpp`` library's own
validation does, and a rejected call gets the library's error, word for word."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload

from charging_analytics.gateway.schemas import _compiled, validate_call

_V16_STATUS = {
    "connectorId": 1,
    "errorCode": "NoError",
    "status": "Available",
    "timestamp": "2025-03-01T00:00:00Z",
}
_V201_EVENT = {
    "eventType": "Started",
    "timestamp": "2025-03-01T00:00:00Z",
    "triggerReason": "Authorized",
    "seqNo": 0,
    "transactionInfo": {"transactionId": "tx-1", "chargingState": "Charging"},
    "evse": {"id": 1, "connectorId": 1},
    "meterValue": [
        {
            "timestamp": "2025-03-01T00:00:00Z",
            "sampledValue": [{"value": 12.5, "measurand": "Energy.Active.Import.Register"}],
        }
    ],
}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("1.6", "StatusNotification", _V16_STATUS),
    ("1.6", "StatusNotification", {**_V16_STATUS, "status": "Sleeping"}),  # not in the enum
    ("1.6", "StatusNotification", {k: v for k, v in _V16_STATUS.items() if k != "errorCode"}),  # required
    ("1.6", "StatusNotification", {**_V16_STATUS, "connectorId": "1"}),  # type
    ("1.6", "StatusNotification", {**_V16_STATUS, "extra": 1}),  # additionalProperties
    ("1.6", "StatusNotification", {**_V16_STATUS, "info": "x" * 51}),  # maxLength
    ("1.6", "StatusNotification", {**_V16_STATUS, "timestamp": "yesterday"}),  # formats are not checked
    ("1.6", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}),
    (
        "1.6",
        "StartTransaction",
        {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2025-03-01T00:00:00Z"},
    ),
    (
        "1.6",
        "StartTransaction",
        {"connectorId": 1, "idTag": "T", "meterStart": 1.5, "timestamp": "2025-03-01T00:00:00Z"},
    ),
    (
        "1.6",
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2025-03-01T00:00:00Z", "sampledValue": [{"value": "10"}]}],
        },
    ),
    ("1.6", "MeterValues", {"connectorId": 1, "meterValue": []}),  # minItems
    ("1.6", "Heartbeat", {}),
    ("2.0.1", "TransactionEvent", _V201_EVENT),
    ("2.0.1", "TransactionEvent", {**_V201_EVENT, "seqNo": -1}),  # minimum
    ("2.0.1", "TransactionEvent", {**_V201_EVENT, "eventType": "Paused"}),
    ("2.0.1", "TransactionEvent", {**_V201_EVENT, "transactionInfo": {}}),  # nested required
    (
        "2.0.1",
        "StatusNotification",
        {"timestamp": "2025-03-01T00:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    ),
    (
        "2.0.1",
        "StatusNotification",
        {
            "timestamp": "2025-03-01T00:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1.5,
            "connectorId": 1,
        },
    ),
    (
        "2.0.1",
        "BootNotification",
        {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    ),
    (
        "2.0.1",
        "BootNotification",
        {"chargingStation": {"vendorName": "V" * 51, "model": "M"}, "reason": "PowerUp"},
    ),
]


def _outcome(check: Any, version: str, action: str, payload: dict[str, Any]) -> tuple[str, str] | None:
    try:
        asyncio.run(check(Call("1", action, payload), version))
    except OCPPError as err:
        return err.code, str(err.details.get("cause"))
    return None


@pytest.mark.parametrize(("version", "action", "payload"), CASES)
def test_compiled_check_gives_the_library_outcome(version: str, action: str, payload: dict[str, Any]) -> None:
    assert _compiled(version, action) is not None
    assert _outcome(validate_call, version, action, payload) == _outcome(
        validate_payload, version, action, payload
    )


def test_cases_include_valid_and_invalid_calls() -> None:
    outcomes = [_outcome(validate_payload, *case) for case in CASES]
    assert sum(o is None for o in outcomes) >= 8
    assert {o[0] for o in outcomes if o is not None} >= {
        "FormatViolation",
        "TypeConstraintViolation",
        "ProtocolError",
    }
