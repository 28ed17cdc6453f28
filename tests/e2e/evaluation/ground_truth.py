"""Scripted OCPP traffic whose true sessions, energy, revenue, uptime and alerts are known.

Each helper appends events in the event contract (kWh meter readings, as the contract and the
gateway deliver them) and records what the analytics must report. Chargers that meter in Wh are
modelled with an integer Wh register: the truth is kept in Wh and the events carry Wh / 1000.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from charging_analytics.events import EVENT_COLUMNS, format_timestamp

PRICES = {"CCS": Decimal("0.59"), "CHAdeMO": Decimal("0.49"), "Type2": Decimal("0.35")}
UP = frozenset(
    {"Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"}
)
_COLUMNS = tuple(name for name, _ in EVENT_COLUMNS)


def round_half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class TrueSession:
    station_id: str
    session_id: str
    connector_id: int
    connector_type: str
    started_at: datetime
    last_event_at: datetime
    stopped_at: datetime | None
    energy_kwh: Decimal  # exact

    @property
    def revenue(self) -> Decimal | None:
        price = PRICES.get(self.connector_type)
        return None if price is None else round_half_up(self.energy_kwh * price, 2)


@dataclass
class Traffic:
    """Events (in delivery order) and the truth about them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    sessions: list[TrueSession] = field(default_factory=list)
    #: (station, connector) -> [(time, status)] of the connector's status reports
    statuses: dict[tuple[str, int], list[tuple[datetime, str]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _later: list[dict[str, Any]] = field(default_factory=list)

    def _event(self, event_type: str, station: str, at: datetime, **values: Any) -> dict[str, Any]:
        event = dict.fromkeys(_COLUMNS)
        event.update(
            event_id=f"{next(self._ids):032x}",
            event_type=event_type,
            station_id=station,
            occurred_at=format_timestamp(at),
            **values,
        )
        return event

    def status(self, station: str, connector: int, at: datetime, status: str, error: str = "NoError") -> None:
        self.events.append(
            self._event(
                "StatusNotification", station, at, connector_id=connector, status=status, error_code=error
            )
        )
        if connector > 0:
            self.statuses.setdefault((station, connector), []).append((at, status))

    def session(
        self,
        station: str,
        session_id: str,
        connector: int,
        connector_type: str,
        start: datetime,
        *,
        minutes: int,
        wh_per_minute: int,
        meter_start_wh: int = 1_000_000,
        stop: bool = True,
        stop_carries_connector: bool = True,
        delivered_later: bool = False,
    ) -> TrueSession:
        """A session with a meter reading every 5 minutes; the register counts Wh.

        ``delivered_later`` appends the events at the end of the stream (a station that was offline
        replays its queue after the rest of the traffic, with the original timestamps).
        """
        out: list[dict[str, Any]] = []
        register = meter_start_wh
        tx = {"connector_id": connector, "connector_type": connector_type, "session_id": session_id}
        out.append(self._event("StartTransaction", station, start, energy_kwh=register / 1000, **tx))
        last = start
        for minute in range(5, minutes, 5):
            last = start + timedelta(minutes=minute)
            reading = register + wh_per_minute * minute
            out.append(self._event("MeterValues", station, last, energy_kwh=reading / 1000, **tx))
        stopped = None
        final = register + wh_per_minute * minutes
        if stop:
            stopped = last = start + timedelta(minutes=minutes)
            stop_tx = dict(tx) if stop_carries_connector else {"session_id": session_id}
            out.append(self._event("StopTransaction", station, stopped, energy_kwh=final / 1000, **stop_tx))
            delivered_wh = final - register
        else:
            delivered_wh = max(range(0, minutes, 5)) * wh_per_minute  # the last reading so far
        if delivered_later:
            self._later.extend(out)
        else:
            self.events.extend(out)
        truth = TrueSession(
            station, session_id, connector, connector_type, start, last, stopped, Decimal(delivered_wh) / 1000
        )
        self.sessions.append(truth)
        return truth

    def delivered(self) -> list[tuple[Any, ...]]:
        """Rows in delivery order: the live traffic, then the replayed queues."""
        return [tuple(e[c] for c in _COLUMNS) for e in self.events + self._later]

    # -- availability truth ------------------------------------------------------------------

    def uptime(
        self,
        station: str,
        connector: int,
        *,
        at: datetime,
        slide: timedelta,
        size: timedelta,
        retention: timedelta,
    ) -> dict[datetime, tuple[int, int]]:
        """window_start -> (observed seconds, up seconds) over the connector's closed intervals."""
        reports = sorted(self.statuses[(station, connector)])
        intervals = [(a[0], b[0], a[1]) for a, b in itertools.pairwise(reports)]
        out: dict[datetime, tuple[int, int]] = {}
        if not intervals:
            return out
        epoch = datetime(1970, 1, 1, tzinfo=at.tzinfo)
        first = intervals[0][0] - size
        ws = epoch + ((first - epoch) // slide) * slide
        while ws <= intervals[-1][1]:
            we = ws + size
            observed = up = 0
            for lo, hi, status in intervals:
                overlap = (min(hi, we) - max(lo, ws)).total_seconds()
                if overlap > 0:
                    observed += int(overlap)
                    up += int(overlap) if status in UP else 0
            if observed > 0 and ws > at - retention:
                out[ws] = (observed, up)
            ws += slide
        return out
