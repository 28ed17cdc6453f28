"""The simulator against a real Kafka broker: produce with run_simulation, consume, validate."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import replace

import pytest

from charging_analytics.events import OcppEvent
from charging_analytics.simulator.simulate import (
    SimulationConfig,
    ensure_topic,
    generate_events,
    run_simulation,
)
from testbed.kafka import consume_all

from .support import START

pytestmark = pytest.mark.kafka

N_EVENTS = 3000
PARTITIONS = 3


def consume(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0
) -> list[tuple[int, bytes, bytes]]:
    """(partition, key, value) of every record, in partition order, once ``expected`` arrived."""
    out = []
    for record in consume_all(bootstrap, topic, timeout_s, min_messages=expected):
        assert record.key is not None
        assert record.value is not None
        out.append((record.partition, record.key, record.value))
    return out


def test_run_simulation_round_trips_valid_events_through_kafka(kafka_broker: str) -> None:
    topic = f"ocpp-sim-{uuid.uuid4().hex[:10]}"
    assert ensure_topic(kafka_broker, topic, partitions=PARTITIONS) is True
    assert ensure_topic(kafka_broker, topic, partitions=PARTITIONS) is False  # idempotent

    config = SimulationConfig(stations=25, start_time=START, fault_probability=0.1, stall_probability=0.1)
    summary = run_simulation(
        kafka_broker,
        topic,
        rate_per_s=None,
        duration_s=120.0,
        seed=2024,
        config=config,
        max_events=N_EVENTS,
        progress=None,
    )
    assert summary.events_sent == N_EVENTS
    assert summary.delivered == N_EVENTS
    assert summary.ok, summary.error_samples

    records = consume(kafka_broker, topic, N_EVENTS)
    assert len(records) == N_EVENTS

    events = [OcppEvent.from_json(value) for _, _, value in records]  # every one validates
    expected = list(generate_events(replace(config, seed=2024, max_events=N_EVENTS)))
    assert sorted(e.to_json() for e in events) == sorted(e.to_json() for e in expected)

    # Keyed by station: one station, one partition, and its events in the order produced.
    partitions_of: dict[str, set[int]] = defaultdict(set)
    consumed_by_station: dict[str, list[str]] = defaultdict(list)
    for (partition, key, _), event in zip(records, events, strict=True):
        assert key.decode() == event.station_id
        partitions_of[event.station_id].add(partition)
        consumed_by_station[event.station_id].append(event.event_id)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len({p for ps in partitions_of.values() for p in ps}) > 1  # spread over partitions
    produced_by_station: dict[str, list[str]] = defaultdict(list)
    for event in expected:
        produced_by_station[event.station_id].append(event.event_id)
    assert consumed_by_station == produced_by_station


def test_run_simulation_reports_delivery_failures_for_a_missing_topic(kafka_broker: str) -> None:
    """Auto-creation is off on the test broker: every record fails, and the summary says so."""
    summary = run_simulation(
        kafka_broker,
        f"ocpp-missing-{uuid.uuid4().hex[:10]}",
        rate_per_s=None,
        duration_s=60.0,
        seed=1,
        config=SimulationConfig(start_time=START),
        max_events=20,
        producer_config={"message.timeout.ms": 3000},
        progress=None,
        flush_timeout_s=20.0,
    )
    assert summary.events_sent == 20
    assert summary.delivery_errors == 20
    assert not summary.ok
    assert summary.error_samples


def test_cli_creates_the_topic_and_produces_the_requested_events(
    kafka_broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from charging_analytics.simulator.cli import add_simulate_parser, cmd_simulate

    topic = f"ocpp-cli-{uuid.uuid4().hex[:10]}"
    parser = argparse.ArgumentParser()
    add_simulate_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "simulate",
            "--bootstrap-servers",
            kafka_broker,
            "--topic",
            topic,
            "--create-topic",
            "--partitions",
            "2",
            "--rate",
            "0",
            "--speedup",
            "0",
            "--max-events",
            "50",
            "--seed",
            "3",
            "--start-time",
            "2025-03-01T06:00:00.000Z",
        ]
    )
    assert cmd_simulate(args) == 0
    err = capsys.readouterr().err
    assert f"topic {topic} created" in err
    assert "delivered 50" in err
    records = consume(kafka_broker, topic, 50)
    assert len(records) == 50
    assert {p for p, _, _ in records} <= {0, 1}
    for _, _, value in records:
        OcppEvent.from_json(value)
