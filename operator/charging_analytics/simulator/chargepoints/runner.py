"""Run simulated charge points against an OCPP central system (the gateway), over WebSocket.

Each station of the fleet becomes one real OCPP charge point: an ``ocpp.v16.ChargePoint`` or
``ocpp.v201.ChargePoint`` on a ``websockets`` client connection to
``<gateway>/ocpp/<tenant>/<station id>``, negotiating the ``ocpp1.6`` or ``ocpp2.0.1``
subprotocol and authenticating with HTTP Basic (username = station id, password = the
station's credential; OCPP security profile 1 over ``ws://``, 2 over ``wss://``).  It plays its
:func:`~charging_analytics.simulator.chargepoints.script.station_script`, one call at a time (OCPP-J allows
one outstanding call per direction), paced by simulated time:

* ``speedup`` simulated seconds per real second (``0``: no pacing, as fast as answers come);
* ``rate_per_s``: at most this many calls per second over the whole fleet of this process.

Timestamps inside the messages are simulated time, never the wall clock.  Heartbeats are sent
at the interval the central system returns in ``BootNotification`` (real seconds).

Like a real charger, a station retries a transaction message the central system did not
accept (a CallError, a lost connection, no answer in time) until it is stored, reconnecting
with back-off when the connection drops; status and heartbeat messages are not retried.  A
handshake refused with a 4xx status stops that station (wrong credentials do not heal).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import math
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ...events import format_timestamp
from ..simulate import SimulationConfig, resolve_start
from .script import (
    CONNECTOR_TYPE_201,
    DISCONNECT,
    RECONNECT,
    SUBPROTOCOLS,
    OcppVersion,
    OfflineConfig,
    StationProfile,
    Step,
    fleet_profiles,
    station_script,
)

LOG = logging.getLogger(__name__)
#: The ``ocpp`` library logs every frame at INFO and each CallError at WARNING; the runner
#: counts those itself, so the library's own logger only shows errors.
_OCPP_LOG = logging.getLogger("charging_analytics.simulator.chargepoints.ocpp")
_OCPP_LOG.setLevel(logging.ERROR)

#: 1.6 messages whose ``transactionId`` is the one the central system assigned.
_BOUND_16: Final = frozenset({"MeterValues", "StopTransaction"})
BACKOFF_S: Final = (0.2, 5.0)


class HandshakeRefused(Exception):
    """The central system refused the WebSocket handshake with an HTTP status."""

    def __init__(self, station_id: str, status: int) -> None:
        super().__init__(f"{station_id}: handshake refused with HTTP {status}")
        self.status = status


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic (RFC 7617)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def station_url(gateway: str, tenant: str, station_id: str) -> str:
    """``<gateway>/ocpp/<tenant>/<station id>``, each segment percent-encoded."""
    return f"{gateway.rstrip('/')}/ocpp/{quote(tenant, safe='')}/{quote(station_id, safe='')}"


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """A fleet of simulated charge points and how to drive it.

    ``passwords``: one shared password (``str``), one per station id (a mapping; a station
    missing from it connects without credentials), or ``None`` (no ``Authorization`` header).
    ``first_station``/``station_count`` select a slice of ``simulation``'s fleet (several
    processes driving one fleet).  ``duration_s`` ends the run (real seconds); so does the end
    of ``simulation.duration`` (simulated), after which each station disconnects -- unless
    ``hold_open``, which keeps it connected (idle, heartbeating) until ``duration_s``.
    """

    gateway: str
    tenant: str
    simulation: SimulationConfig
    versions: tuple[OcppVersion, ...] = ("1.6", "2.0.1")
    passwords: Mapping[str, str] | str | None = None
    speedup: float = 60.0
    rate_per_s: float | None = None
    duration_s: float | None = None
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    first_station: int = 0
    station_count: int | None = None
    hold_open: bool = False
    idle: bool = False
    heartbeat_interval_s: float | None = None
    connect_rate_per_s: float | None = 200.0
    response_timeout_s: float = 30.0
    open_timeout_s: float = 30.0
    ping_interval_s: float | None = None
    max_attempts: int = 10
    validate_schemas: bool = True
    ssl_context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        if self.speedup < 0:
            raise ValueError("speedup must not be negative")
        if self.rate_per_s is not None and self.rate_per_s < 0:
            raise ValueError("rate_per_s must not be negative")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not self.versions:
            raise ValueError("at least one OCPP version is needed")
        if not self.gateway.startswith(("ws://", "wss://")):
            raise ValueError(f"gateway must be a ws:// or wss:// URL (got {self.gateway!r})")

    def password_for(self, station_id: str) -> str | None:
        if self.passwords is None or isinstance(self.passwords, str):
            return self.passwords
        return self.passwords.get(station_id)


class RateLimiter:
    """At most ``rate`` acquisitions per second on average (``None`` or ``0``: no limit)."""

    #: After a pause, catch up at most this much of the schedule in a burst (seconds).
    MAX_LAG_S: Final = 0.1

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._next = clock()

    async def acquire(self) -> None:
        if not self._interval:
            return
        now = self._clock()
        self._next = max(self._next, now - self.MAX_LAG_S) + self._interval
        delay = self._next - now
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class FleetStats:
    """What the fleet did (counts and round-trip latencies in seconds), updated as it runs."""

    calls: Counter[str] = field(default_factory=Counter)
    call_errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    skipped: int = 0
    replayed: int = 0
    connects: int = 0
    connect_failures: Counter[str] = field(default_factory=Counter)
    refused_stations: int = 0
    disconnects: int = 0
    connected: int = 0
    peak_connected: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None

    def record(self, action: str, seconds: float) -> None:
        self.calls[action] += 1
        self.latencies.setdefault(action, []).append(seconds)


@dataclass(frozen=True, slots=True)
class FleetSummary:
    stations: int
    elapsed_s: float
    calls: dict[str, int]
    call_errors: dict[str, int]
    retries: int
    skipped: int
    replayed: int
    connects: int
    connect_failures: dict[str, int]
    refused_stations: int
    peak_connected: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def calls_per_s(self) -> float:
        return self.total_calls / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Every call answered without a CallError, no station refused or left with a gap."""
        return not self.call_errors and not self.refused_stations and not self.skipped

    def describe(self) -> str:
        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        by_action = ", ".join(f"{k}={v}" for k, v in sorted(self.calls.items()))
        errors = ", ".join(f"{k}={v}" for k, v in sorted(self.call_errors.items()))
        failures = ", ".join(f"{k}={v}" for k, v in sorted(self.connect_failures.items()))
        return (
            f"{self.stations} charge points, {self.total_calls} calls in {self.elapsed_s:.1f}s "
            f"({self.calls_per_s:.1f}/s), round trip p50 {fmt(self.latency_p50_ms)} ms, "
            f"p99 {fmt(self.latency_p99_ms)} ms, max {fmt(self.latency_max_ms)} ms; "
            f"{self.connects} connections (peak {self.peak_connected}), {self.replayed} replayed "
            f"after offline, {self.retries} retries"
            + (f"; call errors: {errors}" if errors else "")
            + (f"; connect failures: {failures}" if failures else "")
            + (f"; {self.refused_stations} stations refused" if self.refused_stations else "")
            + (f"; {self.skipped} messages without a transaction id skipped" if self.skipped else "")
            + (f"; {by_action}" if by_action else "")
        )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method; ``None`` if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summarize(stats: FleetStats, stations: int, elapsed_s: float) -> FleetSummary:
    latencies = [v for values in stats.latencies.values() for v in values]

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    return FleetSummary(
        stations=stations,
        elapsed_s=elapsed_s,
        calls=dict(stats.calls),
        call_errors=dict(stats.call_errors),
        retries=stats.retries,
        skipped=stats.skipped,
        replayed=stats.replayed,
        connects=stats.connects,
        connect_failures=dict(stats.connect_failures),
        refused_stations=stats.refused_stations,
        peak_connected=stats.peak_connected,
        latency_p50_ms=ms(percentile(latencies, 0.5)),
        latency_p99_ms=ms(percentile(latencies, 0.99)),
        latency_max_ms=ms(max(latencies) if latencies else None),
    )


