"""OCPP messages to contract events: pure functions, one rule each (see ``docs/gateway.md``).

Inputs are the handler payloads the ``ocpp`` library hands over (snake_case keys, already
schema-validated); outputs are :class:`~charging_analytics.events.OcppEvent` values.  Nothing here
does I/O: transaction state is passed in and returned.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from ..events import (
    CONNECTOR_STATUSES,
    ERROR_CODES,
    MAX_CONNECTOR_ID,
    ConnectorStatus,
    ConnectorType,
    ErrorCode,
    EventType,
    OcppEvent,
    format_timestamp,
)
from .config import OCPP201_CONNECTOR_TYPES

#: Namespaces of the gateway's UUIDv5 ids (fixed forever: changing them changes every id).
EVENT_NAMESPACE: Final = uuid.UUID("6f9d3c1e-2b7a-5e4f-9c80-4a1d2e3f5b60")
SESSION_NAMESPACE: Final = uuid.UUID("0c5e8a2d-7f41-5b93-8e16-d2a9b47c3f05")

REGISTER: Final = "Energy.Active.Import.Register"
_WH_PER: Final[Mapping[str, float]] = {"Wh": 1.0, "kWh": 1000.0}

#: Bits of a gateway-assigned OCPP 1.6 transaction id that hold the connector id.
_CONNECTOR_BITS: Final = 8
_SECOND_BITS: Final = 31 - _CONNECTOR_BITS


class MappingError(ValueError):
    """A message the gateway cannot turn into contract events (answered with a CallError)."""


@dataclass(frozen=True)
class StationContext:
    """Who sent the message, and the connector types known for the station."""

    tenant: str
    station_id: str
    #: Registry: connector id (2.0.1: EVSE id) -> tariff type.
    registry: Mapping[int, ConnectorType]
    #: 2.0.1 device-model ``ConnectorType`` reports: (EVSE id, connector id) -> tariff type.
    reported: Mapping[tuple[int, int], ConnectorType] | None = None

    def connector_type(self, connector: int, sub_connector: int | None = None) -> ConnectorType:
        if self.reported:
            found = self.reported.get((connector, sub_connector or 1))
            if found is not None:
                return found
        kind = self.registry.get(connector)
        if kind is None:
            raise MappingError(
                f"connector {connector} of station {self.station_id} is not in the station registry"
            )
        return kind


# --------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------


def event_id(
    ctx: StationContext,
    event_type: EventType,
    connector: int,
    transaction: str | None,
    occurred_at: datetime,
    seq: int | None = None,
) -> str:
    """UUIDv5 over the event's content: the same fact re-delivered gets the same id."""
    parts = (
        ctx.tenant,
        ctx.station_id,
        event_type,
        str(connector),
        transaction or "",
        format_timestamp(occurred_at),
        "" if seq is None else str(seq),
    )
    return uuid.uuid5(EVENT_NAMESPACE, "\x1f".join(parts)).hex


def session_id(ctx: StationContext, transaction: str) -> str:
    """The contract's ``session_id``: OCPP transaction ids are unique per station only."""
    return uuid.uuid5(SESSION_NAMESPACE, f"{ctx.tenant}\x1f{ctx.station_id}\x1f{transaction}").hex


def v16_transaction_id(connector: int, started_at: datetime) -> int:
    """Gateway-assigned 1.6 transaction id: start second (mod 2^23, ~97 days) and connector.

    Derived from the StartTransaction itself, so any replica, before or after a restart, assigns
    the same id to the same start (a retried StartTransaction gets its id again) and no
    coordination is needed; it fits a signed 32-bit integer; and StopTransaction, which carries
    no connector, gets its connector back from the id.  Two starts on one connector collide only
    if they are a multiple of 2^23 seconds apart to the second.
    """
    if not 1 <= connector <= MAX_CONNECTOR_ID:
        raise MappingError(f"connectorId {connector} cannot start a transaction (1..{MAX_CONNECTOR_ID})")
    second = int(started_at.timestamp()) % (1 << _SECOND_BITS)
    return (second << _CONNECTOR_BITS) | connector


def v16_connector_of(transaction_id: int) -> int | None:
    """The connector encoded in a gateway-assigned id; ``None`` for ids the gateway never gave."""
    if transaction_id <= 0 or transaction_id >= 1 << 31:
        return None
    connector = transaction_id & ((1 << _CONNECTOR_BITS) - 1)
    return connector or None


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


