"""A realistic, reproducible OCPP event simulator, and a rate-limited Kafka producer for it.

Two layers:

* :func:`generate_events` is pure: a seeded discrete-event simulation of a fleet of charging
  stations that yields :class:`~charging_analytics.events.OcppEvent` objects in simulated-time
  order.  It needs no Kafka and no wall clock (except to default the start time to *now*), so
  tests and benchmarks use it directly.
* :func:`run_simulation` paces that stream in real time (``rate_per_s`` events per second,
  optionally also ``speedup`` simulated seconds per real second) and produces it to Kafka with
  ``confluent_kafka.Producer``, keyed by ``station_id`` so each station's events stay ordered in
  one partition.

Reproducibility: every connector has its own ``random.Random`` seeded from
``(seed, station index, connector id)``; no global RNG is used.  The same
:class:`SimulationConfig` (including ``start_time``) gives the same events, and adding stations
does not change the events of the existing ones.

The model, per connector (times are simulated)::

    Available --idle--> Preparing -> StartTransaction -> Charging -> MeterValues every
    meter_interval ... -> StopTransaction -> Finishing -> Available

with these variations:

* the EV is full but stays plugged in (``SuspendedEV``, meter values with no energy, then Stop);
* a **fault** (probability ``fault_probability`` per connector cycle, i.e. per session or fault):
  half of them at plug-in (``Faulted`` instead of a session), half during a session
  (``Faulted``, then ``StopTransaction``); after a repair time the connector is ``Available``;
* a **stall** (probability ``stall_probability`` per session that is not interrupted by a
  fault): the connector falls silent mid-session for longer than ``stall_time``, then either
  resumes sending meter values or stops the transaction (``stall_resume_probability``).

Energy: each connector has an absolute meter register (kWh, 3 decimals, never decreasing).  A
session draws a power from its connector type's range (CCS 50-150 kW, CHAdeMO 25-50 kW, Type2
7-22 kW; DC power tapers above 80 % of the session's energy) and an energy demand, and each
meter value adds ``power x interval``.
"""

from __future__ import annotations

import heapq
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from random import Random
from typing import Any, ClassVar, Final, Literal, Protocol, TextIO

from ..events import (
    FAULT_ERROR_CODES,
    ConnectorStatus,
    ConnectorType,
    ErrorCode,
    EventType,
    OcppEvent,
    format_timestamp,
)
from ..logs import client_logger

# --------------------------------------------------------------------------------------------
# The fleet model's constants
# --------------------------------------------------------------------------------------------

