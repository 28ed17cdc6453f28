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
from charging_analytics.render import Credentials
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


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_admin_client_unused_for_the_idle_time_is_closed_and_the_next_check_opens_one(
    kafka_broker: str,
) -> None:
    """A Ready fleet's passes use no Kafka client, and an open one costs threads that wake on
    their own: it is closed once idle, and a later check connects again."""
    run = uuid.uuid4().hex[:8]
    spec = tenant_spec(f"idle_{run}", bootstrap=kafka_broker, events_topic=f"ocpp.{run}.events", alerts=None)
    create_topics(kafka_broker, [f"ocpp.{run}.events"])
    clock = _Clock()
    admins = KafkaAdmins(idle_seconds=60, clock=clock)
    opened = metrics.KAFKA_CLIENTS._value.get()

    asyncio.run(check_kafka(spec, None, 10.0, create=False, admins=admins))
    assert len(admins) == 1
    clock.now += 59
    assert not admins.idle()
    assert admins.close_idle() == 0
    asyncio.run(check_kafka(spec, None, 10.0, create=False, admins=admins))  # used again: kept
    clock.now += 59
    assert admins.close_idle() == 0
    assert metrics.KAFKA_CLIENTS._value.get() == opened + 1

    clock.now += 2
    assert admins.idle()
    assert admins.close_idle() == 1
    assert len(admins) == 0
    assert not admins.idle()
    asyncio.run(check_kafka(spec, None, 10.0, create=False, admins=admins))
    assert metrics.KAFKA_CLIENTS._value.get() == opened + 2


def test_a_client_in_use_is_not_closed_however_long_its_check_takes(kafka_broker: str) -> None:
    clock = _Clock()
    admins = KafkaAdmins(idle_seconds=60, clock=clock)
    with admins.client(_spec(kafka_broker), None, 10.0, None) as (admin, _):
        clock.now += 3600
        assert not admins.idle()
        assert admins.close_idle() == 0
        assert admin.list_topics(timeout=10).topics is not None  # still a working client
    assert len(admins) == 1
    clock.now += 61
    assert admins.close_idle() == 1


def test_a_pass_whose_checks_are_cached_closes_the_idle_client(kafka_broker: str) -> None:
    run = uuid.uuid4().hex[:8]
    spec = tenant_spec(f"pass_{run}", bootstrap=kafka_broker, events_topic=f"ocpp.{run}.events", alerts=None)
    create_topics(kafka_broker, [f"ocpp.{run}.events"])
    clock = _Clock()
    prechecks = checks.Prechecks(kafka=True, postgres=False, timeout=10.0)
    prechecks.admins = KafkaAdmins(idle_seconds=60, clock=clock)
    asyncio.run(prechecks.run("ns/a", spec, Credentials(), applying=False))
    assert len(prechecks.admins) == 1
    asyncio.run(prechecks.run("ns/a", spec, Credentials(), applying=False))  # cached, not yet idle
    assert len(prechecks.admins) == 1
    clock.now += 61
    checks_before = metrics.KAFKA_CHECKS._value.get()
    asyncio.run(prechecks.run("ns/a", spec, Credentials(), applying=False))
    assert len(prechecks.admins) == 0
    assert metrics.KAFKA_CHECKS._value.get() == checks_before  # the pass itself checked nothing
