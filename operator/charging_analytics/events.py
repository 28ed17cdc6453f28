"""The OCPP event contract: what the simulator writes to Kafka and the RisingWave source reads.

One JSON object per Kafka record, with exactly the keys of :data:`EVENT_COLUMNS`, in that order,
every key always present (``null`` where a field does not apply)::

    {"event_id":"9f1c...","event_type":"MeterValues","station_id":"ST-0007","connector_id":2,
     "connector_type":"CCS","session_id":"3b0e...","status":null,"error_code":null,
     "energy_kwh":18234.512,"occurred_at":"2025-03-01T08:15:00.000Z"}

:class:`OcppEvent` is the single definition: the JSON Schema (:func:`event_json_schema`) and the
source's column list (:data:`EVENT_COLUMNS`) are derived from or checked against it.  See
``docs/events.md`` for the meaning of each field.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)

EventType = Literal["StartTransaction", "MeterValues", "StopTransaction", "StatusNotification"]
ConnectorType = Literal["CCS", "CHAdeMO", "Type2"]
#: OCPP 1.6 ``ChargePointStatus`` values a connector reports.
ConnectorStatus = Literal[
    "Available",
    "Preparing",
    "Charging",
    "SuspendedEV",
    "SuspendedEVSE",
    "Finishing",
    "Reserved",
    "Unavailable",
    "Faulted",
]
#: OCPP 1.6 ``ChargePointErrorCode`` (the complete enumeration of the specification).
ErrorCode = Literal[
    "NoError",
    "ConnectorLockFailure",
    "EVCommunicationError",
    "GroundFailure",
    "HighTemperature",
    "InternalError",
    "LocalListConflict",
    "OtherError",
    "OverCurrentFailure",
    "OverVoltage",
    "PowerMeterFailure",
    "PowerSwitchFailure",
    "ReaderFailure",
    "ResetFailure",
    "UnderVoltage",
    "WeakSignal",
]

EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
TRANSACTION_EVENT_TYPES: Final[tuple[EventType, ...]] = (
    "StartTransaction",
    "MeterValues",
    "StopTransaction",
)
CONNECTOR_TYPES: Final[tuple[ConnectorType, ...]] = get_args(ConnectorType)
CONNECTOR_STATUSES: Final[tuple[ConnectorStatus, ...]] = get_args(ConnectorStatus)
ERROR_CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)
#: Error codes that describe a real fault (everything but ``NoError``).
FAULT_ERROR_CODES: Final[tuple[ErrorCode, ...]] = tuple(c for c in ERROR_CODES if c != "NoError")

#: The RisingWave source's columns: (JSON key, column type), in contract order.  The SQL
#: templates declare the source with exactly these; a test checks the two agree.
EVENT_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("event_id", "VARCHAR"),
    ("event_type", "VARCHAR"),
    ("station_id", "VARCHAR"),
    ("connector_id", "INT"),
    ("connector_type", "VARCHAR"),
    ("session_id", "VARCHAR"),
    ("status", "VARCHAR"),
    ("error_code", "VARCHAR"),
    ("energy_kwh", "DOUBLE PRECISION"),
    ("occurred_at", "TIMESTAMPTZ"),
)

# ``[0-9]`` rather than ``\d``: Python's ``\d`` also matches non-ASCII digits, and the same
# pattern is published in the JSON Schema, where ECMA 262 semantics apply.
EVENT_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
IDENTIFIER_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
TIMESTAMP_PATTERN: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
_TIMESTAMP_RE: Final = re.compile(TIMESTAMP_PATTERN[1:-1])
MAX_CONNECTOR_ID: Final = 255

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, max_length=64)]
Timestamp = Annotated[
    datetime,
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": TIMESTAMP_PATTERN,
            "description": "RFC 3339 UTC timestamp with milliseconds and 'Z'.",
        }
    ),
]


def format_timestamp(value: datetime) -> str:
    """``2025-03-01T08:15:00.123Z``: UTC, milliseconds (truncated), ``Z`` suffix."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware")
        value = value.astimezone(UTC)
    # isoformat pads the year to four digits and appends '+00:00' for UTC.
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_timestamp(value: str) -> datetime:
    """Parse the contract's timestamp format exactly; anything else is a ``ValueError``."""
    if not _TIMESTAMP_RE.fullmatch(value):
        raise ValueError(
            "occurred_at must be an RFC 3339 UTC timestamp with milliseconds and 'Z', "
            f"like 2025-03-01T08:15:00.000Z (got {value!r})"
        )
    return datetime.fromisoformat(value)  # 3.11+ reads 'Z'; raises on impossible dates


