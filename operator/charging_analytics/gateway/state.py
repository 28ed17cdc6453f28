"""Gateway state in a compacted Kafka topic, so that replicas > 1 and restarts see the same
transactions (OCPP 2.0.1 sends the EVSE only in a transaction's first event) and reported
connector types.

Every replica reads the whole topic into memory and keeps reading; a write is acknowledged by
Kafka before the message that caused it is answered.  When a station connects, the replica
catches up to the topic's end first: whatever another replica wrote for that station before the
reconnect is then visible.  Keys are ``<tenant>/<station>/<kind>/<id>``; values are JSON.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what confluent_kafka.admin re-exports

from .config import StateSpec
from .delivery import Publisher

_log = logging.getLogger(__name__)


class StateUnavailable(Exception):
    """The state topic could not be created or read in time (Kafka down or unreachable)."""


class StateStore:
    def __init__(self, spec: StateSpec, publisher: Publisher) -> None:
        self._spec = spec
        self._publisher = publisher
        self._data: dict[str, Any] = {}
        self._positions: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bootstrap = ",".join(spec.bootstrap_servers)
        self._consumer: Consumer | None = None
        self._offsets: Consumer | None = None
        self._thread: threading.Thread | None = None
        #: The end-offset query the next :meth:`catch_up` callers share, and the task running them.
        self._next_ends: asyncio.Future[dict[int, int]] | None = None
        self._querying: asyncio.Future[None] | None = None

    @property
    def topic(self) -> str:
        return self._spec.topic

    def ensure_topic(self, timeout: float) -> None:
        conf: dict[str, Any] = {"bootstrap.servers": self._bootstrap, "logger": _log}
        admin = AdminClient(conf)
        topic = NewTopic(
            self.topic,
            num_partitions=self._spec.partitions,
            replication_factor=-1,  # the broker's default
            config={"cleanup.policy": "compact"},
        )
        future = admin.create_topics([topic], operation_timeout=timeout, request_timeout=timeout)[self.topic]
        try:
            future.result(timeout=timeout)
        except KafkaException as err:
            if err.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise StateUnavailable(f"cannot create gateway state topic {self.topic}: {err}") from None
        except concurrent.futures.TimeoutError:
            raise StateUnavailable(
                f"Kafka did not answer within {timeout:.0f}s (creating {self.topic})"
            ) from None

    def start(self, timeout: float = 30.0, abort: threading.Event | None = None) -> None:
        """Create the topic if needed, start following it, and wait until caught up.

        Bounded: every Kafka call gets at most the time left of ``timeout``; on failure (or when
        ``abort`` is set) everything started is torn down again and :class:`StateUnavailable` is
        raised, so the caller may simply call ``start`` again later.
        """
        deadline = time.monotonic() + timeout
        abort = abort or threading.Event()

        def left() -> float:
            remaining = deadline - time.monotonic()
            if abort.is_set():
                raise StateUnavailable("start-up aborted")
            if remaining <= 0:
                raise StateUnavailable(f"gateway state topic {self.topic} not read within {timeout:.0f}s")
            return remaining

        try:
            self.ensure_topic(left())
            self._assign(left)
            self._thread = threading.Thread(target=self._follow, name="gateway-state", daemon=True)
            self._thread.start()
            ends: dict[int, int] | None = None
            while ends is None or not self._caught_up(ends):
                if ends is None:
                    try:
                        ends = self._end_offsets(min(5.0, left()))
                    except KafkaException as err:  # a new topic's leaders may not be known yet
                        _log.info("gateway state topic offsets: %s", err)
                abort.wait(min(0.05, left()))
        except BaseException:
            self.close()
            raise

    def _assign(self, left: Callable[[], float]) -> None:
        """The follower's consumer, assigned every partition from the beginning, and the client
        for watermark queries (the follower thread owns its consumer)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"cha-gateway-state-{uuid.uuid4().hex}",  # never committed
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "logger": _log,
            }
        )
        self._consumer = consumer
        try:
            meta = consumer.list_topics(self.topic, timeout=left()).topics[self.topic]
        except KafkaException as err:
            raise StateUnavailable(f"cannot read gateway state topic {self.topic}: {err}") from None
        if meta.error is not None or not meta.partitions:
            raise StateUnavailable(f"gateway state topic {self.topic}: {meta.error or 'no partitions'}")
        partitions = sorted(meta.partitions)
        consumer.assign([TopicPartition(self.topic, p, -2) for p in partitions])  # -2: beginning
        self._positions = dict.fromkeys(partitions, 0)
        self._offsets = Consumer(
            {"bootstrap.servers": self._bootstrap, "group.id": "cha-gateway-offsets", "logger": _log}
        )

    def _follow(self) -> None:
        consumer, stop = self._consumer, self._stop  # close() replaces both
        assert consumer is not None
        while not stop.is_set():
            msg = consumer.poll(0.1)
            if msg is None:
                continue
            if msg.error() is not None:
                _log.warning("gateway state topic: %s", msg.error())
                continue
            key, partition, offset = msg.key(), msg.partition(), msg.offset()
            if key is None or partition is None or offset is None:
                continue
            value = msg.value()
            with self._lock:
                if value is None:
                    self._data.pop(key.decode(), None)
                else:
                    self._data[key.decode()] = json.loads(value)
                self._positions[partition] = offset + 1

    def _end_offsets(self, timeout: float = 5.0) -> dict[int, int]:
        assert self._offsets is not None
        offsets = self._offsets
        return {
            p: offsets.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout, cached=False)[1]
            for p in self._positions
        }

    def _caught_up(self, ends: dict[int, int]) -> bool:
        with self._lock:
            return all(self._positions.get(p, 0) >= end for p, end in ends.items())

    async def catch_up(self, limit_s: float = 10.0) -> None:
        """Wait until everything written to the topic before this call has been read."""
        ends = await self._fresh_end_offsets()
        deadline = time.monotonic() + limit_s
        while not self._caught_up(ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway state topic {self.topic} lags")
            await asyncio.sleep(0.01)

    async def _fresh_end_offsets(self) -> dict[int, int]:
        """The topic's end offsets, read by a query that started after this call began.

        Callers at the same time (a burst of reconnecting stations) share one query: each
        waits for the next query to start, not for one already under way, so what it gets is
        no older than its call. One query at a time also keeps the watermark client to one
        thread, and a burst from occupying the event loop's default executor.
        """
        loop = asyncio.get_running_loop()
        if self._next_ends is None or self._next_ends.get_loop() is not loop:
            self._next_ends = loop.create_future()
            # Retrieved here, so a failure nobody waits for any more is not reported as lost.
            self._next_ends.add_done_callback(lambda f: f.cancelled() or f.exception())
            if self._querying is None or self._querying.done() or self._querying.get_loop() is not loop:
                self._querying = asyncio.ensure_future(self._query_ends())
        return await asyncio.shield(self._next_ends)

    async def _query_ends(self) -> None:
        while self._next_ends is not None:
            waiting, self._next_ends = self._next_ends, None
            try:
                ends = await asyncio.to_thread(self._end_offsets)
            except asyncio.CancelledError:
                for pending in (waiting, self._next_ends):
                    if pending is not None:
                        pending.cancel()
                self._next_ends = None
                raise
            except Exception as err:  # handed to every caller that shares this query
                waiting.set_exception(err)
            else:
                waiting.set_result(ends)

    def get(self, key: str) -> Any:
        with self._lock:
            return self._data.get(key)

    async def put(self, key: str, value: Any) -> None:
        """Store ``value`` (JSON) under ``key``; returns once Kafka acknowledged it."""
        await self._publisher.publish(self.topic, key.encode(), json.dumps(value).encode())
        with self._lock:
            self._data[key] = value

    def close(self) -> None:
        """Stop following and close the clients; ``start`` may be called again afterwards."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for client in (self._consumer, self._offsets):
            if client is not None:
                client.close()
        self._thread = self._consumer = self._offsets = None
        self._stop = threading.Event()
        with self._lock:
            self._data.clear()
            self._positions = {}