def parse_time(value: str | None, received_at: datetime) -> datetime:
    """An OCPP timestamp (RFC 3339; a missing offset read as UTC); absent means time of receipt.

    Offline-queued messages keep their own timestamp, however far in the past.
    """
    if value is None:
        return received_at
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise MappingError(f"timestamp {value!r} is not RFC 3339") from err
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _kwh(wh: float) -> float:
    return round(wh / 1000.0, 3)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) and value >= 0 else None


def v16_register_kwh(sampled_values: Sequence[Mapping[str, Any]]) -> float | None:
    """The total import register of one 1.6 ``meterValue`` in kWh, or ``None``.

    Only ``Energy.Active.Import.Register`` (the default measurand) of the whole connector: values
    with a ``phase`` are per-phase and never added up, ``SignedData`` is not a number, and
    ``location`` other than ``Outlet`` (the default) is not the connector's register.  Units:
    ``Wh`` (default) or ``kWh``.
    """
    for sample in sampled_values:
        if sample.get("measurand", REGISTER) != REGISTER or sample.get("phase") is not None:
            continue
        if sample.get("format", "Raw") != "Raw" or sample.get("location", "Outlet") != "Outlet":
            continue
        factor = _WH_PER.get(sample.get("unit", "Wh"))
        if factor is None:
            continue
        try:
            value = _finite(float(sample["value"]))
        except (TypeError, ValueError):
            continue
        if value is not None:
            return _kwh(value * factor)
    return None


def v201_register_kwh(sampled_values: Sequence[Mapping[str, Any]]) -> float | None:
    """The total import register of one 2.0.1 ``meterValue`` in kWh, or ``None``.

    As for 1.6, plus ``unitOfMeasure.multiplier`` (a power of ten, default 0); the number in
    ``value`` is used and ``signedMeterValue`` is ignored.
    """
    for sample in sampled_values:
        if sample.get("measurand", REGISTER) != REGISTER or sample.get("phase") is not None:
            continue
        if sample.get("location", "Outlet") != "Outlet":
            continue
        unit = sample.get("unit_of_measure") or {}
        factor = _WH_PER.get(unit.get("unit", "Wh"))
        if factor is None:
            continue
        value = sample.get("value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        multiplier = int(unit.get("multiplier", 0))
        wh = _finite(float(value) * factor * 10.0**multiplier)
        if wh is not None:
            return _kwh(wh)
    return None


def _event(
    ctx: StationContext,
    event_type: EventType,
    connector: int,
    connector_type: ConnectorType,
    occurred_at: datetime,
    *,
    transaction: str | None = None,
    kwh: float | None = None,
    status: ConnectorStatus | None = None,
    error_code: ErrorCode | None = None,
    seq: int | None = None,
) -> OcppEvent:
    return OcppEvent(
        event_id=event_id(ctx, event_type, connector, transaction, occurred_at, seq),
        event_type=event_type,
        station_id=ctx.station_id,
        connector_id=connector,
        connector_type=connector_type,
        session_id=None if transaction is None else session_id(ctx, transaction),
        status=status,
        error_code=error_code,
        energy_kwh=kwh,
        occurred_at=occurred_at,
    )


def _status_event(
    ctx: StationContext,
    connector: int,
    status: ConnectorStatus,
    error_code: ErrorCode,
    occurred_at: datetime,
    sub_connector: int | None = None,
) -> OcppEvent:
    if status == "Faulted" and error_code == "NoError":
        error_code = "OtherError"  # a fault without a code is still a fault
    return _event(
        ctx,
        "StatusNotification",
        connector,
        ctx.connector_type(connector, sub_connector),
        occurred_at,
        status=status,
        error_code=error_code,
    )


# --------------------------------------------------------------------------------------------
# OCPP 1.6
# --------------------------------------------------------------------------------------------


def v16_status(ctx: StationContext, payload: Mapping[str, Any], received_at: datetime) -> list[OcppEvent]:
    """StatusNotification.req; connector 0 is the station itself, not a connector: no event."""
    connector = int(payload["connector_id"])
    if connector == 0:
        return []
    status, code = payload["status"], payload["error_code"]
    if status not in CONNECTOR_STATUSES or code not in ERROR_CODES:
        raise MappingError(f"status {status!r} / errorCode {code!r} is not OCPP 1.6")
    return [_status_event(ctx, connector, status, code, parse_time(payload.get("timestamp"), received_at))]


def v16_start(
    ctx: StationContext, payload: Mapping[str, Any], received_at: datetime
) -> tuple[int, OcppEvent]:
    """StartTransaction.req: the assigned transaction id and the start event (meterStart in Wh)."""
    connector = int(payload["connector_id"])
    started_at = parse_time(payload["timestamp"], received_at)
    transaction = v16_transaction_id(connector, started_at)
    kwh = _finite(float(payload["meter_start"]))
    if kwh is None:
        raise MappingError("meterStart must be a non-negative number of Wh")
    event = _event(
        ctx,
        "StartTransaction",
        connector,
        ctx.connector_type(connector),
        started_at,
        transaction=str(transaction),
        kwh=_kwh(kwh),
    )
    return transaction, event


def v16_meter_values(
    ctx: StationContext, payload: Mapping[str, Any], received_at: datetime
) -> list[OcppEvent]:
    """MeterValues.req: one event per ``meterValue`` that has a register reading.

    Only readings inside a transaction become events (the contract's session); connector 0 is the
    station's main meter, not a connector register.
    """
    connector = int(payload["connector_id"])
    transaction = payload.get("transaction_id")
    if connector == 0 or transaction is None:
        return []
    if v16_connector_of(int(transaction)) != connector:
        raise MappingError(
            f"transactionId {transaction} was not assigned by this gateway to connector {connector}"
        )
    kind = ctx.connector_type(connector)
    events = []
    for value in payload["meter_value"]:
        kwh = v16_register_kwh(value["sampled_value"])
        if kwh is not None:
            at = parse_time(value["timestamp"], received_at)
            events.append(
                _event(ctx, "MeterValues", connector, kind, at, transaction=str(transaction), kwh=kwh)
            )
    return events


def v16_stop(ctx: StationContext, payload: Mapping[str, Any], received_at: datetime) -> OcppEvent:
    """StopTransaction.req: no connectorId in the message; it comes from the transaction id."""
    transaction = int(payload["transaction_id"])
    connector = v16_connector_of(transaction)
    if connector is None:
        raise MappingError(f"transactionId {transaction} was not assigned by this gateway")
    kwh = _finite(float(payload["meter_stop"]))
    if kwh is None:
        raise MappingError("meterStop must be a non-negative number of Wh")
    return _event(
        ctx,
        "StopTransaction",
        connector,
        ctx.connector_type(connector),
        parse_time(payload["timestamp"], received_at),
        transaction=str(transaction),
        kwh=_kwh(kwh),
    )


# --------------------------------------------------------------------------------------------
# OCPP 2.0.1
# --------------------------------------------------------------------------------------------

_V201_STATUS: Final[Mapping[str, ConnectorStatus]] = {
    "Available": "Available",
    "Occupied": "Preparing",  # plugged in; TransactionEvent.chargingState refines it
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Faulted",
}
_V201_CHARGING_STATE: Final[Mapping[str, ConnectorStatus]] = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
    "EVConnected": "Preparing",
}


