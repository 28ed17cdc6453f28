"""The OCPP simulator: reproducibility, realism, faults and stalls, pacing, the CLI."""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging_analytics.events import FAULT_ERROR_CODES, ConnectorType, OcppEvent
from charging_analytics.simulator.cli import add_simulate_parser, cmd_simulate
from charging_analytics.simulator.simulate import (
    DC_TAPER_FACTOR,
    MAX_CONNECTORS_PER_STATION,
    METER_JITTER,
    POWER_KW,
    POWER_NOISE,
    SESSION_KWH,
    SimulationConfig,
    build_fleet,
    generate_events,
    run_simulation,
)

from .support import START, analyse, by_connector, by_session, check_stream_invariants


def events_of(config: SimulationConfig) -> list[OcppEvent]:
    return list(generate_events(config))


#: A large stream with frequent faults and stalls, for the statistical tests.  A 5-minute meter
#: interval keeps it to ~10 events per session, so 120k events hold a few thousand sessions.
STATS_CONFIG = SimulationConfig(
    seed=20250301,
    stations=40,
    start_time=START,
    meter_interval=timedelta(minutes=5),
    stall_time=timedelta(minutes=15),
    fault_probability=0.1,
    stall_probability=0.15,
    stall_resume_probability=0.5,
    max_events=120_000,
)


@cache
def stats_stream() -> tuple[OcppEvent, ...]:
    return tuple(generate_events(STATS_CONFIG))


def within_binomial_bound(hits: int, trials: int, p: float, sigmas: float = 5.0) -> bool:
    """``hits/trials`` is within ``sigmas`` standard deviations of ``p``."""
    assert trials > 0
    sd = math.sqrt(p * (1 - p) / trials)
    return abs(hits / trials - p) <= sigmas * sd + 1e-12


# --------------------------------------------------------------------------------------------
# Reproducibility
# --------------------------------------------------------------------------------------------


def test_same_seed_gives_an_identical_event_stream() -> None:
    config = SimulationConfig(seed=42, stations=8, start_time=START, max_events=5000)
    first = [e.to_json() for e in generate_events(config)]
    second = [e.to_json() for e in generate_events(config)]
    assert len(first) == 5000
    assert first == second


def test_different_seeds_give_different_streams() -> None:
    a = [e.to_json() for e in generate_events(SimulationConfig(seed=1, start_time=START, max_events=500))]
    b = [e.to_json() for e in generate_events(SimulationConfig(seed=2, start_time=START, max_events=500))]
    assert not set(a) & set(b)


def test_adding_stations_leaves_the_existing_stations_events_unchanged() -> None:
    day = timedelta(hours=12)
    small = events_of(SimulationConfig(seed=5, stations=3, start_time=START, duration=day))
    large = events_of(SimulationConfig(seed=5, stations=9, start_time=START, duration=day))
    first_three = {e.station_id for e in small}
    assert len(first_three) == 3
    assert [e for e in large if e.station_id in first_three] == small


def test_no_global_random_state_is_used() -> None:
    import random

    random.seed(1)
    first = events_of(SimulationConfig(seed=9, start_time=START, max_events=300))
    random.seed(2)
    random.random()
    second = events_of(SimulationConfig(seed=9, start_time=START, max_events=300))
    assert first == second


# --------------------------------------------------------------------------------------------
# Validity and ordering
# --------------------------------------------------------------------------------------------


def test_every_generated_event_validates_against_the_model_from_its_json() -> None:
    events = events_of(SimulationConfig(seed=3, stations=10, start_time=START, max_events=20_000))
    for event in events:
        assert OcppEvent.model_validate_json(event.to_json()) == event


def test_event_ids_are_unique_uuid4_hex() -> None:
    events = stats_stream()
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    for event_id in ids[:2000]:
        assert event_id[12] == "4"  # version nibble
        assert event_id[16] in "89ab"  # RFC 4122 variant


def test_stream_is_in_simulated_time_order_from_the_start_time() -> None:
    events = events_of(SimulationConfig(seed=4, stations=5, start_time=START, max_events=3000))
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert START <= times[0] < START + timedelta(seconds=5)