class _ChargePoint16(ChargePoint16):  # type: ignore[misc]  # the ocpp package is untyped
    """A 1.6J charge point; central-system calls it does not implement get NotImplemented."""


class _ChargePoint201(ChargePoint201):  # type: ignore[misc]
    """A 2.0.1 charging station that answers ``GetBaseReport`` with its connector types."""

    connector_types: Mapping[int, str] = {}

    report_time: Callable[[], datetime] = staticmethod(lambda: datetime.now(UTC))

    @on("GetBaseReport")  # type: ignore[untyped-decorator]
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        return result201.GetBaseReport(status="Accepted")

    @after("GetBaseReport")  # type: ignore[untyped-decorator]
    async def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        # The report is sent after the answer (B07): a separate call from the charging station.
        with contextlib.suppress(OCPPError, ConnectionClosed, TimeoutError):
            await self.send_report(request_id, format_timestamp(self.report_time()))

    async def send_report(self, request_id: int, generated_at: str) -> None:
        report = [
            {
                "component": {"name": "Connector", "evse": {"id": evse, "connector_id": 1}},
                "variable": {"name": "ConnectorType"},
                "variable_attribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
            }
            for evse, value in sorted(self.connector_types.items())
        ]
        await self.call(
            call201.NotifyReport(
                request_id=request_id, generated_at=generated_at, seq_no=0, report_data=report
            )
        )