@dataclass(frozen=True)
class Transaction201:
    """What later TransactionEvents of a 2.0.1 transaction need from earlier ones.

    ``evse`` is required only in the first event after the EV connects, so the EVSE and
    connector are kept; ``started_at`` and ``start_published`` let a Started event without a
    meter reading be published as soon as the first reading arrives; ``last_kwh`` gives an
    Ended event without a reading its register.
    """

    evse_id: int
    connector_id: int | None
    started_at: str
    start_published: bool
    last_kwh: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "evse_id": self.evse_id,
            "connector_id": self.connector_id,
            "started_at": self.started_at,
            "start_published": self.start_published,
            "last_kwh": self.last_kwh,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Transaction201:
        return cls(
            evse_id=int(data["evse_id"]),
            connector_id=None if data.get("connector_id") is None else int(data["connector_id"]),
            started_at=str(data["started_at"]),
            start_published=bool(data["start_published"]),
            last_kwh=None if data.get("last_kwh") is None else float(data["last_kwh"]),
        )


def v201_status(ctx: StationContext, payload: Mapping[str, Any], received_at: datetime) -> list[OcppEvent]:
    """StatusNotification (2.0.1): EVSE id as connector, no error code in 2.0.1 (a fault is
    ``OtherError``); EVSE 0 is the station."""
    evse = int(payload["evse_id"])
    if evse == 0:
        return []
    status = _V201_STATUS.get(payload["connector_status"])
    if status is None:
        raise MappingError(f"connectorStatus {payload['connector_status']!r} is not OCPP 2.0.1")
    code: ErrorCode = "OtherError" if status == "Faulted" else "NoError"
    at = parse_time(payload["timestamp"], received_at)
    return [_status_event(ctx, evse, status, code, at, int(payload["connector_id"]))]


