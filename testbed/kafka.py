"""A real single-node Apache Kafka broker (KRaft, combined broker+controller) for tests.

Runs the jars ``scripts/provision.sh kafka`` fetched from Maven Central: ``kafka.tools.StorageTool
format`` then ``kafka.Kafka server.properties``, on random loopback ports, with its data and log
in a temporary directory.  Readiness is the broker showing up in a metadata response.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what confluent_kafka.admin re-exports

from .polling import STARTUP, wait_for
from .process import ManagedProcess, free_port, retry_on_port_conflict, run_checked
from .server import Server
from .tools import InfraError, java_binary, kafka_libs, kafka_version

_log = logging.getLogger(__name__)

JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
)


def _version_key(jar: Path) -> tuple[int, ...]:
    match = re.search(r"-(\d+(?:\.\d+)*)[^/]*\.jar$", jar.name)
    return tuple(int(x) for x in match.group(1).split(".")) if match else ()


def broker_classpath(libs: Path) -> tuple[str, str | None]:
    """The broker's classpath (explicit, so the order is defined) and a logging warning.

    Only the newest ``slf4j-api`` is kept: with 1.7 and 2.x side by side the JVM would pick one
    at random, and 1.7 cannot bind the 2.x ``slf4j-simple`` backend (the broker then logs
    nothing at all, which hides every startup error).
    """
    jars = sorted(libs.glob("*.jar"))
    apis = sorted((j for j in jars if j.name.startswith("slf4j-api-")), key=_version_key)
    jars = [j for j in jars if j not in apis[:-1]]
    warning = None
    backends = [j for j in jars if j.name.startswith("slf4j-simple-")]
    if apis and backends and _version_key(apis[-1])[:1] != _version_key(backends[0])[:1]:
        warning = (
            f"warning: broker logging is disabled: {apis[-1].name} cannot bind {backends[0].name}; "
            "provision a matching slf4j-api (scripts/provision.sh kafka)"
        )
    return os.pathsep.join(str(j) for j in jars), warning


def _client_conf(bootstrap: str, **extra: Any) -> dict[str, Any]:
    # librdkafka logs every refused connection to stderr; route it through logging instead.
    return {"bootstrap.servers": bootstrap, "logger": _log, **extra}


def random_cluster_id() -> str:
    """A Kafka ``Uuid`` string (URL-safe base64 of 16 random bytes) usable as cluster id."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


# --------------------------------------------------------------------------------------------
# Client helpers (work against any bootstrap string)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int | None = None

    def json(self) -> Any:
        if self.value is None:
            raise ValueError(f"record {self.topic}/{self.partition}@{self.offset} has no value")
        return json.loads(self.value)


def _headers(
    raw: Mapping[str, str | bytes | None] | Iterable[tuple[str, str | bytes | None]] | None,
) -> tuple[tuple[str, bytes | None], ...]:
    pairs = raw.items() if isinstance(raw, Mapping) else (raw or ())
    return tuple((k, v.encode() if isinstance(v, str) else v) for k, v in pairs)


def list_topics(bootstrap: str, timeout: float = 10.0) -> dict[str, int]:
    """User-visible topics (no ``__`` internal ones) to their partition count."""
    admin = AdminClient(_client_conf(bootstrap))
    metadata = admin.list_topics(timeout=timeout)
    return {name: len(meta.partitions) for name, meta in metadata.topics.items() if not name.startswith("__")}


def create_topic(
    bootstrap: str,
    topic: str,
    partitions: int = 1,
    *,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create ``topic`` and wait until every partition has a leader."""
    create_topics(bootstrap, [topic], partitions, config=config, timeout=timeout)


def create_topics(
    bootstrap: str,
    topics: Sequence[str],
    partitions: int = 1,
    *,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create ``topics`` in one request and wait until every partition of each has a leader."""
    admin = AdminClient(_client_conf(bootstrap))
    conf = dict(config or {})
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1, config=conf) for t in topics]
    futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
    for future in futures.values():
        future.result(timeout=timeout)

    def led() -> bool:
        if len(topics) == 1:  # a metadata request for one topic, not the whole cluster
            found = admin.list_topics(topic=topics[0], timeout=5).topics
        else:
            found = admin.list_topics(timeout=5).topics
        return all(
            (meta := found.get(t)) is not None
            and meta.error is None
            and len(meta.partitions) == partitions
            and all(p.leader >= 0 for p in meta.partitions.values())
            for t in topics
        )

    named = topics[0] if len(topics) == 1 else f"{len(topics)} topics"
    wait_for(led, timeout, f"leaders for all {partitions} partitions of {named}", poll=STARTUP)


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | str | None, bytes | str | Mapping[str, Any] | list[Any]]],
    *,
    timeout: float = 30.0,
) -> int:
    """Produce ``(key, value)`` pairs (dict/list values as JSON); wait for every ack."""
    producer = Producer(_client_conf(bootstrap, acks="all", **{"enable.idempotence": True}))
    errors: list[str] = []
    count = 0

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in messages:
        payload = json.dumps(value).encode() if isinstance(value, (Mapping, list)) else value
        producer.produce(topic, value=payload, key=key, on_delivery=on_delivery)
        producer.poll(0)
        count += 1
    remaining = producer.flush(timeout)
    if remaining:
        raise InfraError(f"{remaining} message(s) to {topic} not delivered within {timeout:.0f}s")
    if errors:
        raise InfraError(f"delivery to {topic} failed: {errors[:5]}")
    return count


