"""Kafka failures are told apart in the Stalled reason, with the client's own message, and the
client's logging goes through the operator's (rate-limited) logger instead of raw stderr."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

import pytest

from charging_analytics.logs import RateLimit, stable_text
from charging_analytics.operator import checks, metrics
from charging_analytics.operator.checks import CheckFailure, KafkaAdmins, check_kafka
from charging_analytics.spec import ChargingAnalyticsSpec
from testbed.kafka import create_topics, list_topics
from testbed.specs import tenant_spec


def _spec(server: str, topic: str = "ocpp.events") -> ChargingAnalyticsSpec:
    return tenant_spec("acme", bootstrap=server, events_topic=topic, alerts=None)


def _failure(server: str, topic: str = "ocpp.events") -> CheckFailure:
    with pytest.raises(CheckFailure) as err:
        asyncio.run(check_kafka(_spec(server, topic), None, 2.0, create=False))
    return err.value


def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    failure = _failure("kafka.does-not-exist.invalid:9092")
    assert failure.reason == "KafkaUnreachable"
    assert "Failed to resolve" in failure.message
    assert "Broker transport failure" not in failure.message


def test_a_refused_connection_is_reported_as_such() -> None:
    failure = _failure("127.0.0.1:1")
    assert failure.reason == "KafkaUnreachable"
    assert "Connection refused" in failure.message
    assert "ms in state" not in failure.message  # per-attempt detail would change every time


def test_a_missing_events_topic_is_its_own_reason(kafka_broker: str) -> None:
    failure = _failure(kafka_broker, "ocpp.never-created")
    assert failure.reason == "EventsTopicMissing"


def test_checks_of_many_resources_run_at_once_over_one_client(
    kafka_broker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of creates must not wait, one topic creation after another, behind one client:
    checks of resources on the same cluster are in flight together, over one admin client."""
    at_once = 4
    meeting = threading.Barrier(at_once, timeout=30)  # broken unless all four are inside at once
    original = checks._topics_on

    def together(*args: Any) -> list[str]:
        meeting.wait()
        return original(*args)

    monkeypatch.setattr(checks, "_topics_on", together)
    run = uuid.uuid4().hex[:8]
    specs = [
        tenant_spec(f"t{i}_{run}", bootstrap=kafka_broker, events_topic=f"ocpp.{run}.events")
        for i in range(at_once)
    ]
    create_topics(kafka_broker, [f"ocpp.{run}.events"])
    admins = KafkaAdmins()
    clients = metrics.KAFKA_CLIENTS._value.get()

    async def all_checks() -> list[list[str]]:
        return await asyncio.gather(*(check_kafka(s, None, 10.0, admins=admins) for s in specs))

    created = asyncio.run(all_checks())
    assert metrics.KAFKA_CLIENTS._value.get() == clients + 1
    alerts = [s.alerts.sinks.kafka.topic for s in specs if s.alerts.sinks.kafka is not None]
    assert created == [[topic] for topic in alerts]
    assert set(alerts) <= set(list_topics(kafka_broker))


def test_client_log_lines_go_through_the_operator_logger_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="charging_analytics.clients.kafka"):
        _failure("127.0.0.1:2")  # a broker no other test uses: the rate limit is process-wide
        _failure("127.0.0.1:2")
    lines = [r for r in caplog.records if r.name == "charging_analytics.clients.kafka"]
    assert lines, "librdkafka's log lines must reach the operator's logger"
    distinct = {stable_text(r.getMessage()) for r in lines}
    assert len(lines) == len(distinct)  # each distinct message once, not once per retry


def test_rate_limit_passes_the_first_and_counts_the_held_back() -> None:
    limit = RateLimit(interval=0.0)
    record = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "Connect failed (after 3ms in state CONNECT)", None, None
    )
    assert limit.filter(record)
    held = RateLimit(interval=3600.0)
    assert held.filter(record)
    again = logging.LogRecord(
        "x", logging.ERROR, __file__, 1, "Connect failed (after 7ms in state CONNECT)", None, None
    )
    assert not held.filter(again)