def test_start_time_defaults_to_now() -> None:
    before = datetime.now(UTC)
    first = next(generate_events(SimulationConfig(seed=1, max_events=1)))
    assert before - timedelta(milliseconds=1) <= first.occurred_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_stream_invariants_hold_for_a_large_stream() -> None:
    check_stream_invariants(stats_stream(), STATS_CONFIG)


def test_each_session_is_start_then_meter_values_then_stop_with_monotonic_energy_and_time() -> None:
    sessions = by_session(stats_stream())
    assert len(sessions) > 2000
    closed = 0
    for session_id, events in sessions.items():
        kinds = [e.event_type for e in events]
        assert kinds[0] == "StartTransaction", session_id
        assert all(k == "MeterValues" for k in kinds[1:-1]), session_id
        assert len(kinds) == 1 or kinds[-1] in ("MeterValues", "StopTransaction"), session_id
        closed += kinds[-1] == "StopTransaction"
        assert len({(e.station_id, e.connector_id) for e in events}) == 1
        assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
        energy = [e.energy_kwh for e in events]
        assert all(a is not None and b is not None and a <= b for a, b in itertools.pairwise(energy))
    # Only sessions still running when the stream was cut off are open: at most one per connector.
    connectors = sum(len(s.connectors) for s in build_fleet(STATS_CONFIG.seed, STATS_CONFIG.stations))
    assert len(sessions) - closed <= connectors


# --------------------------------------------------------------------------------------------
# Realism
# --------------------------------------------------------------------------------------------


def test_fleet_has_one_to_four_connectors_per_station_of_mixed_types() -> None:
    fleet = build_fleet(seed=11, stations=200)
    counts = Counter(len(s.connectors) for s in fleet)
    assert set(counts) == set(range(1, MAX_CONNECTORS_PER_STATION + 1))
    assert all([c.connector_id for c in s.connectors] == list(range(1, len(s.connectors) + 1)) for s in fleet)
    types = Counter(c.connector_type for s in fleet for c in s.connectors)
    assert set(types) == {"CCS", "CHAdeMO", "Type2"}
    assert any(len({c.connector_type for c in s.connectors}) > 1 for s in fleet)
    assert [s.station_id for s in fleet[:3]] == ["ST-0001", "ST-0002", "ST-0003"]


def test_events_carry_the_fleet_layout() -> None:
    config = SimulationConfig(seed=12, stations=6, start_time=START, duration=timedelta(hours=6))
    layout = {
        (s.station_id, c.connector_id): c.connector_type
        for s in build_fleet(config.seed, config.stations)
        for c in s.connectors
    }
    events = events_of(config)
    assert {(e.station_id, e.connector_id): e.connector_type for e in events} == layout


def test_power_and_energy_ranges_are_the_specified_ones() -> None:
    assert POWER_KW == {"CCS": (50.0, 150.0), "CHAdeMO": (25.0, 50.0), "Type2": (7.0, 22.0)}
    assert all(0 < low < high <= 100 for low, high in SESSION_KWH.values())