def consume_all(
    bootstrap: str, topic: str, timeout: float = 15.0, *, min_messages: int = 0
) -> list[KafkaRecord]:
    """Every record in ``topic`` from the beginning, in partition then offset order.

    Reads each partition up to its end offset as of the call (and on until ``min_messages``
    records were seen); raises :class:`TimeoutError` if that takes longer than ``timeout``.
    No consumer group offsets are committed.
    """
    deadline = time.monotonic() + timeout
    consumer = Consumer(
        _client_conf(
            bootstrap,
            **{
                "group.id": f"cha-tests-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": True,
            },
        )
    )
    try:
        meta = consumer.list_topics(topic=topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            raise InfraError(f"topic {topic} not found: {None if meta is None else meta.error}")
        ends: dict[int, int] = {}
        starts: list[TopicPartition] = []
        for partition in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=max(deadline - time.monotonic(), 1.0)
            )
            ends[partition] = high
            starts.append(TopicPartition(topic, partition, low))
        consumer.assign(starts)
        positions = {tp.partition: tp.offset for tp in starts}
        records: list[KafkaRecord] = []
        while any(positions[p] < ends[p] for p in ends) or len(records) < min_messages:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"read {len(records)} record(s) of {topic} in {timeout:.0f}s; positions "
                    f"{positions}, end offsets {ends}, wanted at least {min_messages}"
                )
            msg = consumer.poll(min(left, 1.0))
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise InfraError(f"consuming {topic}: {err}")
            partition, offset = msg.partition(), msg.offset()
            if partition is None or offset is None:
                continue
            positions[partition] = offset + 1
            ts_type, ts = msg.timestamp()
            records.append(
                KafkaRecord(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=msg.key(),
                    value=msg.value(),
                    headers=_headers(msg.headers()),
                    timestamp_ms=ts if ts_type != 0 else None,
                )
            )
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


# --------------------------------------------------------------------------------------------
# The broker
# --------------------------------------------------------------------------------------------


@dataclass
class KafkaBroker(Server):
    """A throwaway single-node KRaft broker in ``workdir`` (created if ``None``)."""

    workdir_prefix = "cha-kafka-"
    start_timeout: float = 90.0
    broker_port: int = 0
    controller_port: int = 0
    startup_seconds: float | None = None
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "kafka.log"

    def log_files(self) -> list[Path]:
        return [self.log_path]

    def _properties(self, data_dir: Path) -> str:
        b, c = self.broker_port, self.controller_port
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{c}",
            "listeners": f"PLAINTEXT://127.0.0.1:{b},CONTROLLER://127.0.0.1:{c}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{b}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(data_dir),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "share.coordinator.state.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def start(self) -> KafkaBroker:
        libs = kafka_libs()
        java = java_binary()
        self.make_workdir()
        t0 = time.monotonic()
        classpath, logging_warning = broker_classpath(libs)
        if logging_warning:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(logging_warning + "\n")
        try:
            retry_on_port_conflict(lambda: self._format_and_start(java, classpath), self._reset)
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _format_and_start(self, java: Path, classpath: str) -> None:
        assert self.workdir is not None
        self.broker_port, self.controller_port = free_port(), free_port()
        config = self.workdir / "server.properties"
        config.write_text(self._properties(self.workdir / "data"), encoding="utf-8")
        env = {**os.environ, "LOG_DIR": str(self.workdir)}
        storage_format: list[str | os.PathLike[str]] = [
            java,
            "-Xmx256m",
            "-cp",
            classpath,
            "kafka.tools.StorageTool",
            "format",
        ]
        run_checked(
            "kafka storage format",
            [*storage_format, "-t", random_cluster_id(), "-c", config],
            self.log_path,
            timeout=120,
            env=env,
        )
        self._launch(java, classpath)

    def _launch(self, java: Path, classpath: str) -> None:
        """Start the broker process on the formatted data directory and wait until it serves."""
        assert self.workdir is not None
        config = self.workdir / "server.properties"
        env = {**os.environ, "LOG_DIR": str(self.workdir)}
        self._process = process = ManagedProcess(
            "kafka",
            [java, *JVM_OPTS, f"-Dkafka.logs.dir={self.workdir}", "-cp", classpath, "kafka.Kafka", config],
            self.log_path,
            env=env,
            stop_timeout=30,
        )
        process.start()
        admin = AdminClient(_client_conf(self.bootstrap, **{"socket.connection.setup.timeout.ms": 2000}))

        def ready() -> bool:
            return bool(admin.list_topics(timeout=2).brokers)

        wait_for(
            ready,
            self.start_timeout,
            f"Kafka {kafka_version()} at {self.bootstrap}",
            poll=STARTUP.starting_every(0.25),
            check=process.check_running,
        )

    def _reset(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir / "data", ignore_errors=True)

    def halt(self) -> None:
        """Stop the broker process but keep its data: :meth:`resume` brings the same broker back
        (same ports, topics and records), e.g. to test clients that ride out an outage."""
        if self._process is None:
            raise InfraError("the broker is not running")
        self._process.stop()
        self._process = None

    def resume(self) -> None:
        """Start the broker :meth:`halt` stopped, on the same ports and data."""
        if self._process is not None:
            raise InfraError("the broker is already running")
        classpath, _ = broker_classpath(kafka_libs())
        self._launch(java_binary(), classpath)


    # Convenience wrappers bound to this broker.
    def create_topic(self, topic: str, partitions: int = 1, **kwargs: Any) -> None:
        create_topic(self.bootstrap, topic, partitions, **kwargs)

    def list_topics(self) -> dict[str, int]:
        return list_topics(self.bootstrap)

    def consume_all(self, topic: str, timeout: float = 15.0, *, min_messages: int = 0) -> list[KafkaRecord]:
        return consume_all(self.bootstrap, topic, timeout, min_messages=min_messages)

    def produce(
        self,
        topic: str,
        messages: Iterable[tuple[bytes | str | None, bytes | str | Mapping[str, Any] | list[Any]]],
    ) -> int:
        return produce(self.bootstrap, topic, messages)
