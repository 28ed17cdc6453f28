"""Acknowledged Kafka delivery for asyncio code: ``await publisher.publish(...)`` returns only once
the broker has acknowledged the record (``acks=all``, idempotent producer), or raises
:class:`DeliveryError`.  A charger is answered after that, so what it was told is stored is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ..logs import client_logger
from ..render import Credential
from ..spec import KafkaSpec

_log = logging.getLogger(__name__)

#: Settings the gateway always uses; a tenant's Kafka settings cannot weaken them.
PRODUCER_DEFAULTS: Final[Mapping[str, Any]] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 2,
    "compression.type": "lz4",
}


class DeliveryError(Exception):
    """The record was not acknowledged (broker down, timeout, queue full)."""


def producer_config(kafka: KafkaSpec, credential: Credential | None = None) -> dict[str, Any]:
    """The client settings of a tenant's Kafka (``spec.kafka``), SASL credentials included."""
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(kafka.bootstrap_servers),
        "security.protocol": kafka.security.protocol,
    }
    if kafka.security.sasl_mechanism is not None and credential is not None:
        conf["sasl.mechanism"] = kafka.security.sasl_mechanism
        conf["sasl.username"] = credential.username
        conf["sasl.password"] = credential.password
    return conf


class Publisher:
    """One idempotent producer, polled by its own thread; delivery reports resolve futures on
    the event loop that awaited them.

    The reports a ``poll`` (or ``flush``) served are handed to each loop in one callback, so a
    burst of acknowledgements wakes the loop once rather than once per record.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        delivery_timeout_s: float,
        observe: Callable[[float, bool], None] | None = None,
    ) -> None:
        sent = tuple(str(config[k]) for k in ("sasl.username", "sasl.password") if k in config)
        self._producer = Producer(
            {
                **config,
                **PRODUCER_DEFAULTS,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                # librdkafka's lines, rate-limited, and never with the SASL credentials it sent.
                "logger": client_logger("gateway-kafka", scrubbed=sent),
            }
        )
        self._observe = observe
        self._settled: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None], KafkaError | None]] = []
        self._settled_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        """Resolve, on their loops, the futures whose delivery reports came in."""
        with self._settled_lock:
            settled, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], KafkaError | None]]] = {}
        for loop, done, err in settled:
            by_loop.setdefault(loop, []).append((done, err))
        for loop, batch in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve_all, batch)

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        started = time.monotonic()

        def settle(err: KafkaError | None, _msg: Message) -> None:
            if self._observe is not None:
                self._observe(time.monotonic() - started, err is None)
            with self._settled_lock:
                self._settled.append((loop, done, err))

        try:
            self._producer.produce(topic, value=value, key=key, on_delivery=settle)
        except (BufferError, KafkaException) as err:
            if self._observe is not None:
                self._observe(time.monotonic() - started, False)
            raise DeliveryError(f"not queued for {topic}: {err}") from err
        await done

    def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; the number still undelivered."""
        left = int(self._producer.flush(timeout))
        self._hand_over()
        return left

    def close(self, timeout: float = 10.0) -> int:
        left = self.flush(timeout)
        self._stop.set()
        self._thread.join(timeout=2)
        self._hand_over()
        return left


def _resolve_all(batch: list[tuple[asyncio.Future[None], KafkaError | None]]) -> None:
    for done, err in batch:
        _resolve(done, err)


def _resolve(done: asyncio.Future[None], err: KafkaError | None) -> None:
    if done.done():
        return
    if err is None:
        done.set_result(None)
    else:
        done.set_exception(DeliveryError(str(err)))