def test_power_between_meter_values_is_in_the_connector_types_range() -> None:
    """Energy grows by power x interval, power within the type's range (DC tapers near full)."""
    interval = STATS_CONFIG.meter_interval
    observed: dict[ConnectorType, list[float]] = {"CCS": [], "CHAdeMO": [], "Type2": []}
    for stream in by_connector(stats_stream()).values():
        status = "Available"
        prev: OcppEvent | None = None
        for cur in stream:
            if cur.status is not None:
                status = cur.status
                continue
            # A whole meter interval while charging (not the EV-full, stop, fault or stall ones).
            if (
                status == "Charging"
                and cur.event_type == "MeterValues"
                and prev is not None
                and prev.session_id == cur.session_id
                and interval * (1 - METER_JITTER) <= cur.occurred_at - prev.occurred_at
                and cur.occurred_at - prev.occurred_at <= interval * (1 + METER_JITTER)
            ):
                assert prev.energy_kwh is not None
                assert cur.energy_kwh is not None
                hours = (cur.occurred_at - prev.occurred_at) / timedelta(hours=1)
                observed[cur.connector_type].append((cur.energy_kwh - prev.energy_kwh) / hours)
            prev = cur
    for ctype, powers in observed.items():
        low, high = POWER_KW[ctype]
        floor = low * POWER_NOISE[0] * (DC_TAPER_FACTOR if ctype != "Type2" else 1)
        assert len(powers) > 100, ctype
        assert min(powers) >= floor - 0.1, ctype
        assert max(powers) <= high * POWER_NOISE[1] + 0.1, ctype
    assert sorted(observed["Type2"])[len(observed["Type2"]) // 2] < 22
    assert sorted(observed["CCS"])[len(observed["CCS"]) // 2] > 50


def test_completed_session_energy_is_last_minus_first_reading_and_plausible() -> None:
    stats = analyse(stats_stream(), STATS_CONFIG)
    checked = 0
    for events in by_session(stats_stream()).values():
        if events[-1].event_type != "StopTransaction":
            continue
        first, last = events[0].energy_kwh, events[-1].energy_kwh
        assert first is not None
        assert last is not None
        energy = last - first
        assert 0 < energy <= SESSION_KWH[events[0].connector_type][1] + 0.001
        checked += 1
    assert checked == stats.completed_sessions > 1000


def test_meter_register_is_absolute_and_continues_across_sessions() -> None:
    for stream in by_connector(stats_stream()).values():
        readings = [e.energy_kwh for e in stream if e.energy_kwh is not None]
        assert readings == sorted(readings)
        if readings:
            assert readings[0] > 0  # a used charger: the register does not start at zero


def test_the_lifecycle_statuses_all_appear() -> None:
    statuses = Counter(e.status for e in stats_stream() if e.status is not None)
    assert {"Available", "Preparing", "Charging", "SuspendedEV", "Finishing", "Faulted"} <= set(statuses)
    assert statuses["Preparing"] >= statuses["Charging"]


# --------------------------------------------------------------------------------------------
# Faults and stalls
# --------------------------------------------------------------------------------------------


def test_faults_occur_at_the_configured_probability_per_connector_cycle() -> None:
    stats = analyse(stats_stream(), STATS_CONFIG)
    assert stats.cycles > 2000
    assert within_binomial_bound(stats.faults, stats.cycles, STATS_CONFIG.fault_probability)
    # Both kinds: at plug-in (instead of a session) and interrupting a session.
    assert stats.idle_faults > 0
    assert stats.session_faults > 0


def test_faults_carry_real_error_codes_and_end_in_available() -> None:
    codes = analyse(stats_stream(), STATS_CONFIG).fault_codes
    assert codes
    assert set(codes) <= set(FAULT_ERROR_CODES)
    assert len(set(codes)) > 5
    for stream in by_connector(stats_stream()).values():
        statuses = [e.status for e in stream if e.status is not None]
        for i, status in enumerate(statuses[:-1]):
            if status == "Faulted":
                assert statuses[i + 1] == "Available"


def test_stalls_occur_at_the_configured_probability_per_session() -> None:
    stats = analyse(stats_stream(), STATS_CONFIG)
    unfaulted = stats.sessions - stats.session_faults
    assert within_binomial_bound(stats.stalled_sessions, unfaulted, STATS_CONFIG.stall_probability)
    # A stall ends with the connector resuming or stopping the transaction, at the configured odds.
    stalls = stats.stalls_resumed + stats.stalls_stopped
    assert stalls == stats.stalled_sessions
    assert within_binomial_bound(stats.stalls_resumed, stalls, STATS_CONFIG.stall_resume_probability)


def test_a_stall_is_silence_on_the_whole_connector_for_longer_than_the_stall_time() -> None:
    seen = 0
    for stream in by_connector(stats_stream()).values():
        for prev, cur in itertools.pairwise(stream):
            gap = cur.occurred_at - prev.occurred_at
            if (
                cur.session_id is not None
                and prev.session_id == cur.session_id
                and gap > STATS_CONFIG.stall_time
            ):
                seen += 1
                assert gap < STATS_CONFIG.stall_time * 2.5 + STATS_CONFIG.meter_interval
    assert seen > 50


def test_zero_probabilities_give_no_faults_and_no_stalls() -> None:
    config = replace(STATS_CONFIG, fault_probability=0.0, stall_probability=0.0, max_events=30_000)
    stats = analyse(events_of(config), config)
    assert stats.sessions > 300
    assert stats.faults == 0
    assert stats.stalled_sessions == 0


def test_probability_one_makes_every_cycle_fault_or_every_session_stall() -> None:
    faulty = replace(STATS_CONFIG, fault_probability=1.0, stall_probability=0.0, max_events=20_000)
    stats = analyse(events_of(faulty), faulty)
    still_open = stats.sessions - stats.completed_sessions  # cut off before their fault
    assert stats.cycles - still_open <= stats.faults <= stats.cycles
    assert stats.cycles > 100
    assert stats.completed_sessions > 100
    stally = replace(STATS_CONFIG, fault_probability=0.0, stall_probability=1.0, max_events=20_000)
    stats = analyse(events_of(stally), stally)
    # Every session that got far enough (to its stall point) stalled.
    assert stats.stalled_sessions >= stats.completed_sessions > 100


# --------------------------------------------------------------------------------------------
# Limits and configuration
# --------------------------------------------------------------------------------------------


def test_max_events_and_duration_end_the_stream() -> None:
    assert len(events_of(SimulationConfig(seed=1, start_time=START, max_events=123))) == 123
    assert events_of(SimulationConfig(seed=1, start_time=START, max_events=0)) == []
    hour = events_of(SimulationConfig(seed=1, start_time=START, duration=timedelta(hours=1)))
    assert hour
    assert hour[-1].occurred_at <= START + timedelta(hours=1)
    longer = events_of(SimulationConfig(seed=1, start_time=START, duration=timedelta(hours=2)))
    assert longer[: len(hour)] == hour
    assert len(longer) > len(hour)


@pytest.mark.parametrize(
    "changes",
    [
        {"stations": 0},
        {"fault_probability": -0.1},
        {"stall_probability": 1.5},
        {"stall_resume_probability": 2.0},
        {"meter_interval": timedelta(seconds=5)},
        {"stall_time": timedelta(seconds=60)},
        {"mean_idle": timedelta(0)},
        {"max_events": -1},
        {"start_time": datetime(2025, 1, 1)},
    ],
)
def test_config_rejects_impossible_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 -- each case has its own message
        SimulationConfig(**changes)


configs = st.builds(
    SimulationConfig,
    seed=st.integers(min_value=0, max_value=2**32),
    stations=st.integers(min_value=1, max_value=6),
    start_time=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
    ),
    meter_interval=st.integers(min_value=10, max_value=900).map(lambda s: timedelta(seconds=s)),
    fault_probability=st.floats(min_value=0, max_value=1),
    stall_probability=st.floats(min_value=0, max_value=1),
    stall_time=st.just(timedelta(minutes=20)),
    stall_resume_probability=st.floats(min_value=0, max_value=1),
    mean_idle=st.integers(min_value=1, max_value=180).map(lambda m: timedelta(minutes=m)),
    max_events=st.integers(min_value=0, max_value=1500),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_any_config_yields_a_valid_consistent_reproducible_stream(config: SimulationConfig) -> None:
    events = events_of(config)
    assert len(events) == config.max_events
    check_stream_invariants(events, config)
    for event in events:
        assert OcppEvent.model_validate_json(event.to_json()) == event
    stats = analyse(events, config)
    if config.fault_probability == 0:
        assert stats.faults == 0
    if config.stall_probability == 0:
        assert stats.stalled_sessions == 0
    assert events_of(config) == events


# --------------------------------------------------------------------------------------------
# run_simulation with an in-memory producer and a fake clock
# --------------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeProducer:
    """Records produce() calls; poll(t) advances the fake clock like a real wait would."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        produce_cost_s: float = 0.0,
        fail_every: int = 0,
        buffer_errors: int = 0,
    ) -> None:
        self.clock = clock
        self.produce_cost_s = produce_cost_s
        self.fail_every = fail_every
        self.buffer_errors = buffer_errors
        self.records: list[tuple[str, bytes, bytes, float]] = []
        self.pending: list[Callable[[Any, Any], None]] = []
        self.flushed = False

    def produce(
        self, topic: str, value: bytes, key: bytes, *, on_delivery: Callable[[Any, Any], None]
    ) -> None:
        if self.buffer_errors:
            self.buffer_errors -= 1
            raise BufferError("Local: Queue full")
        self.clock.now += self.produce_cost_s
        self.records.append((topic, value, key, self.clock.now))
        self.pending.append(on_delivery)

    def _serve(self) -> int:
        served, self.pending = self.pending, []
        for callback in served:
            n = len(self.records)
            failed = self.fail_every and n % self.fail_every == 0
            callback("KafkaError{code=MSG_TIMED_OUT}" if failed else None, None)
        return len(served)

    def poll(self, timeout: float = 0) -> int:
        self.clock.now += max(timeout, 0.0)
        return self._serve()

    def flush(self, timeout: float = -1) -> int:
        self.flushed = True
        self._serve()
        return 0


def test_run_simulation_limits_the_rate_and_stops_after_the_duration() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    config = SimulationConfig(stations=30, start_time=START)
    summary = run_simulation(
        "unused:9092", "ocpp", 100.0, 5.0, 7, config=config, producer=producer, progress=None, clock=clock
    )
    assert 499 <= summary.events_sent <= 501
    assert summary.events_sent == len(producer.records) == summary.delivered
    assert summary.ok
    assert producer.flushed
    sent_at = [t for *_, t in producer.records]
    # In any one-second window, at most rate (+1 for the window edge) events.
    for i, t in enumerate(sent_at):
        assert sum(1 for u in sent_at[i:] if u < t + 1.0) <= 101
    assert 4.9 <= summary.elapsed_s <= 5.0 + 1e-9


def test_run_simulation_catches_up_after_a_hiccup_but_only_in_a_short_burst() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    original = producer.produce

    def slow_once(topic: str, value: bytes, key: bytes, *, on_delivery: Callable[[Any, Any], None]) -> None:
        if len(producer.records) == 100:
            clock.now += 2.0  # the process froze for two seconds
        original(topic, value, key, on_delivery=on_delivery)

    producer.produce = slow_once  # type: ignore[method-assign]
    summary = run_simulation(
        "x:1",
        "ocpp",
        100.0,
        10.0,
        1,
        config=SimulationConfig(stations=30, start_time=START),
        producer=producer,
        progress=None,
        clock=clock,
    )
    sent_at = [t for *_, t in producer.records]
    burst = sum(1 for t in sent_at if t == sent_at[100])
    assert burst <= 100 * 0.1 + 2  # no more than 0.1 s of schedule at once
    assert summary.events_sent > 750  # but most of the lost time is not made up


def test_run_simulation_sends_the_generated_stream_keyed_by_station() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    config = SimulationConfig(stations=5, start_time=START)
    summary = run_simulation(
        "x:1",
        "topic-a",
        None,
        None,
        3,
        config=config,
        max_events=400,
        producer=producer,
        progress=None,
        clock=clock,
    )
    expected = [e.to_json() for e in generate_events(replace(config, seed=3, max_events=400))]
    assert [value.decode() for _, value, _, _ in producer.records] == expected
    for topic, value, key, _ in producer.records:
        assert topic == "topic-a"
        assert key.decode() == json.loads(value)["station_id"]
    assert summary.events_sent == 400
    assert sum(summary.events_by_type.values()) == 400
    assert summary.bytes_sent == sum(len(v) for _, v, _, _ in producer.records)
    assert summary.first_event_at is not None
    assert summary.first_event_at >= START


def test_run_simulation_speedup_holds_events_until_their_simulated_time() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    t0 = clock.now
    summary = run_simulation(
        "x:1",
        "ocpp",
        None,
        10.0,
        3,
        config=SimulationConfig(stations=20, start_time=START),
        speedup=60.0,
        producer=producer,
        progress=None,
        clock=clock,
    )
    assert summary.events_sent > 20
    for _, value, _, sent_at in producer.records:
        offset = (OcppEvent.from_json(value).occurred_at - START).total_seconds()
        assert sent_at - t0 >= offset / 60.0 - 0.001  # never ahead of the simulated clock
    assert summary.last_event_at is not None
    assert START + timedelta(minutes=9) <= summary.last_event_at <= START + timedelta(minutes=10)


def test_run_simulation_counts_delivery_errors_and_retries_a_full_queue() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock, fail_every=10, buffer_errors=3)
    summary = run_simulation(
        "x:1",
        "ocpp",
        None,
        None,
        1,
        config=SimulationConfig(start_time=START),
        max_events=100,
        producer=producer,
        progress=None,
        clock=clock,
    )
    assert summary.events_sent == 100
    assert summary.delivery_errors == 10
    assert summary.delivered == 90
    assert not summary.ok
    assert summary.error_samples
    assert "MSG_TIMED_OUT" in summary.error_samples[0]


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_is_rewritten_at_most_once_per_second() -> None:
    clock = FakeClock()
    producer = FakeProducer(clock)
    out = TtyBuffer()
    run_simulation(
        "x:1",
        "ocpp",
        50.0,
        10.0,
        1,
        config=SimulationConfig(stations=30, start_time=START),
        producer=producer,
        progress=out,
        clock=clock,
    )
    text = out.getvalue()
    updates = text.split("\r\x1b[K")[1:]
    assert 9 <= len(updates) <= 11  # ~one per second for 10 s, plus the final one
    assert text.count("\n") == 1
    assert text.endswith("\n")
    assert "events sent" in updates[-1]
    assert "delivery errors" in updates[-1]
    assert updates[-1].startswith(f"simulate: {len(producer.records)} events sent")


def test_run_simulation_rejects_negative_rate() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        run_simulation("x:1", "t", -1.0, None, 1, producer=FakeProducer(FakeClock()), progress=None)


# --------------------------------------------------------------------------------------------
# The CLI
# --------------------------------------------------------------------------------------------


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="charging-analytics")
    add_simulate_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["simulate", *argv])


def test_dry_run_prints_the_same_json_lines_as_the_generator(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(
        [
            "--dry-run",
            "--rate",
            "0",
            "--speedup",
            "0",
            "--max-events",
            "250",
            "--seed",
            "17",
            "--stations",
            "4",
            "--fault-probability",
            "0.3",
            "--stall-probability",
            "0.2",
            "--start-time",
            "2025-03-01T06:00:00.000Z",
        ]
    )
    assert args.func is cmd_simulate
    assert cmd_simulate(args) == 0
    out, err = capsys.readouterr()
    config = SimulationConfig(
        seed=17, stations=4, start_time=START, fault_probability=0.3, stall_probability=0.2, max_events=250
    )
    assert out.splitlines() == [e.to_json() for e in generate_events(config)]
    assert "seed 17" in err
    assert "sent 250 events" in err


def test_cli_without_seed_picks_one_and_reports_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_simulate(parse(["--dry-run", "--rate", "0", "--speedup", "0", "--max-events", "3"])) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 3
    assert "simulate: seed " in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--fault-probability", "1.5"],
        ["--stall-probability", "-0.1"],
        ["--rate", "-5"],
        ["--stations", "0"],
        ["--start-time", "2025-03-01T06:00:00Z"],
        ["-X", "novalue"],
    ],
)
def test_cli_rejects_bad_options(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv)
    assert exc.value.code == 2


def test_cli_reports_an_impossible_fleet_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = parse(["--dry-run", "--meter-interval", "600", "--stall-time", "300"])
    assert cmd_simulate(args) == 2
    assert "stall_time" in capsys.readouterr().err