#: Charging power range per connector type, kW.
POWER_KW: Final[Mapping[ConnectorType, tuple[float, float]]] = {
    "CCS": (50.0, 150.0),
    "CHAdeMO": (25.0, 50.0),
    "Type2": (7.0, 22.0),
}
#: Energy an EV wants per session, kWh, per connector type.
SESSION_KWH: Final[Mapping[ConnectorType, tuple[float, float]]] = {
    "CCS": (10.0, 70.0),
    "CHAdeMO": (8.0, 40.0),
    "Type2": (5.0, 35.0),
}
CONNECTOR_TYPE_WEIGHTS: Final[tuple[tuple[ConnectorType, float], ...]] = (
    ("CCS", 0.45),
    ("Type2", 0.40),
    ("CHAdeMO", 0.15),
)
MAX_CONNECTORS_PER_STATION: Final = 4
#: OCPP's MeterValueSampleInterval is 10 s or more in practice; shorter would also let meter
#: values overtake the Charging status notification.
MIN_METER_INTERVAL: Final = timedelta(seconds=10)
#: A connector's meter register at the start of the simulation, kWh (a used charger).
INITIAL_METER_KWH: Final = (0.0, 50_000.0)
DC_TAPER_FROM: Final = 0.8
DC_TAPER_FACTOR: Final = 0.45
POWER_NOISE: Final = (0.92, 1.03)
METER_JITTER: Final = 0.02  # +-2 % on the meter interval
SUSPENDED_EV_PROBABILITY: Final = 0.3
SUSPENDED_EV_METER_VALUES: Final = (2, 20)
IDLE_FAULT_SHARE: Final = 0.5  # of the faults, the share that happen at plug-in
STALL_GAP_FACTOR: Final = (1.2, 2.5)  # a stall lasts this many stall_times
BOOT_SPREAD_MS: Final = 5_000
MIN_IDLE_MS: Final = 30_000
PREPARING_MS: Final = (10_000, 120_000)
STATUS_DELAY_MS: Final = (1_000, 5_000)
UNPLUG_MS: Final = (30_000, 300_000)
REPAIR_MS: Final = (10 * 60_000, 120 * 60_000)


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Parameters of the simulated fleet.  Same config (with ``start_time`` set) -> same events.

    ``max_events`` and ``duration`` (simulated time after ``start_time``) end the otherwise
    infinite stream; ``start_time=None`` means *now* (UTC, truncated to milliseconds).
    """

    seed: int = 0
    stations: int = 10
    start_time: datetime | None = None
    meter_interval: timedelta = timedelta(seconds=60)
    fault_probability: float = 0.02
    stall_probability: float = 0.02
    stall_time: timedelta = timedelta(minutes=10)
    stall_resume_probability: float = 0.5
    mean_idle: timedelta = timedelta(minutes=30)
    max_events: int | None = None
    duration: timedelta | None = None

    def __post_init__(self) -> None:
        if self.stations < 1:
            raise ValueError("stations must be at least 1")
        for name in ("fault_probability", "stall_probability", "stall_resume_probability"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (got {value})")
        if self.meter_interval < MIN_METER_INTERVAL:
            raise ValueError(f"meter_interval must be at least {MIN_METER_INTERVAL.total_seconds():.0f}s")
        if self.stall_time <= self.meter_interval * (1 + METER_JITTER):
            raise ValueError("stall_time must be longer than meter_interval (plus 2 % jitter)")
        if self.mean_idle <= timedelta(0):
            raise ValueError("mean_idle must be positive")
        if self.max_events is not None and self.max_events < 0:
            raise ValueError("max_events must not be negative")
        if self.duration is not None and self.duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if self.start_time is not None and self.start_time.utcoffset() is None:
            raise ValueError("start_time must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Connector:
    connector_id: int
    connector_type: ConnectorType


@dataclass(frozen=True, slots=True)
class Station:
    index: int
    station_id: str
    connectors: tuple[Connector, ...]


def station_id_for(index: int) -> str:
    """``ST-0001`` for index 0."""
    return f"ST-{index + 1:04d}"


def build_fleet(seed: int, stations: int) -> tuple[Station, ...]:
    """The fleet layout: 1-4 connectors per station, connector types mixed by weight."""
    types = [t for t, _ in CONNECTOR_TYPE_WEIGHTS]
    weights = [w for _, w in CONNECTOR_TYPE_WEIGHTS]
    fleet = []
    for index in range(stations):
        rng = Random(f"ocpp-sim/{seed}/station/{index}")  # noqa: S311 -- simulation, not security
        count = rng.randint(1, MAX_CONNECTORS_PER_STATION)
        connectors = tuple(
            Connector(number, ctype)
            for number, ctype in enumerate(rng.choices(types, weights, k=count), start=1)
        )
        fleet.append(Station(index, station_id_for(index), connectors))
    return tuple(fleet)


def resolve_start(start_time: datetime | None) -> datetime:
    """``start_time`` in UTC at millisecond precision; *now* when ``None``."""
    value = datetime.now(UTC) if start_time is None else start_time.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


# --------------------------------------------------------------------------------------------
# The pure generator
# --------------------------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_UUID4_CLEAR: Final = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET: Final = (0x4000 << 64) | (0x8000 << 48)
_Timed = tuple[int, OcppEvent]


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _uuid4_hex(rng: Random) -> str:
    """A version-4 UUID as 32 hex digits, drawn from ``rng`` (not from the OS)."""
    return f"{(rng.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET:032x}"


class _ConnectorSim:
    """One connector's state machine, as a generator of (epoch ms, event) in time order."""

    def __init__(self, station: Station, connector: Connector, config: SimulationConfig, start_ms: int):
        seed = f"ocpp-sim/{config.seed}/connector/{station.index}/{connector.connector_id}"
        self.rng = Random(seed)  # noqa: S311 -- simulation, not security
        self.station_id = station.station_id
        self.connector_id = connector.connector_id
        self.ctype: ConnectorType = connector.connector_type
        self.dc = connector.connector_type != "Type2"
        self.cfg = config
        self.interval_ms = _ms(config.meter_interval)
        self.stall_ms = _ms(config.stall_time)
        self.mean_idle_ms = _ms(config.mean_idle)
        self.start_ms = start_ms
        self.last_ms = start_ms
        low, high = INITIAL_METER_KWH
        self.meter_wh = self.rng.randrange(int(low * 1000), int(high * 1000))

    # -- event constructors ------------------------------------------------------------------

    def _at(self, t_ms: int) -> int:
        # Never let a connector's clock run backwards, whatever the arithmetic above did.
        self.last_ms = max(self.last_ms, t_ms)
        return self.last_ms

    def _status(self, t_ms: int, status: ConnectorStatus, error: ErrorCode = "NoError") -> _Timed:
        t = self._at(t_ms)
        return t, OcppEvent(
            event_id=_uuid4_hex(self.rng),
            event_type="StatusNotification",
            station_id=self.station_id,
            connector_id=self.connector_id,
            connector_type=self.ctype,
            session_id=None,
            status=status,
            error_code=error,
            energy_kwh=None,
            occurred_at=_EPOCH + timedelta(milliseconds=t),
        )

    def _tx(self, t_ms: int, event_type: EventType, session_id: str) -> _Timed:
        t = self._at(t_ms)
        return t, OcppEvent(
            event_id=_uuid4_hex(self.rng),
            event_type=event_type,
            station_id=self.station_id,
            connector_id=self.connector_id,
            connector_type=self.ctype,
            session_id=session_id,
            status=None,
            error_code=None,
            energy_kwh=self.meter_wh / 1000,
            occurred_at=_EPOCH + timedelta(milliseconds=t),
        )

    def _span(self, bounds: tuple[int, int]) -> int:
        return self.rng.randrange(bounds[0], bounds[1])

    # -- the state machine -------------------------------------------------------------------

    def events(self) -> Iterator[_Timed]:
        rng = self.rng
        cfg = self.cfg
        t = self.start_ms + rng.randrange(BOOT_SPREAD_MS)
        yield self._status(t, "Available")
        while True:
            t += max(MIN_IDLE_MS, int(rng.expovariate(1.0 / self.mean_idle_ms)))
            mode: Literal["normal", "stall", "fault"] = "normal"
            if rng.random() < cfg.fault_probability:
                if rng.random() < IDLE_FAULT_SHARE:
                    yield self._status(t, "Faulted", rng.choice(FAULT_ERROR_CODES))
                    yield self._status(t + self._span(REPAIR_MS), "Available")
                    t = self.last_ms
                    continue
                mode = "fault"
            elif rng.random() < cfg.stall_probability:
                mode = "stall"
            yield from self._session(t, mode)
            t = self.last_ms

    def _session(self, t: int, mode: Literal["normal", "stall", "fault"]) -> Iterator[_Timed]:
        rng = self.rng
        yield self._status(t, "Preparing")
        t += self._span(PREPARING_MS)
        session_id = _uuid4_hex(rng)
        yield self._tx(t, "StartTransaction", session_id)
        t_meter = t
        yield self._status(t + self._span(STATUS_DELAY_MS), "Charging")

        low, high = SESSION_KWH[self.ctype]
        target_wh = int(rng.uniform(low, high) * 1000)
        power_kw = rng.uniform(*POWER_KW[self.ctype])
        # Where (in delivered Wh) the fault or the stall strikes: always before the EV is full.
        incident_wh = int(target_wh * rng.uniform(0.1, 0.9)) if mode != "normal" else target_wh + 1
        delivered = 0
        jitter = int(self.interval_ms * METER_JITTER)

        while True:
            dt, step_wh = self._step(power_kw, delivered, target_wh, jitter)
            if mode == "fault" and delivered + step_wh >= incident_wh:
                part = incident_wh - delivered
                self.meter_wh += part
                yield from self._fault(t_meter + dt * part // step_wh, session_id)
                return

            if mode == "stall" and delivered + step_wh >= incident_wh:
                # The connector hangs: no event at all for longer than stall_time (counted from
                # its last meter value), then it resumes meter values or stops the transaction.
                mode = "normal"  # one stall per session
                self.meter_wh += incident_wh - delivered
                delivered = incident_wh
                t_meter += int(self.stall_ms * rng.uniform(*STALL_GAP_FACTOR))
                if rng.random() >= self.cfg.stall_resume_probability:
                    yield from self._stop(t_meter, session_id)
                    return
                yield self._tx(t_meter, "MeterValues", session_id)
                continue

            if delivered + step_wh >= target_wh:  # the EV is full within this interval
                part = target_wh - delivered
                self.meter_wh += part
                yield from self._full(t_meter + dt * part // step_wh, t_meter, session_id, jitter)
                return

            delivered += step_wh
            self.meter_wh += step_wh
            t_meter += dt
            yield self._tx(t_meter, "MeterValues", session_id)

    def _step(self, power_kw: float, delivered: int, target_wh: int, jitter: int) -> tuple[int, int]:
        """One meter interval: its length (ms) and the energy (Wh) delivered in it."""
        dt = self.interval_ms + self.rng.randint(-jitter, jitter)
        power = power_kw * self.rng.uniform(*POWER_NOISE)
        if self.dc and delivered >= DC_TAPER_FROM * target_wh:
            power *= DC_TAPER_FACTOR
        return dt, max(1, int(power * dt / 3600))  # kW x ms / 3600 = Wh

    def _fault(self, t: int, session_id: str) -> Iterator[_Timed]:
        """The connector faults mid-session; the transaction stops, a repair makes it Available."""
        yield self._status(t, "Faulted", self.rng.choice(FAULT_ERROR_CODES))
        yield self._tx(t + self._span(STATUS_DELAY_MS), "StopTransaction", session_id)
        yield self._status(self.last_ms + self._span(REPAIR_MS), "Available")

    def _full(self, t_full: int, t_meter: int, session_id: str, jitter: int) -> Iterator[_Timed]:
        """The EV is full at ``t_full``; it may stay plugged in before the transaction stops."""
        rng = self.rng
        if rng.random() < SUSPENDED_EV_PROBABILITY:
            # The EV stays plugged in; the meter keeps its sampling cadence.
            yield self._status(t_full, "SuspendedEV")
            for _ in range(rng.randint(*SUSPENDED_EV_METER_VALUES)):
                t_meter += self.interval_ms + rng.randint(-jitter, jitter)
                yield self._tx(t_meter, "MeterValues", session_id)
            t_full = t_meter + rng.randrange(1_000, self.interval_ms)
        yield from self._stop(t_full, session_id)

    def _stop(self, t: int, session_id: str) -> Iterator[_Timed]:
        yield self._tx(t, "StopTransaction", session_id)
        yield self._status(self.last_ms + self._span(STATUS_DELAY_MS), "Finishing")
        yield self._status(self.last_ms + self._span(UNPLUG_MS), "Available")


def station_events(config: SimulationConfig, station: Station) -> Iterator[tuple[datetime, OcppEvent]]:
    """One station's events as (simulated time, event), in time order (ties: connector order).

    The same events :func:`generate_events` yields for this station (``config.duration`` and
    ``max_events`` are not applied: the stream is infinite).  The OCPP charge-point simulator
    turns each station's stream into the messages of one charge point.
    """
    start_ms = _ms(resolve_start(config.start_time) - _EPOCH)
    streams = [
        _ConnectorSim(station, connector, config, start_ms).events() for connector in station.connectors
    ]
    for t_ms, event in heapq.merge(*streams, key=itemgetter(0)):
        yield _EPOCH + timedelta(milliseconds=t_ms), event


def generate_events(config: SimulationConfig) -> Iterator[OcppEvent]:
    """The fleet's events in simulated-time order (ties: station, then connector order).

    Infinite unless ``config.max_events`` or ``config.duration`` is set.  Per connector the
    timestamps never decrease and the meter register never decreases.
    """
    start_ms = _ms(resolve_start(config.start_time) - _EPOCH)
    end_ms = None if config.duration is None else start_ms + _ms(config.duration)
    streams = [
        _ConnectorSim(station, connector, config, start_ms).events()
        for station in build_fleet(config.seed, config.stations)
        for connector in station.connectors
    ]
    remaining = config.max_events
    for t_ms, event in heapq.merge(*streams, key=itemgetter(0)):
        if remaining is not None:
            if remaining <= 0:
                return
            remaining -= 1
        if end_ms is not None and t_ms > end_ms:
            return
        yield event


# --------------------------------------------------------------------------------------------
# The Kafka shell
# --------------------------------------------------------------------------------------------

DeliveryCallback = Callable[[Any, Any], None]


class ProducerLike(Protocol):
    """The part of ``confluent_kafka.Producer`` the simulator uses."""

    def produce(self, topic: str, value: bytes, key: bytes, *, on_delivery: DeliveryCallback) -> None: ...

    def poll(self, timeout: float = ...) -> int: ...

    def flush(self, timeout: float = ...) -> int: ...


class JsonLinesProducer:
    """A :class:`ProducerLike` that writes each record value as one line (``--dry-run``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending: list[DeliveryCallback] = []

    def produce(self, topic: str, value: bytes, key: bytes, *, on_delivery: DeliveryCallback) -> None:
        self._stream.write(value.decode())
        self._stream.write("\n")
        self._pending.append(on_delivery)

    def poll(self, timeout: float = 0) -> int:
        served, self._pending = self._pending, []
        for callback in served:
            callback(None, None)
        if not served and timeout > 0:
            time.sleep(timeout)
        return len(served)

    def flush(self, timeout: float = -1) -> int:
        self.poll(0)
        self._stream.flush()
        return 0


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    """What :func:`run_simulation` did."""

    events_sent: int
    delivered: int
    delivery_errors: int
    undelivered: int
    events_by_type: dict[str, int]
    bytes_sent: int
    elapsed_s: float
    first_event_at: datetime | None
    last_event_at: datetime | None
    interrupted: bool = False
    error_samples: tuple[str, ...] = ()

    @property
    def rate_per_s(self) -> float:
        return self.events_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        """Everything produced was acknowledged, nothing failed."""
        return self.delivery_errors == 0 and self.undelivered == 0 and self.delivered == self.events_sent

    def describe(self) -> str:
        by_type = ", ".join(f"{k}={v}" for k, v in sorted(self.events_by_type.items()))
        return (
            f"sent {self.events_sent} events ({self.bytes_sent} bytes) in {self.elapsed_s:.1f}s "
            f"({self.rate_per_s:.1f}/s); delivered {self.delivered}, delivery errors "
            f"{self.delivery_errors}, undelivered {self.undelivered}"
            + (" [interrupted]" if self.interrupted else "")
            + (f"; {by_type}" if by_type else "")
        )


@dataclass
class _Tally:
    delivered: int = 0
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            return
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(str(err))


class _Progress:
    """One status line on ``stream``, rewritten in place (``\\r``) at most once per interval."""

    def __init__(self, stream: TextIO | None, interval_s: float) -> None:
        self._stream = stream
        self._interval = interval_s
        self._last: float | None = None
        self._tty = stream is not None and stream.isatty()

    def update(self, now: float, t0: float, sent: int, tally: _Tally, sim: datetime | None) -> None:
        last = t0 if self._last is None else self._last
        if self._stream is None or now - last < self._interval:
            return
        self._last = now
        self._write(now, t0, sent, tally, sim, final=False)

    def finish(self, now: float, t0: float, sent: int, tally: _Tally, sim: datetime | None) -> None:
        if self._stream is not None:
            self._write(now, t0, sent, tally, sim, final=True)

    def _write(
        self, now: float, t0: float, sent: int, tally: _Tally, sim: datetime | None, final: bool
    ) -> None:
        assert self._stream is not None
        elapsed = now - t0
        rate = sent / elapsed if elapsed > 0 else 0.0
        line = (
            f"simulate: {sent} events sent, {rate:.1f}/s, {tally.delivered} delivered, "
            f"{tally.errors} delivery errors"
            + (f", simulated time {format_timestamp(sim)}" if sim is not None else "")
        )
        if self._tty:
            self._stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def producer_settings(
    bootstrap: str,
    *,
    linger_ms: int = 20,
    compression: str = "lz4",
    extra: Mapping[str, str | int | float | bool] | None = None,
) -> dict[str, str | int | float | bool]:
    """librdkafka settings for the simulator's producer (``extra`` wins)."""
    settings: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap,
        "client.id": "charging-analytics-simulator",
        "linger.ms": linger_ms,
        "compression.type": compression,
        "acks": "all",
        "enable.idempotence": True,  # retries never reorder or duplicate a station's events
    }
    settings.update(extra or {})
    return settings


def run_simulation(
    bootstrap: str,
    topic: str,
    rate_per_s: float | None,
    duration_s: float | None,
    seed: int,
    *,
    config: SimulationConfig | None = None,
    max_events: int | None = None,
    speedup: float | None = None,
    linger_ms: int = 20,
    compression: str = "lz4",
    producer_config: Mapping[str, str | int | float | bool] | None = None,
    producer: ProducerLike | None = None,
    progress: TextIO | None = sys.stderr,
    progress_interval_s: float = 1.0,
    flush_timeout_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> SimulationSummary:
    """Produce the simulated stream to ``topic``, paced in real time; return a summary.

    ``config`` gives the fleet (default :class:`SimulationConfig`); ``seed`` and, when given,
    ``max_events`` override its fields, and its ``start_time`` defaults to now.  Pacing:

    * ``rate_per_s``: at most this many events per second (``None`` or ``0``: no limit);
    * ``speedup``: also hold each event until ``speedup`` x the real time elapsed has reached
      its simulated time (60 = one simulated minute per second; ``None`` or ``0``: don't).

    Stops after ``duration_s`` real seconds, ``max_events`` events, the end of the simulated
    ``config.duration`` or Ctrl-C (``interrupted=True``), whichever comes first, then flushes.
    ``producer`` replaces the ``confluent_kafka.Producer`` (dry runs, tests).
    """
    if rate_per_s is not None and rate_per_s < 0:
        raise ValueError("rate_per_s must not be negative")
    if speedup is not None and speedup < 0:
        raise ValueError("speedup must not be negative")
    cfg = replace(config or SimulationConfig(), seed=seed)
    if max_events is not None:
        cfg = replace(cfg, max_events=max_events)
    cfg = replace(cfg, start_time=resolve_start(cfg.start_time))
    if producer is None:
        producer = _kafka_producer(
            producer_settings(bootstrap, linger_ms=linger_ms, compression=compression, extra=producer_config)
        )
    t0 = clock()
    interval = 1.0 / rate_per_s if rate_per_s else 0.0
    schedule = _Schedule(clock, t0, None if duration_s is None else t0 + duration_s, interval, speedup)
    tally, meter, sent = _Tally(), _Progress(progress, progress_interval_s), _Sent()
    interrupted = False
    try:
        _play(cfg, topic, producer, schedule, _Meter(meter, t0, tally, sent), progress_interval_s)
    except KeyboardInterrupt:
        interrupted = True
    undelivered = producer.flush(flush_timeout_s)
    end = clock()
    meter.finish(end, t0, sent.events, tally, sent.last)
    return sent.summary(tally, undelivered, end - t0, interrupted)


def _kafka_producer(settings: Mapping[str, str | int | float | bool]) -> ProducerLike:
    from confluent_kafka import Producer

    # librdkafka's own lines (a broker retry is logged many times a second) go through
    # Python logging, rate-limited, instead of raw stderr
    producer: ProducerLike = Producer({**settings, "logger": client_logger("kafka")})
    return producer


@dataclass
class _Sent:
    """What was produced so far."""

    events: int = 0
    nbytes: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    first: datetime | None = None
    last: datetime | None = None

    def record(self, event: OcppEvent, size: int) -> None:
        self.events += 1
        self.nbytes += size
        self.by_type[event.event_type] += 1
        if self.first is None:
            self.first = event.occurred_at
        self.last = event.occurred_at

    def summary(
        self, tally: _Tally, undelivered: int, elapsed_s: float, interrupted: bool
    ) -> SimulationSummary:
        return SimulationSummary(
            events_sent=self.events,
            delivered=tally.delivered,
            delivery_errors=tally.errors,
            undelivered=undelivered,
            events_by_type=dict(self.by_type),
            bytes_sent=self.nbytes,
            elapsed_s=elapsed_s,
            first_event_at=self.first,
            last_event_at=self.last,
            interrupted=interrupted,
            error_samples=tuple(tally.samples),
        )


@dataclass(frozen=True)
class _Meter:
    """The progress line fed from the run's counters."""

    progress: _Progress
    t0: float
    tally: _Tally
    sent: _Sent

    def update(self, now: float) -> None:
        self.progress.update(now, self.t0, self.sent.events, self.tally, self.sent.last)


@dataclass
class _Schedule:
    """When each event may go: one per ``interval`` at most and, with a ``speedup``, not before its
    simulated time has come; nothing at or after the ``deadline``."""

    clock: Callable[[], float]
    t0: float
    deadline: float | None
    interval: float
    speedup: float | None
    next_slot: float = field(init=False)
    #: after a hiccup, catch up at most this much schedule in a burst
    max_lag: ClassVar[float] = 0.1

    def __post_init__(self) -> None:
        self.next_slot = self.t0

    def release(self, event: OcppEvent, sim_start: datetime) -> float:
        if not self.speedup:
            return self.next_slot
        return max(self.next_slot, self.t0 + (event.occurred_at - sim_start).total_seconds() / self.speedup)

    def past_deadline(self, at: float) -> bool:
        return self.deadline is not None and at >= self.deadline

    def sent_at(self, now: float) -> None:
        self.next_slot = max(self.next_slot, now - self.max_lag) + self.interval


def _play(
    cfg: SimulationConfig,
    topic: str,
    producer: ProducerLike,
    schedule: _Schedule,
    meter: _Meter,
    poll_s: float,
) -> None:
    """Produce the events in order, each once the schedule releases it, until the deadline or the end."""
    assert cfg.start_time is not None
    for event in generate_events(cfg):
        release = schedule.release(event, cfg.start_time)
        if schedule.past_deadline(release):
            return
        now = schedule.clock()
        while release - now > 0.0005:
            producer.poll(min(release - now, poll_s))
            now = schedule.clock()
            meter.update(now)
        if schedule.past_deadline(now):
            return
        value = event.to_json_bytes()
        while True:
            try:
                producer.produce(topic, value, event.station_id.encode(), on_delivery=meter.tally.on_delivery)
                break
            except BufferError:  # local queue full: let librdkafka drain it
                producer.poll(0.05)
        producer.poll(0)
        meter.sent.record(event, len(value))
        schedule.sent_at(now)
        meter.update(now)

def ensure_topic(
    bootstrap: str,
    topic: str,
    *,
    partitions: int = 3,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
    admin_config: Mapping[str, str | int | float | bool] | None = None,
) -> bool:
    """Create ``topic`` if the cluster lacks it; ``True`` when this call created it."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic  # the admin module re-exports it without __all__

    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": client_logger("kafka")}
    admin = AdminClient({**config, **(admin_config or {})})
    metadata = admin.list_topics(timeout=timeout_s)
    existing = metadata.topics.get(topic)
    if existing is not None and existing.error is None:
        return False
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)],
        operation_timeout=timeout_s,
        request_timeout=timeout_s,
    )
    try:
        futures[topic].result(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return False
        raise
    return True


__all__ = [
    "POWER_KW",
    "SESSION_KWH",
    "Connector",
    "JsonLinesProducer",
    "ProducerLike",
    "SimulationConfig",
    "SimulationSummary",
    "Station",
    "build_fleet",
    "ensure_topic",
    "generate_events",
    "producer_settings",
    "resolve_start",
    "run_simulation",
    "station_events",
    "station_id_for",
]
