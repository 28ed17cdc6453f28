"""What each simulated charge point says, and when: a pure, seeded OCPP message script.

The fleet model of :mod:`charging_analytics.simulator.simulate` decides what happens at each connector
(sessions, meter readings, faults, stalls).  This module turns one station's event stream into
the OCPP calls a real charge point of that version would send, in order, with the simulated
time at which it sends each one:

* OCPP 1.6J: ``BootNotification``, ``StatusNotification`` (connector 0 for the station itself),
  ``Authorize`` + ``StartTransaction`` (``meterStart`` in Wh), ``MeterValues`` (``value`` a
  string, in Wh or kWh, or with the unit left to its Wh default), ``StopTransaction`` (no
  connector id: the protocol has none).  The transaction id is assigned by the central system,
  so 1.6 transaction steps carry the simulator's session key and the runner binds the id.
* OCPP 2.0.1: ``BootNotification``, ``StatusNotification`` (``Occupied`` for the plugged-in
  states), ``TransactionEvent`` Started/Updated/Ended (``evse`` only on Started, ``seqNo`` per
  transaction, numeric values with ``unitOfMeasure`` and a power-of-ten ``multiplier``).

Each station has a meter profile (its unit, whether it also reports per-phase registers and
active power), drawn from a seeded RNG, so a fleet exercises every unit rule a central system
must apply.  Offline periods: a station may lose its connection for a while; transaction
messages of that period are queued and replayed in order, with their original timestamps, right
after it reconnects (2.0.1 marks them ``offline``); status notifications of that period are not
replayed (OCPP 1.6 §4.9) -- instead each connector whose status changed reports its current
status, stamped with the time it entered it.

Everything here is deterministic: the same seed and configuration give the same steps.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from random import Random
from typing import Any, Final, Literal

from ...events import ConnectorStatus, ConnectorType, ErrorCode, OcppEvent, format_timestamp
from ..simulate import SimulationConfig, Station, resolve_start, station_events

OcppVersion = Literal["1.6", "2.0.1"]
OCPP_VERSIONS: Final[tuple[OcppVersion, ...]] = ("1.6", "2.0.1")
#: The WebSocket subprotocol of each version (OCPP-J).
SUBPROTOCOLS: Final[Mapping[OcppVersion, str]] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}

#: Pseudo-actions of a script: the connection drops / comes back (not OCPP messages).
DISCONNECT: Final = "<disconnect>"
RECONNECT: Final = "<reconnect>"

ENERGY_REGISTER: Final = "Energy.Active.Import.Register"
ACTIVE_POWER: Final = "Power.Active.Import"
PHASES: Final = ("L1", "L2", "L3")

#: 1.6 sampled-value energy units a station may use; ``None`` leaves ``unit`` (and
#: ``measurand``) out, so the specification's defaults (Energy register, Wh) apply.
UNITS_16: Final[tuple[str | None, ...]] = ("Wh", "kWh", None)
#: 2.0.1 (unit, multiplier) pairs: the value times 10**multiplier is in unit.  ``None``: no
#: ``unitOfMeasure`` at all (Wh, multiplier 0 by default).
UNITS_201: Final[tuple[tuple[str, int] | None, ...]] = (("Wh", 0), ("kWh", 0), ("Wh", 3), ("kWh", -3), None)
PER_PHASE_PROBABILITY: Final = 0.3
POWER_PROBABILITY: Final = 0.5

#: 2.0.1 device-model ``ConnectorType`` values of the simulator's plug standards.
CONNECTOR_TYPE_201: Final[Mapping[ConnectorType, str]] = {
    "CCS": "cCCS2",
    "CHAdeMO": "cG105",
    "Type2": "sType2",
}
#: 1.6 statuses a 2.0.1 connector reports as ``Occupied`` (2.0.1 has fewer states).
_OCCUPIED: Final[frozenset[ConnectorStatus]] = frozenset(
    {"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"}
)
_CHARGING_STATE: Final[Mapping[ConnectorStatus, str]] = {
    "Charging": "Charging",
    "SuspendedEV": "SuspendedEV",
    "SuspendedEVSE": "SuspendedEVSE",
}


@dataclass(frozen=True, slots=True)
class OfflineConfig:
    """When stations lose their connection.

    ``per_hour`` is the chance that a connected station goes offline within a simulated hour
    (outages are a Poisson process); each outage lasts a uniform time in ``duration``.
    """

    per_hour: float = 0.0
    duration: tuple[timedelta, timedelta] = (timedelta(minutes=5), timedelta(minutes=60))

    def __post_init__(self) -> None:
        if not 0.0 <= self.per_hour < 1.0:
            raise ValueError(f"offline per_hour must be in [0, 1) (got {self.per_hour})")
        low, high = self.duration
        if not timedelta(0) < low <= high:
            raise ValueError("offline duration must be a positive (min, max) range")


@dataclass(frozen=True, slots=True)
class StationProfile:
    """One simulated charge point: its station, OCPP version and how its meter reports."""

    station: Station
    version: OcppVersion
    unit_16: str | None = "Wh"
    unit_201: tuple[str, int] | None = ("Wh", 0)
    per_phase: bool = False
    power: bool = False

    @property
    def station_id(self) -> str:
        return self.station.station_id


def station_profile(seed: int, station: Station, versions: tuple[OcppVersion, ...]) -> StationProfile:
    """The station's version (round-robin over ``versions`` by index) and a seeded meter profile."""
    if not versions:
        raise ValueError("at least one OCPP version is needed")
    rng = Random(f"ocpp-cp/{seed}/station/{station.index}")  # noqa: S311 -- simulation, not security
    return StationProfile(
        station=station,
        version=versions[station.index % len(versions)],
        unit_16=rng.choice(UNITS_16),
        unit_201=rng.choice(UNITS_201),
        per_phase=rng.random() < PER_PHASE_PROBABILITY,
        power=rng.random() < POWER_PROBABILITY,
    )


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a charge point does at simulated time ``send_at``.

    ``action`` is an OCPP action (``payload`` is its snake_case fields, as the ``ocpp``
    library's ``call`` dataclasses take them) or :data:`DISCONNECT` / :data:`RECONNECT`.
    ``session`` is the simulator's session key of a transaction message: for OCPP 1.6 the
    runner records the ``transactionId`` the central system assigns to that session's
    ``StartTransaction`` and adds it to the session's later messages.  ``queued``: the message
    was held while offline and is replayed after reconnecting (its timestamps are older than
    ``send_at``).
    """

    send_at: datetime
    action: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    session: str | None = None
    queued: bool = False

    @property
    def is_transaction_message(self) -> bool:
        return self.session is not None


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class _Window:
    start: datetime
    end: datetime


def offline_windows(
    seed: int, station: Station, start: datetime, offline: OfflineConfig
) -> Iterator[_Window]:
    """The station's outages after ``start``, in order (an infinite stream; empty when disabled)."""
    if offline.per_hour <= 0:
        return
    rng = Random(f"ocpp-cp/{seed}/offline/{station.index}")  # noqa: S311 -- simulation, not security
    rate_per_s = -math.log(1.0 - offline.per_hour) / 3600.0
    low, high = (_ms(d) for d in offline.duration)
    t = start
    while True:
        t += timedelta(milliseconds=round(rng.expovariate(rate_per_s) * 1000))
        end = t + timedelta(milliseconds=rng.randint(low, high))
        yield _Window(t, end)
        t = end


class _Encoder(abc.ABC):
    """Turns one station's events into OCPP steps; keeps the per-connector protocol state."""

    def __init__(self, profile: StationProfile) -> None:
        self.profile = profile
        self.last_meter: dict[int, tuple[datetime, int]] = {}
        self.faulted: set[int] = set()

    @abc.abstractmethod
    def boot(self, at: datetime) -> list[Step]:
        """What the charge point sends right after powering up."""

    def encode(self, at: datetime, event: OcppEvent) -> list[Step]:
        """The messages that report ``event``."""
        cid = event.connector_id
        if event.event_type == "StatusNotification":
            assert event.status is not None
            if event.status == "Faulted":
                self.faulted.add(cid)
            elif event.status == "Available":
                self.faulted.discard(cid)
            return self._on_status(at, event, event.status)
        session = event.session_id
        assert session is not None
        wh = _wh(event)
        if event.event_type == "StartTransaction":
            self.last_meter[cid] = (event.occurred_at, wh)
            return self._on_start(at, event, session, wh)
        if event.event_type == "MeterValues":
            return self._on_meter_values(at, event, session, wh)
        return self._on_stop(at, event, session, wh)

    @abc.abstractmethod
    def _on_status(self, at: datetime, event: OcppEvent, status: ConnectorStatus) -> list[Step]:
        """A connector status change (the fault bookkeeping is done)."""

    @abc.abstractmethod
    def _on_start(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        """A transaction starts at the meter reading ``wh``."""

    @abc.abstractmethod
    def _on_meter_values(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        """A periodic meter reading during a transaction."""

    @abc.abstractmethod
    def _on_stop(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        """A transaction stops (after a fault when its connector faulted)."""

    @abc.abstractmethod
    def status_now(
        self, at: datetime, since: datetime, connector_id: int, status: ConnectorStatus, error: ErrorCode
    ) -> list[Step]:
        """The current status of a connector, sent at ``at`` after reconnecting, true ``since``."""

    def mark_offline(self, step: Step) -> Step:
        return step

    # -- shared helpers ----------------------------------------------------------------------

    def _power_w(self, connector_id: int, at: datetime, wh: int) -> int:
        previous = self.last_meter.get(connector_id)
        self.last_meter[connector_id] = (at, wh)
        if previous is None or at <= previous[0]:
            return 0
        hours = (at - previous[0]).total_seconds() / 3600
        return round((wh - previous[1]) / hours)

    def _stop_kind(self, connector_id: int) -> Literal["fault", "normal"]:
        return "fault" if connector_id in self.faulted else "normal"


def _wh(event: OcppEvent) -> int:
    assert event.energy_kwh is not None
    return round(event.energy_kwh * 1000)


def _id_tag(session: str) -> str:
    return f"RFID{session[:16].upper()}"  # 1.6 IdToken: at most 20 characters


class _Encoder16(_Encoder):
    def boot(self, at: datetime) -> list[Step]:
        station = self.profile.station
        return [
            Step(
                at,
                "BootNotification",
                {
                    "charge_point_vendor": "ChargingAnalytics",
                    "charge_point_model": f"SIM-{len(station.connectors)}C",
                    "charge_point_serial_number": station.station_id,
                    "firmware_version": "1.6-sim",
                },
            ),
            Step(at, "StatusNotification", self._status_payload(at, 0, "Available", "NoError")),
        ]

    def _status_payload(
        self, at: datetime, connector_id: int, status: ConnectorStatus, error: ErrorCode
    ) -> dict[str, Any]:
        return {
            "connector_id": connector_id,
            "error_code": error,
            "status": status,
            "timestamp": format_timestamp(at),
        }

    def _sampled(self, connector_id: int, at: datetime, wh: int, context: str) -> list[dict[str, Any]]:
        unit = self.profile.unit_16
        values: list[dict[str, Any]] = []
        if unit is None:
            values.append({"value": str(wh), "context": context})
        else:
            text = str(wh) if unit == "Wh" else f"{wh / 1000:.3f}"
            values.append({"value": text, "context": context, "measurand": ENERGY_REGISTER, "unit": unit})
        if self.profile.per_phase:
            for phase, share in zip(PHASES, _split(wh), strict=True):
                values.append(
                    {
                        "value": str(share),
                        "context": context,
                        "measurand": ENERGY_REGISTER,
                        "unit": "Wh",
                        "phase": phase,
                    }
                )
        power = self._power_w(connector_id, at, wh)
        if self.profile.power:
            values.append({"value": str(power), "context": context, "measurand": ACTIVE_POWER, "unit": "W"})
        return values

    def _on_status(self, at: datetime, event: OcppEvent, status: ConnectorStatus) -> list[Step]:
        assert event.error_code is not None
        payload = self._status_payload(event.occurred_at, event.connector_id, status, event.error_code)
        return [Step(at, "StatusNotification", payload)]

    def _on_start(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        tag = _id_tag(session)
        ts = format_timestamp(event.occurred_at)
        payload = {"connector_id": event.connector_id, "id_tag": tag, "meter_start": wh, "timestamp": ts}
        return [
            Step(at, "Authorize", {"id_tag": tag}),
            Step(at, "StartTransaction", payload, session=session),
        ]

    def _on_meter_values(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        cid = event.connector_id
        meter = [
            {
                "timestamp": format_timestamp(event.occurred_at),
                "sampled_value": self._sampled(cid, event.occurred_at, wh, "Sample.Periodic"),
            }
        ]
        return [Step(at, "MeterValues", {"connector_id": cid, "meter_value": meter}, session=session)]

    def _on_stop(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        # OCPP 1.6 has no connector id here; the central system knows it from the start.
        cid = event.connector_id
        ts = format_timestamp(event.occurred_at)
        reason = "Other" if self._stop_kind(cid) == "fault" else "Local"
        payload = {
            "meter_stop": wh,
            "timestamp": ts,
            "reason": reason,
            "id_tag": _id_tag(session),
            "transaction_data": [
                {
                    "timestamp": ts,
                    "sampled_value": self._sampled(cid, event.occurred_at, wh, "Transaction.End"),
                }
            ],
        }
        self.last_meter.pop(cid, None)
        return [Step(at, "StopTransaction", payload, session=session)]

    def status_now(
        self, at: datetime, since: datetime, connector_id: int, status: ConnectorStatus, error: ErrorCode
    ) -> list[Step]:
        return [Step(at, "StatusNotification", self._status_payload(since, connector_id, status, error))]


def _split(wh: int) -> tuple[int, int, int]:
    """A register split over three phases (the phase registers sum to the total)."""
    third = wh // 3
    return third, third, wh - 2 * third


class _Encoder201(_Encoder):
    def __init__(self, profile: StationProfile) -> None:
        super().__init__(profile)
        self.seq: dict[str, int] = {}
        self.active: dict[int, str] = {}  # connector -> transaction id
        self.reported: dict[int, str] = {}  # connector -> last 2.0.1 connectorStatus sent

    def boot(self, at: datetime) -> list[Step]:
        station = self.profile.station
        return [
            Step(
                at,
                "BootNotification",
                {
                    "charging_station": {
                        "model": f"SIM-{len(station.connectors)}C",
                        "vendor_name": "ChargingAnalytics",
                        "serial_number": station.station_id,
                        "firmware_version": "2.0.1-sim",
                    },
                    "reason": "PowerUp",
                },
            )
        ]

    def _value(self, wh: int) -> tuple[float | int, dict[str, Any] | None]:
        unit = self.profile.unit_201
        if unit is None:
            return wh, None
        name, multiplier = unit
        exponent = multiplier + (3 if name == "kWh" else 0)  # value x 10**exponent = Wh
        value: float | int = wh if exponent == 0 else round(wh / 10**exponent, max(exponent, 0))
        measure: dict[str, Any] = {"unit": name}
        if multiplier:
            measure["multiplier"] = multiplier
        return value, measure

    def _meter(self, cid: int, at: datetime, wh: int, context: str) -> list[dict[str, Any]]:
        value, measure = self._value(wh)
        energy: dict[str, Any] = {"value": value, "context": context, "measurand": ENERGY_REGISTER}
        if measure is not None:
            energy["unit_of_measure"] = measure
        sampled = [energy]
        if self.profile.per_phase:
            for phase, share in zip(PHASES, _split(wh), strict=True):
                sampled.append(
                    {
                        "value": share,
                        "context": context,
                        "measurand": ENERGY_REGISTER,
                        "phase": phase,
                        "unit_of_measure": {"unit": "Wh"},
                    }
                )
        power = self._power_w(cid, at, wh)
        if self.profile.power:
            sampled.append(
                {
                    "value": power,
                    "context": context,
                    "measurand": ACTIVE_POWER,
                    "unit_of_measure": {"unit": "W"},
                }
            )
        return [{"timestamp": format_timestamp(at), "sampled_value": sampled}]

    def _status(self, at: datetime, since: datetime, cid: int, status: str) -> list[Step]:
        if self.reported.get(cid) == status:
            return []
        self.reported[cid] = status
        return [
            Step(
                at,
                "StatusNotification",
                {
                    "timestamp": format_timestamp(since),
                    "connector_status": status,
                    "evse_id": cid,
                    "connector_id": 1,
                },
            )
        ]

    def _tx_event(
        self,
        at: datetime,
        event_type: str,
        tx: str,
        trigger: str,
        ts: datetime,
        *,
        charging_state: str | None = None,
        stopped_reason: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Step:
        seq = self.seq.get(tx, 0)
        self.seq[tx] = seq + 1
        info: dict[str, Any] = {"transaction_id": tx}
        if charging_state is not None:
            info["charging_state"] = charging_state
        if stopped_reason is not None:
            info["stopped_reason"] = stopped_reason
        payload: dict[str, Any] = {
            "event_type": event_type,
            "timestamp": format_timestamp(ts),
            "trigger_reason": trigger,
            "seq_no": seq,
            "transaction_info": info,
            **(extra or {}),
        }
        return Step(at, "TransactionEvent", payload, session=tx)

    def _on_status(self, at: datetime, event: OcppEvent, status: ConnectorStatus) -> list[Step]:
        cid = event.connector_id
        tx = self.active.get(cid)
        if status in _CHARGING_STATE and tx is not None:
            # Charging/SuspendedEV are transaction states in 2.0.1, not connector states.
            state = _CHARGING_STATE[status]
            trigger = "ChargingStateChanged"
            return [self._tx_event(at, "Updated", tx, trigger, event.occurred_at, charging_state=state)]
        return self._status(at, event.occurred_at, cid, "Occupied" if status in _OCCUPIED else status)

    def _on_start(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        cid, t = event.connector_id, event.occurred_at
        self.active[cid] = session
        extra = {
            "evse": {"id": cid, "connector_id": 1},
            "id_token": {"id_token": _id_tag(session), "type": "ISO14443"},
            "meter_value": self._meter(cid, t, wh, "Transaction.Begin"),
        }
        return [
            self._tx_event(at, "Started", session, "Authorized", t, charging_state="EVConnected", extra=extra)
        ]

    def _on_meter_values(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        # No evse after Started (E01.FR.16): the central system knows it from the start.
        t = event.occurred_at
        extra = {"meter_value": self._meter(event.connector_id, t, wh, "Sample.Periodic")}
        return [self._tx_event(at, "Updated", session, "MeterValuePeriodic", t, extra=extra)]

    def _on_stop(self, at: datetime, event: OcppEvent, session: str, wh: int) -> list[Step]:
        cid, t = event.connector_id, event.occurred_at
        fault = self._stop_kind(cid) == "fault"
        self.active.pop(cid, None)
        step = self._tx_event(
            at,
            "Ended",
            session,
            "AbnormalCondition" if fault else "StopAuthorized",
            t,
            charging_state="EVConnected",
            stopped_reason="Other" if fault else "Local",
            extra={"meter_value": self._meter(cid, t, wh, "Transaction.End")},
        )
        self.last_meter.pop(cid, None)
        self.seq.pop(session, None)
        return [step]

    def status_now(
        self, at: datetime, since: datetime, connector_id: int, status: ConnectorStatus, error: ErrorCode
    ) -> list[Step]:
        mapped = "Occupied" if status in _OCCUPIED else status
        self.reported.pop(connector_id, None)  # the central system may have missed the last one
        return self._status(at, since, connector_id, mapped)

    def mark_offline(self, step: Step) -> Step:
        if step.action != "TransactionEvent":
            return step
        return replace(step, payload={**step.payload, "offline": True})


def encoder_for(profile: StationProfile) -> _Encoder:
    return _Encoder16(profile) if profile.version == "1.6" else _Encoder201(profile)


def station_script(
    profile: StationProfile,
    config: SimulationConfig,
    *,
    offline: OfflineConfig | None = None,
    until: datetime | None = None,
) -> Iterator[Step]:
    """Everything the charge point does, in order, from boot until ``until`` (simulated).

    Infinite when ``until`` is ``None``.  ``config.start_time`` must be set for the script to be
    reproducible (``None`` means now).
    """
    start = resolve_start(config.start_time)
    encoder = encoder_for(profile)
    link = _Link(encoder, offline_windows(config.seed, profile.station, start, offline or OfflineConfig()))
    yield from encoder.boot(start)
    for at, event in station_events(config, profile.station):
        # Outage boundaries before this event happen first (even with no event inside them).
        yield from link.advance(at, until)
        if link.ended or (until is not None and at > until):
            return
        yield from link.send(at, event, encoder.encode(at, event))


class _Link:
    """The charge point's connection through its outages: what it queues and misses while offline."""

    def __init__(self, encoder: _Encoder, windows: Iterator[_Window]) -> None:
        self.encoder = encoder
        self.windows = windows
        self.window = next(windows, None)
        self.offline = False
        #: set when ``until`` falls before the next outage boundary: the script is over
        self.ended = False
        self.queue: list[Step] = []
        # connector -> (status, error code, since) for statuses not reported while offline
        self.missed: dict[int, tuple[ConnectorStatus, ErrorCode, datetime]] = {}

    def advance(self, at: datetime, until: datetime | None) -> Iterator[Step]:
        """The disconnects and reconnects up to ``at`` (none past ``until``)."""
        while self.window is not None and (self.window.start <= at or self.offline):
            window = self.window
            if not self.offline:
                if until is not None and window.start > until:
                    self.ended = True
                    return
                self.offline = True
                yield Step(window.start, DISCONNECT)
            if window.end > at:
                return
            if until is not None and window.end > until:
                self.ended = True
                return
            self.offline = False
            yield from self._come_back(window.end)
            self.window = next(self.windows, None)

    def send(self, at: datetime, event: OcppEvent, steps: list[Step]) -> Iterator[Step]:
        """The steps of ``event`` now, or, while offline, its transaction messages queued."""
        if not self.offline:
            yield from steps
            return
        for step in steps:
            if step.is_transaction_message:
                self.queue.append(self.encoder.mark_offline(step))
        if event.event_type == "StatusNotification":
            assert event.status is not None
            assert event.error_code is not None
            self.missed[event.connector_id] = (event.status, event.error_code, at)

    def _come_back(self, at: datetime) -> Iterator[Step]:
        yield Step(at, RECONNECT)
        for queued in self.queue:
            yield replace(queued, send_at=at, queued=True)
        self.queue.clear()
        for cid in sorted(self.missed):
            status, error, since = self.missed[cid]
            yield from self.encoder.status_now(at, since, cid, status, error)
        self.missed.clear()


def fleet_profiles(
    config: SimulationConfig,
    versions: tuple[OcppVersion, ...],
    *,
    first: int = 0,
    count: int | None = None,
) -> tuple[StationProfile, ...]:
    """Profiles of stations ``first .. first+count-1`` of the fleet (all of it by default).

    A slice has the same stations, versions and events as in the whole fleet, so several
    processes can each drive a part of one fleet.
    """
    from ..simulate import build_fleet

    total = config.stations
    count = total - first if count is None else count
    if first < 0 or count < 0 or first + count > total:
        raise ValueError(f"stations {first}..{first + count - 1} are not in a fleet of {total}")
    stations = build_fleet(config.seed, total)[first : first + count]
    return tuple(station_profile(config.seed, station, versions) for station in stations)


__all__ = [
    "CONNECTOR_TYPE_201",
    "DISCONNECT",
    "OCPP_VERSIONS",
    "RECONNECT",
    "SUBPROTOCOLS",
    "OcppVersion",
    "OfflineConfig",
    "StationProfile",
    "Step",
    "fleet_profiles",
    "offline_windows",
    "station_profile",
    "station_script",
]