def _readings(values: Iterable[Mapping[str, Any]], received_at: datetime) -> list[tuple[datetime, float]]:
    out = []
    for value in values:
        kwh = v201_register_kwh(value["sampled_value"])
        if kwh is not None:
            out.append((parse_time(value["timestamp"], received_at), kwh))
    return out


def v201_transaction_event(
    ctx: StationContext,
    payload: Mapping[str, Any],
    state: Transaction201 | None,
    received_at: datetime,
) -> tuple[list[OcppEvent], Transaction201]:
    """TransactionEvent: events for the contract, and the transaction's new state.

    ``Started`` → ``StartTransaction`` (its register from the event's meter values; without one,
    the start is published with the first reading that arrives), ``Updated`` readings →
    ``MeterValues``, ``Ended`` → ``StopTransaction`` (its reading, else the last one known); a
    ``chargingState`` → ``StatusNotification``.  Every event carries the transaction's ``seqNo``.
    """
    info = payload["transaction_info"]
    transaction = str(info["transaction_id"])
    event_type = payload["event_type"]
    at = parse_time(payload["timestamp"], received_at)
    seq = int(payload["seq_no"])
    state = _v201_located(payload, state, at, transaction)
    connector, kind = state.evse_id, ctx.connector_type(state.evse_id, state.connector_id)
    if connector == 0:
        raise MappingError("a transaction cannot run on EVSE 0 (the station)")

    events: list[OcppEvent] = []

    def emit(kind_: EventType, when: datetime, kwh: float) -> None:
        events.append(_event(ctx, kind_, connector, kind, when, transaction=transaction, kwh=kwh, seq=seq))

    readings = _readings(payload.get("meter_value") or (), received_at)
    state = _v201_emit_readings(state, event_type, readings, at, emit)
    charging = _V201_CHARGING_STATE.get(info.get("charging_state") or "")
    if charging is not None and event_type != "Ended":
        events.append(_status_event(ctx, connector, charging, "NoError", at, state.connector_id))
    return events, state


def _v201_located(
    payload: Mapping[str, Any], state: Transaction201 | None, at: datetime, transaction: str
) -> Transaction201:
    """The transaction's state with where it runs: OCPP 2.0.1 sends the EVSE only in a
    transaction's first event (and its connector perhaps later); a ``Started`` event sets the
    start time."""
    event_type = payload["event_type"]
    evse = payload.get("evse")
    if evse is not None:
        evse_id, sub = int(evse["id"]), evse.get("connector_id")
        if state is None:
            state = Transaction201(evse_id, sub, format_timestamp(at), False)
        elif sub is not None and state.connector_id is None:
            state = replace(state, connector_id=int(sub))
    if state is None:
        raise MappingError(f"TransactionEvent {event_type} of unknown transaction {transaction} without evse")
    if event_type == "Started":
        state = replace(state, started_at=format_timestamp(at))
    return state


def _v201_emit_readings(
    state: Transaction201,
    event_type: str,
    readings: list[tuple[datetime, float]],
    at: datetime,
    emit: Callable[[EventType, datetime, float], None],
) -> Transaction201:
    """Emit the start (once its first register reading is known), the readings, and on
    ``Ended`` the stop; the state with what was published and the last reading."""
    if not state.start_published and (readings or state.last_kwh is not None or event_type == "Ended"):
        first = readings[0][1] if readings else state.last_kwh
        if first is not None:
            emit("StartTransaction", datetime.fromisoformat(state.started_at), first)
            state = replace(state, start_published=True, last_kwh=first)
            if event_type == "Started":
                readings = readings[1:]
    if event_type == "Ended":
        for when, kwh in readings[:-1]:
            emit("MeterValues", when, kwh)
        final = readings[-1][1] if readings else state.last_kwh
        if final is not None and state.start_published:
            emit("StopTransaction", at, final)
            state = replace(state, last_kwh=final)
    else:
        for when, kwh in readings:
            emit("MeterValues", when, kwh)
            state = replace(state, last_kwh=kwh)
    return state


