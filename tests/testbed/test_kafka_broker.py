"""The Kafka broker is real: topics are created explicitly (no auto-creation, as in production),
JSON events produced with keys come back intact and in per-key order, and the helpers fail
loudly instead of returning partial data.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from testbed.kafka import KafkaBroker, consume_all, create_topic, list_topics, produce
from testbed.tools import InfraError


def topic_name(hint: str) -> str:
    return f"{hint}.{uuid.uuid4().hex[:8]}"


def test_json_events_round_trip_in_per_key_order(kafka_broker: str) -> None:
    topic = topic_name("ocpp.events")
    create_topic(kafka_broker, topic, partitions=3)
    assert list_topics(kafka_broker)[topic] == 3
    events: list[dict[str, Any]] = [
        {"station_id": f"st-{i % 4}", "seq": i, "action": "MeterValues", "energy_wh": 1000.5 + i}
        for i in range(40)
    ]
    produced = produce(kafka_broker, topic, [(e["station_id"], e) for e in events])
    assert produced == len(events)

    records = consume_all(kafka_broker, topic, timeout=20)
    assert sorted((r.json() for r in records), key=lambda e: e["seq"]) == events
    assert {r.partition for r in records} <= {0, 1, 2}
    by_key: dict[bytes, list[int]] = {}
    for record in records:
        assert record.key is not None
        by_key.setdefault(record.key, []).append(record.json()["seq"])
    # Each station's events sit in one partition in the order they were produced.
    assert by_key.keys() == {f"st-{i}".encode() for i in range(4)}
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), key
        assert len({r.partition for r in records if r.key == key}) == 1


def test_topics_are_not_auto_created(kafka_broker: str) -> None:
    topic = topic_name("missing")
    with pytest.raises(InfraError, match="not found"):
        consume_all(kafka_broker, topic, timeout=5)
    assert topic not in list_topics(kafka_broker)


def test_consume_all_times_out_when_too_few_records(kafka_broker: str) -> None:
    topic = topic_name("short")
    create_topic(kafka_broker, topic)
    produce(kafka_broker, topic, [(None, {"n": 1})])
    with pytest.raises(TimeoutError, match="read 1 record"):
        consume_all(kafka_broker, topic, timeout=2, min_messages=2)


def test_broker_reports_one_node_cluster(kafka_broker: str) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_broker})
    cluster = admin.describe_cluster().result(timeout=10)
    assert [node.port for node in cluster.nodes] == [int(kafka_broker.rsplit(":", 1)[1])]
    assert cluster.cluster_id


@pytest.mark.kafka
def test_broker_stops_cleanly_and_removes_its_directory() -> None:
    broker = KafkaBroker().start()
    (pid,) = broker.pids
    workdir = broker.workdir
    assert workdir is not None
    create_topic(broker.bootstrap, "lifecycle")
    broker.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # no process left in its group (children included)
    assert not workdir.exists()
