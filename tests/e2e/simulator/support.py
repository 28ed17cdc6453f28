"""Shared helpers for the simulator tests: event strategies and stream analysis."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from charging_analytics.events import (
    CONNECTOR_STATUSES,
    CONNECTOR_TYPES,
    ERROR_CODES,
    FAULT_ERROR_CODES,
    TRANSACTION_EVENT_TYPES,
    OcppEvent,
)
from charging_analytics.simulator.simulate import METER_JITTER, STATUS_DELAY_MS, SimulationConfig

START = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
STOP_AFTER_FAULT = timedelta(milliseconds=STATUS_DELAY_MS[1])

# --------------------------------------------------------------------------------------------
# Hypothesis strategies for valid events (as JSON-ready dicts)
# --------------------------------------------------------------------------------------------

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
identifiers = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(_ID_ALPHABET),
    st.text(alphabet=_ID_ALPHABET + "._:-", max_size=63),
)
event_ids = st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: f"{n:032x}")
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def _ts(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@st.composite
def valid_event_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A JSON document (dict) that satisfies the event contract."""
    event_type = draw(st.sampled_from(("StatusNotification", *TRANSACTION_EVENT_TYPES)))
    doc: dict[str, Any] = {
        "event_id": draw(event_ids),
        "event_type": event_type,
        "station_id": draw(identifiers),
        "connector_id": draw(st.integers(min_value=1, max_value=255)),
        "connector_type": draw(st.sampled_from(CONNECTOR_TYPES)),
        "session_id": None,
        "status": None,
        "error_code": None,
        "energy_kwh": None,
        "occurred_at": _ts(draw(timestamps)),
    }
    if event_type == "StatusNotification":
        status = draw(st.sampled_from(CONNECTOR_STATUSES))
        doc["status"] = status
        doc["error_code"] = draw(st.sampled_from(FAULT_ERROR_CODES if status == "Faulted" else ERROR_CODES))
    else:
        doc["session_id"] = draw(identifiers)
        doc["energy_kwh"] = draw(
            st.one_of(
                st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
                st.integers(min_value=0, max_value=10**9),
            )
        )
    return doc


# --------------------------------------------------------------------------------------------
# Stream analysis
# --------------------------------------------------------------------------------------------

ConnectorKey = tuple[str, int]


def connector_key(event: OcppEvent) -> ConnectorKey:
    return event.station_id, event.connector_id


def by_connector(events: Iterable[OcppEvent]) -> dict[ConnectorKey, list[OcppEvent]]:
    out: dict[ConnectorKey, list[OcppEvent]] = defaultdict(list)
    for event in events:
        out[connector_key(event)].append(event)
    return dict(out)


def by_session(events: Iterable[OcppEvent]) -> dict[str, list[OcppEvent]]:
    out: dict[str, list[OcppEvent]] = defaultdict(list)
    for event in events:
        if event.session_id is not None:
            out[event.session_id].append(event)
    return dict(out)


@dataclass
class StreamStats:
    """What a stream shows about faults and stalls (recovered from the events alone)."""

    sessions: int = 0
    completed_sessions: int = 0
    idle_faults: int = 0
    session_faults: int = 0
    stalled_sessions: int = 0
    stalls_resumed: int = 0
    stalls_stopped: int = 0
    fault_codes: list[str] = field(default_factory=list)

    @property
    def faults(self) -> int:
        return self.idle_faults + self.session_faults

    @property
    def cycles(self) -> int:
        """Connector cycles: every session plus every fault that replaced one."""
        return self.sessions + self.idle_faults


def analyse(events: Sequence[OcppEvent], config: SimulationConfig) -> StreamStats:
    """Count sessions, faults (idle or mid-session) and stalls (silence > stall_time)."""
    stats = StreamStats()
    stall = config.stall_time
    for stream in by_connector(events).values():
        open_session: str | None = None
        last_session_event: OcppEvent | None = None
        for event in stream:
            if event.event_type == "StartTransaction":
                stats.sessions += 1
                open_session = event.session_id
                last_session_event = event
            elif event.event_type in ("MeterValues", "StopTransaction"):
                assert last_session_event is not None
                if event.occurred_at - last_session_event.occurred_at > stall:
                    stats.stalled_sessions += 1
                    if event.event_type == "MeterValues":
                        stats.stalls_resumed += 1
                    else:
                        stats.stalls_stopped += 1
                last_session_event = event
                if event.event_type == "StopTransaction":
                    stats.completed_sessions += 1
                    open_session = None
            elif event.status == "Faulted":
                assert event.error_code is not None
                stats.fault_codes.append(event.error_code)
                if open_session is not None:
                    stats.session_faults += 1
                else:
                    stats.idle_faults += 1
    return stats


#: Status transitions the connector state machine may make (status events only).
ALLOWED_STATUS_TRANSITIONS: dict[str, set[str]] = {
    "Available": {"Preparing", "Faulted"},
    "Preparing": {"Charging"},
    "Charging": {"SuspendedEV", "Finishing", "Faulted"},
    "SuspendedEV": {"Finishing"},
    "Finishing": {"Available"},
    "Faulted": {"Available"},
}


def check_stream_invariants(events: Sequence[OcppEvent], config: SimulationConfig) -> None:
    """Assert everything that must hold for any stream of any config (used by property tests)."""
    interval = config.meter_interval
    max_gap = interval * (1 + METER_JITTER) + timedelta(milliseconds=1)
    # Global simulated-time order.
    for earlier, later in itertools.pairwise(events):
        assert earlier.occurred_at <= later.occurred_at
    assert len({e.event_id for e in events}) == len(events)

    for key, stream in by_connector(events).items():
        assert len({e.connector_type for e in stream}) == 1, key
        # First event of every connector: it reports Available.
        assert stream[0].event_type == "StatusNotification"
        assert stream[0].status == "Available"
        status = "Available"
        meter: float | None = None
        session: str | None = None
        previous: OcppEvent | None = None
        for event in stream:
            # The meter register never decreases, across sessions too.
            if event.energy_kwh is not None:
                assert meter is None or event.energy_kwh >= meter, (key, event)
                meter = event.energy_kwh
            if event.event_type == "StatusNotification":
                assert event.status in ALLOWED_STATUS_TRANSITIONS[status] or event is stream[0], (
                    key,
                    status,
                    event.status,
                )
                assert (event.status == "Faulted") == (event.error_code != "NoError")
                status = event.status or status
            elif event.event_type == "StartTransaction":
                assert session is None, (key, event)
                assert status == "Preparing", (key, event)
                session = event.session_id
            else:
                assert session is not None, (key, event)
                assert event.session_id == session, (key, event)
                assert previous is not None
                gap = event.occurred_at - previous.occurred_at
                # Within a session, events arrive every meter interval, unless the connector stalled;
                # a stop after a fault comes a few seconds after the Faulted notification.
                slack = STOP_AFTER_FAULT if event.event_type == "StopTransaction" else timedelta(0)
                assert gap <= max_gap + slack or gap > config.stall_time, (key, gap)
                if event.event_type == "StopTransaction":
                    assert status in ("Charging", "SuspendedEV", "Faulted"), (key, status)
                    session = None
                else:
                    assert status in ("Charging", "SuspendedEV"), (key, status)
            if event.session_id is not None:
                previous = event