def _schema_rules(schema: dict[str, Any]) -> None:
    """The cross-field rules of :class:`OcppEvent`, as JSON Schema conditionals."""
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = (
        "One OCPP event: the JSON value of a record on the ChargingAnalytics events topic. "
        "Every key is present; keys that do not apply to the event type are null."
    )
    schema["allOf"] = [
        {
            "if": {"properties": {"event_type": {"const": "StatusNotification"}}},
            "then": {
                "properties": {
                    "session_id": {"type": "null"},
                    "status": {"type": "string"},
                    "error_code": {"type": "string"},
                    "energy_kwh": {"type": "null"},
                }
            },
            "else": {
                "properties": {
                    "session_id": {"type": "string"},
                    "status": {"type": "null"},
                    "error_code": {"type": "null"},
                    "energy_kwh": {"type": "number"},
                }
            },
        },
        {
            "if": {"properties": {"status": {"const": "Faulted"}}, "required": ["status"]},
            "then": {"properties": {"error_code": {"not": {"const": "NoError"}}}},
        },
    ]


class OcppEvent(BaseModel):
    """One OCPP event as it travels through Kafka.

    Strict: no type coercion (``"1"`` is not a connector id), no unknown keys, every key present.
    Cross-field rules: ``status``/``error_code`` are set on ``StatusNotification`` and only there;
    ``session_id`` and ``energy_kwh`` are set on transaction events and null on
    ``StatusNotification``; a ``Faulted`` status carries an error code other than ``NoError``.
    ``occurred_at`` is kept at millisecond precision (finer input is truncated).
    """

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        title="OcppEvent",
        json_schema_extra=_schema_rules,
    )

    event_id: str = Field(
        pattern=EVENT_ID_PATTERN, description="Unique event id: a UUID as 32 lowercase hex digits."
    )
    event_type: EventType = Field(description="OCPP message the event stands for.")
    station_id: Identifier = Field(description="Charging station id, e.g. ST-0007.")
    connector_id: int = Field(ge=1, le=MAX_CONNECTOR_ID, description="Connector number, 1..N per station.")
    connector_type: ConnectorType = Field(description="Plug standard of the connector.")
    session_id: Identifier | None = Field(
        description="Transaction id; set on transaction events, null on StatusNotification."
    )
    status: ConnectorStatus | None = Field(
        description="Connector status; StatusNotification only, null otherwise."
    )
    error_code: ErrorCode | None = Field(
        description="OCPP 1.6 ChargePointErrorCode; StatusNotification only, null otherwise."
    )
    energy_kwh: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        description=(
            "Connector meter register in kWh (absolute, non-decreasing per connector); "
            "set on transaction events, null on StatusNotification."
        )
    )
    occurred_at: Timestamp = Field(description="When the event happened (UTC, milliseconds).")

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _timestamp(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_timestamp(value)
        if isinstance(value, datetime):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError("occurred_at must be timezone-aware")
            utc = value.astimezone(UTC)
            return utc.replace(microsecond=utc.microsecond - utc.microsecond % 1000)
        return value  # strict validation rejects the rest with a type error

    @model_validator(mode="after")
    def _kind_rules(self) -> OcppEvent:
        if self.event_type == "StatusNotification":
            if self.status is None:
                raise ValueError("status is required on StatusNotification")
            if self.error_code is None:
                raise ValueError("error_code is required on StatusNotification")
            if self.session_id is not None:
                raise ValueError("session_id must be null on StatusNotification")
            if self.energy_kwh is not None:
                raise ValueError("energy_kwh must be null on StatusNotification")
            if self.status == "Faulted" and self.error_code == "NoError":
                raise ValueError("a Faulted status needs an error_code other than NoError")
        else:
            if self.session_id is None:
                raise ValueError(f"session_id is required on {self.event_type}")
            if self.energy_kwh is None:
                raise ValueError(f"energy_kwh is required on {self.event_type}")
            if self.status is not None:
                raise ValueError("status is only valid on StatusNotification")
            if self.error_code is not None:
                raise ValueError("error_code is only valid on StatusNotification")
        return self

    @field_serializer("occurred_at", when_used="json")
    def _serialize_timestamp(self, value: datetime) -> str:
        return format_timestamp(value)

    @property
    def is_transaction_event(self) -> bool:
        return self.event_type != "StatusNotification"

    def to_json(self) -> str:
        """Compact JSON with exactly the contract's keys, in contract order, nulls included."""
        return self.model_dump_json()

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8 bytes (a Kafka record value)."""
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: str | bytes) -> OcppEvent:
        """Parse and validate one record value; raises ``pydantic.ValidationError``."""
        return cls.model_validate_json(data)


_SCHEMA: Final[dict[str, Any]] = OcppEvent.model_json_schema(mode="validation")


def event_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one event record, including the cross-field rules."""
    return copy.deepcopy(_SCHEMA)


__all__ = [
    "CONNECTOR_STATUSES",
    "CONNECTOR_TYPES",
    "ERROR_CODES",
    "EVENT_COLUMNS",
    "EVENT_TYPES",
    "FAULT_ERROR_CODES",
    "TRANSACTION_EVENT_TYPES",
    "ConnectorStatus",
    "ConnectorType",
    "ErrorCode",
    "EventType",
    "OcppEvent",
    "event_json_schema",
    "format_timestamp",
    "parse_timestamp",
]