class _Station:
    """One charge point's life: connect, play the script, reconnect, disconnect."""

    def __init__(
        self,
        profile: StationProfile,
        script: Iterator[Step],
        fleet: FleetConfig,
        stats: FleetStats,
        calls: RateLimiter,
        connects: RateLimiter,
        pace: Callable[[datetime], float],
        stop: asyncio.Event,
    ) -> None:
        self.profile = profile
        self.script = script
        self.fleet = fleet
        self.stats = stats
        self.calls = calls
        self.connect_limiter = connects
        self.pace = pace
        self.stop = stop
        self.station_id = profile.station_id
        self.subprotocol = SUBPROTOCOLS[profile.version]
        self.call_module: Any = call16 if profile.version == "1.6" else call201
        self.ws: ClientConnection | None = None
        self.cp: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.heartbeat: asyncio.Task[None] | None = None
        self.heartbeat_s = fleet.heartbeat_interval_s
        self.tx_ids: dict[str, int] = {}
        self.message_ids = itertools.count(1)
        self.sim_time: datetime | None = None
        self.connected_once = False

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, retrying with back-off; :class:`HandshakeRefused` on a 4xx answer."""
        delay = BACKOFF_S[0]
        headers = {}
        password = self.fleet.password_for(self.station_id)
        if password is not None:
            headers["Authorization"] = basic_authorization(self.station_id, password)
        url = station_url(self.fleet.gateway, self.fleet.tenant, self.station_id)
        while True:
            await self.connect_limiter.acquire()
            try:
                ws = await connect(
                    url,
                    subprotocols=[self.subprotocol],  # type: ignore[list-item]
                    additional_headers=headers,
                    ssl=self.fleet.ssl_context if url.startswith("wss://") else None,
                    open_timeout=self.fleet.open_timeout_s,
                    ping_interval=self.fleet.ping_interval_s,
                    max_queue=4,
                )
            except InvalidStatus as err:
                status = err.response.status_code
                self.stats.connect_failures[f"HTTP {status}"] += 1
                if 400 <= status < 500:
                    raise HandshakeRefused(self.station_id, status) from None
            except (OSError, TimeoutError, InvalidHandshake) as err:
                self.stats.connect_failures[type(err).__name__] += 1
            else:
                if ws.subprotocol != self.subprotocol:
                    await ws.close()
                    self.stats.connect_failures["subprotocol"] += 1
                    raise HandshakeRefused(self.station_id, 0)
                self._attach(ws)
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_S[1])

    def _attach(self, ws: ClientConnection) -> None:
        cls = _ChargePoint16 if self.profile.version == "1.6" else _ChargePoint201
        cp = cls(self.station_id, ws, response_timeout=self.fleet.response_timeout_s, logger=_OCPP_LOG)
        # Message ids only need to be unique per connection; a station-wide counter is, and
        # keeps runs reproducible.
        cp._unique_id_generator = lambda: f"{self.station_id}-{next(self.message_ids)}"
        if isinstance(cp, _ChargePoint201):
            cp.connector_types = {
                c.connector_id: CONNECTOR_TYPE_201[c.connector_type] for c in self.profile.station.connectors
            }
            # Report times are simulated like every other timestamp.
            cp.report_time = lambda: self.sim_time or datetime.now(UTC)
        self.ws, self.cp = ws, cp
        self.reader = asyncio.create_task(self._read(cp))
        self.stats.connects += 1
        self.stats.connected += 1
        self.stats.peak_connected = max(self.stats.peak_connected, self.stats.connected)
        if self.connected_once and self.heartbeat_s:
            self._start_heartbeat()

    async def _read(self, cp: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await cp.start()

    async def disconnect(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            self.heartbeat = None
        ws, self.ws, self.cp = self.ws, None, None
        if ws is None:
            return
        self.stats.connected -= 1
        self.stats.disconnects += 1
        with contextlib.suppress(Exception):
            await ws.close()
        if self.reader is not None:
            self.reader.cancel()
            self.reader = None

    def _start_heartbeat(self) -> None:
        if self.heartbeat is None and self.heartbeat_s:
            self.heartbeat = asyncio.create_task(self._heartbeats(self.heartbeat_s))

    async def _heartbeats(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(OCPPError, ConnectionClosed, TimeoutError):
                await self._call("Heartbeat", self.call_module.Heartbeat())

    # -- calls -------------------------------------------------------------------------------

    async def _call(self, action: str, payload: Any) -> Any:
        """One call and its answer; raises ``ConnectionClosed`` as soon as the socket drops."""
        cp, reader = self.cp, self.reader
        if cp is None or reader is None or reader.done():
            raise ConnectionClosed(None, None)
        await self.calls.acquire()
        started = time.perf_counter()
        pending = asyncio.ensure_future(
            cp.call(payload, suppress=False, skip_schema_validation=not self.fleet.validate_schemas)
        )
        done, _ = await asyncio.wait({pending, reader}, return_when=asyncio.FIRST_COMPLETED)
        if pending not in done:
            pending.cancel()
            raise ConnectionClosed(None, None)
        result = pending.result()  # raises the CallError as an OCPPError
        self.stats.record(action, time.perf_counter() - started)
        return result

    async def send(self, step: Step) -> None:
        fields = dict(step.payload)
        if self.profile.version == "1.6" and step.session is not None and step.action in _BOUND_16:
            tx_id = self.tx_ids.get(step.session)
            if tx_id is None:  # its StartTransaction was never accepted
                self.stats.skipped += 1
                return
            fields["transaction_id"] = tx_id
        payload = getattr(self.call_module, step.action)(**fields)
        attempts = self.fleet.max_attempts if step.is_transaction_message else 1
        delay = BACKOFF_S[0]
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_S[1])
            try:
                if self.cp is None:
                    await self.connect()
                result = await self._call(step.action, payload)
            except OCPPError as err:
                self.stats.call_errors[f"{step.action}:{err.code}"] += 1
                continue
            except (ConnectionClosed, TimeoutError):
                self.stats.call_errors[f"{step.action}:no answer"] += 1
                await self.disconnect()
                continue
            self._handle_result(step, result)
            return
        if step.action == "StartTransaction":
            LOG.warning("%s: StartTransaction not accepted after %d attempts", self.station_id, attempts)

    def _handle_result(self, step: Step, result: Any) -> None:
        if step.queued:
            self.stats.replayed += 1
        if step.action == "BootNotification":
            if self.heartbeat_s is None:
                self.heartbeat_s = float(result.interval) or None
            self._start_heartbeat()
            self.connected_once = True
        elif step.action == "StartTransaction" and step.session is not None:
            self.tx_ids[step.session] = int(result.transaction_id)
        elif step.action == "StopTransaction" and step.session is not None:
            self.tx_ids.pop(step.session, None)

    # -- the script --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self.connect()
            for step in self.script:
                delay = self.pace(step.send_at)
                if delay > 0:
                    await asyncio.sleep(delay)
                self.sim_time = step.send_at
                if step.action == DISCONNECT:
                    await self.disconnect()
                elif step.action == RECONNECT:
                    await self.connect()
                else:
                    await self.send(step)
            if self.fleet.hold_open:
                await self.stop.wait()
        except HandshakeRefused as err:
            LOG.warning("%s", err)
            self.stats.refused_stations += 1
        finally:
            await self.disconnect()


def _scripts(fleet: FleetConfig, profiles: Sequence[StationProfile]) -> list[Iterator[Step]]:
    sim = fleet.simulation
    start = resolve_start(sim.start_time)
    until = None if sim.duration is None else start + sim.duration
    scripts: list[Iterator[Step]] = []
    for profile in profiles:
        if fleet.idle:
            scripts.append(itertools.islice(station_script(profile, sim), 1))  # BootNotification only
        else:
            scripts.append(station_script(profile, sim, offline=fleet.offline, until=until))
    return scripts


async def run_fleet(fleet: FleetConfig, *, stats: FleetStats | None = None) -> FleetSummary:
    """Drive the fleet until ``duration_s`` or until every station has played its script.

    ``fleet.simulation.start_time`` defaults to now (resolved once, so every station shares
    it).  ``stats`` (optional) is updated while the fleet runs, for progress reports.
    """
    sim = fleet.simulation
    if sim.start_time is None:
        sim = replace(sim, start_time=resolve_start(None))
        fleet = replace(fleet, simulation=sim)
    assert sim.start_time is not None
    sim_start: datetime = sim.start_time
    profiles = fleet_profiles(sim, fleet.versions, first=fleet.first_station, count=fleet.station_count)
    stats = stats if stats is not None else FleetStats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    def pace(at: datetime) -> float:
        if not fleet.speedup:
            return 0.0
        due = t0 + (at - sim_start) / timedelta(seconds=1) / fleet.speedup
        return due - loop.time()

    calls = RateLimiter(fleet.rate_per_s)
    connects = RateLimiter(fleet.connect_rate_per_s)
    stations = [
        _Station(p, s, fleet, stats, calls, connects, pace, stop)
        for p, s in zip(profiles, _scripts(fleet, profiles), strict=True)
    ]
    tasks = [asyncio.create_task(station.run(), name=station.station_id) for station in stations]
    try:
        if fleet.duration_s is None:
            await asyncio.gather(*tasks)
        else:
            await asyncio.wait(tasks, timeout=fleet.duration_s)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for station in stations:  # a cancelled task may not have reached its finally
            await station.disconnect()
    return summarize(stats, len(stations), loop.time() - t0)


def run_fleet_sync(fleet: FleetConfig) -> FleetSummary:
    """:func:`run_fleet` in a new event loop (Ctrl-C ends the run and still summarizes)."""
    return asyncio.run(run_fleet(fleet))


__all__ = [
    "FleetConfig",
    "FleetStats",
    "FleetSummary",
    "HandshakeRefused",
    "RateLimiter",
    "basic_authorization",
    "percentile",
    "run_fleet",
    "run_fleet_sync",
    "station_url",
]