def v201_reported_connector_types(payload: Mapping[str, Any]) -> dict[tuple[int, int], ConnectorType]:
    """NotifyReport: ``Connector.ConnectorType`` values with a tariff type, by (EVSE, connector)."""
    found: dict[tuple[int, int], ConnectorType] = {}
    for item in payload.get("report_data") or ():
        component, variable = item.get("component") or {}, item.get("variable") or {}
        if component.get("name") != "Connector" or variable.get("name") != "ConnectorType":
            continue
        evse = component.get("evse") or {}
        if "id" not in evse:
            continue
        for attribute in item.get("variable_attribute") or ():
            if attribute.get("type", "Actual") != "Actual":
                continue
            kind = OCPP201_CONNECTOR_TYPES.get(str(attribute.get("value")))
            if kind is not None:
                found[(int(evse["id"]), int(evse.get("connector_id", 1)))] = kind
    return found


# --------------------------------------------------------------------------------------------
# OCPP 1.6 transactions started offline
# --------------------------------------------------------------------------------------------

#: Closed transactions remembered per station, so a re-sent StopTransaction with an id the
#: gateway never assigned still finds its transaction (and yields the same events again).
_CLOSED_KEPT: Final = 16


@dataclass(frozen=True)
class OpenTransaction16:
    transaction: int  # the id the gateway assigned (StartTransaction.conf)
    connector: int
    started_at: str
    meter_start_kwh: float
    id_tag: str | None = None


@dataclass(frozen=True)
class Station16:
    """A 1.6 station's transactions as the gateway knows them (kept in the state topic).

    ``open``: by connector, the transaction started last and not stopped. ``aliases``: ids the
    charger used that the gateway never assigned (a local id for a transaction it started
    offline), resolved to the assigned one. ``closed``: the last few stopped transactions as
    (assigned id, connector, stop timestamp).
    """

    open: Mapping[int, OpenTransaction16]
    aliases: Mapping[int, int]
    closed: tuple[tuple[int, int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "open": {
                str(c): [t.transaction, t.started_at, t.meter_start_kwh, t.id_tag]
                for c, t in self.open.items()
            },
            "aliases": {str(k): v for k, v in self.aliases.items()},
            "closed": [list(c) for c in self.closed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Station16:
        if not data:
            return EMPTY_STATION16
        return cls(
            open={
                int(c): OpenTransaction16(int(t[0]), int(c), str(t[1]), float(t[2]), t[3])
                for c, t in (data.get("open") or {}).items()
            },
            aliases={int(k): int(v) for k, v in (data.get("aliases") or {}).items()},
            closed=tuple((int(t), int(c), str(at)) for t, c, at in data.get("closed") or ()),
        )


EMPTY_STATION16: Final = Station16({}, {})


def _assigned_connector(ctx: StationContext, transaction: int) -> int | None:
    """The connector of an id this gateway could have assigned; ids whose start-second bits are
    all zero (1..255) are what chargers number their own transactions with, so they count as
    foreign."""
    connector = v16_connector_of(transaction)
    if connector is None or transaction >> _CONNECTOR_BITS == 0 or connector not in ctx.registry:
        return None
    return connector


def v16_started(state: Station16, transaction: int, event: OcppEvent, id_tag: str | None) -> Station16:
    """The station after a StartTransaction: the connector's open transaction is this one."""
    assert event.energy_kwh is not None
    opened = OpenTransaction16(
        transaction, event.connector_id, format_timestamp(event.occurred_at), event.energy_kwh, id_tag
    )
    return replace(state, open={**state.open, event.connector_id: opened})


def _close(state: Station16, transaction: int, connector: int, stopped_at: str) -> Station16:
    still_open = {c: t for c, t in state.open.items() if t.transaction != transaction}
    aliases = {k: v for k, v in state.aliases.items() if v != transaction}
    closed = (*state.closed, (transaction, connector, stopped_at))[-_CLOSED_KEPT:]
    return Station16(still_open, aliases, closed)


def _alias(state: Station16, foreign: int, transaction: int) -> Station16:
    if foreign <= 0:  # -1 / 0 name no transaction in particular: nothing to remember
        return state
    return replace(state, aliases={**state.aliases, foreign: transaction})


def v16_meter_values_tracked(
    ctx: StationContext, payload: Mapping[str, Any], state: Station16, received_at: datetime
) -> tuple[list[OcppEvent], Station16]:
    """MeterValues.req, also for a transaction id the gateway never assigned.

    Such an id (``-1``, or the charger's own number for a transaction it started offline) is the
    connector's open transaction; with none open (the StartTransaction never reached the
    gateway), the gateway assigns an id from the first reading and publishes that reading as the
    session's start, so the readings still form a session.
    """
    connector = int(payload["connector_id"])
    given = payload.get("transaction_id")
    if connector == 0 or given is None or _assigned_connector(ctx, int(given)) is not None:
        return v16_meter_values(ctx, payload, received_at), state
    foreign = int(given)
    transaction = state.aliases.get(foreign) if foreign > 0 else None
    if transaction is None and connector in state.open:
        transaction = state.open[connector].transaction
    events: list[OcppEvent] = []
    values = list(payload["meter_value"])
    if transaction is None:
        readings = [
            (parse_time(v["timestamp"], received_at), kwh)
            for v in values
            if (kwh := v16_register_kwh(v["sampled_value"])) is not None
        ]
        if not readings:
            return [], state  # nothing to start a session with
        at, kwh = readings[0]
        transaction, start = _inferred_start(ctx, connector, at, kwh)
        events.append(start)
        state = v16_started(state, transaction, start, None)
        values = [v for v in values if parse_time(v["timestamp"], received_at) != at]
    state = _alias(state, foreign, transaction)
    resolved = {**payload, "transaction_id": transaction, "meter_value": values}
    return events + v16_meter_values(ctx, resolved, received_at), state


def _inferred_start(ctx: StationContext, connector: int, at: datetime, kwh: float) -> tuple[int, OcppEvent]:
    """The StartTransaction of a transaction whose start never arrived, from its first register
    reading: the transaction id the station would have been given, and the event."""
    transaction = v16_transaction_id(connector, at)
    start = _event(
        ctx, "StartTransaction", connector, ctx.connector_type(connector), at,
        transaction=str(transaction), kwh=kwh,
    )  # fmt: skip
    return transaction, start


def _begin_reading(payload: Mapping[str, Any], received_at: datetime) -> tuple[datetime, float] | None:
    """The first register reading of StopTransaction.transactionData (``Transaction.Begin``
    context preferred): where a transaction whose start never arrived began."""
    found = []
    for value in payload.get("transaction_data") or ():
        kwh = v16_register_kwh(value.get("sampled_value") or ())
        if kwh is None:
            continue
        begin = any(s.get("context") == "Transaction.Begin" for s in value.get("sampled_value") or ())
        found.append((not begin, parse_time(value["timestamp"], received_at), kwh))
    if not found:
        return None
    _, at, kwh = min(found)
    return at, kwh


def v16_stop_tracked(
    ctx: StationContext, payload: Mapping[str, Any], state: Station16, received_at: datetime
) -> tuple[list[OcppEvent], Station16]:
    """StopTransaction.req, also for a transaction id the gateway never assigned.

    The id is resolved, in order: an alias the charger used before; a re-sent stop (a closed
    transaction stopped at this very timestamp); the open transaction it belongs to (the only
    one, or among several the one with the same ``idTag``, started before the stop, whose
    ``meterStart`` is the highest not above ``meterStop``: one register per connector). With no
    transaction known at all, a single-connector station gets one from ``transactionData``'s
    begin reading. What stays unresolvable is answered (so the charger's queue moves on) but not
    published: an event without its connector or start would be wrong (``[]``).
    """
    given = int(payload["transaction_id"])
    stop_at = parse_time(payload["timestamp"], received_at)
    stamp = format_timestamp(stop_at)
    meter_stop = _finite(float(payload["meter_stop"]))
    if _assigned_connector(ctx, given) is not None:
        event = v16_stop(ctx, payload, received_at)
        return [event], _close(state, given, event.connector_id, stamp)
    events: list[OcppEvent] = []
    transaction = state.aliases.get(given) if given > 0 else None
    if transaction is None:
        transaction = next((t for t, _c, at in state.closed if at == stamp), None)
    if transaction is None:
        tag = payload.get("id_tag")
        fitting = [
            t
            for t in state.open.values()
            if datetime.fromisoformat(t.started_at) <= stop_at
            and (meter_stop is None or t.meter_start_kwh <= _kwh(meter_stop))
        ]
        same_tag = [t for t in fitting if tag is not None and t.id_tag == tag]
        candidates = same_tag or fitting
        if candidates:
            transaction = max(candidates, key=lambda t: t.meter_start_kwh).transaction
    if transaction is None and len(ctx.registry) == 1:
        begin = _begin_reading(payload, received_at)
        if begin is not None:
            (connector,) = ctx.registry
            at, kwh = begin
            transaction, start = _inferred_start(ctx, connector, at, kwh)
            events.append(start)
    if transaction is None:
        return [], state
    stop = v16_stop(ctx, {**payload, "transaction_id": transaction}, received_at)
    return [*events, stop], _close(state, transaction, stop.connector_id, stamp)
