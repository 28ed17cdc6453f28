"""Start-up while Kafka is unavailable: the gateway is alive but not ready (``/readyz`` 503 with
the reason), SIGTERM ends it (exit 0) in the middle of an attempt without waiting for it, each
attempt is bounded and retried, and once Kafka answers it becomes ready by itself and serves
charge points."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from ocpp.v16 import call as v16

from charging_analytics.gateway.server import Gateway
from testbed.polling import Poll, wait_for, wait_for_async
from testbed.process import free_port
from tests.e2e.gateway.support import (
    call_accepted,
    charge_point,
    events,
    gateway_config,
    http_get,
    still_running,
    tenant,
)
from tests.e2e.gateway.test_config_and_cli import write_tenants

REPO = Path(__file__).resolve().parents[3]


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers: a hung broker."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_sigterm_stops_a_gateway_waiting_for_a_hung_kafka_at_once(tmp_path: Path) -> None:
    """The attempt may take 120 s; the process must end well before that, with exit 0."""
    with black_hole() as hung:
        tenants = write_tenants(tmp_path, hung, "ocpp.acme.events")
        metrics_port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}{os.pathsep}{REPO}"}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "charging_analytics.cli",
                "gateway",
                "--host=127.0.0.1",
                f"--port={free_port()}",
                f"--metrics-port={metrics_port}",
                f"--tenants-file={tenants}",
                "--startup-timeout=120",
            ],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def not_ready() -> tuple[int, str] | None:
                answer = http_get(f"http://127.0.0.1:{metrics_port}/readyz")
                return answer if answer[0] == 503 else None

            # up, not ready: inside its first attempt on the hung broker
            _, body = wait_for(
                not_ready, 90, "a readiness answer 503", poll=Poll(0.2), check=lambda: still_running(proc)
            )
            assert "state topic not read yet" in body
            assert http_get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200  # alive, not ready
            time.sleep(1)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0  # the 120 s attempt was abandoned, not waited for
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        logs = proc.stderr.read() if proc.stderr else ""
        assert "stopped during start-up" in logs


@contextlib.asynccontextmanager
async def switchable_proxy(port: int, target: str) -> AsyncIterator[asyncio.Event]:
    """``127.0.0.1:port`` refuses connections until the yielded event is set, then forwards to
    ``target`` (Kafka's metadata then sends the clients to the broker itself)."""
    host, target_port = target.rsplit(":", 1)
    on = asyncio.Event()
    servers: list[asyncio.Server] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def listen_when_on() -> None:
        await on.wait()
        servers.append(await asyncio.start_server(forward, "127.0.0.1", port))

    task = asyncio.create_task(listen_when_on())
    try:
        yield on
    finally:
        task.cancel()
        for server in servers:
            server.close()


def test_a_gateway_started_before_kafka_becomes_ready_by_itself(kafka_broker: str) -> None:
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})
    port = free_port()
    config = gateway_config(f"127.0.0.1:{port}", acme, state_topic=f"gw-state-{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        async with switchable_proxy(port, kafka_broker) as kafka_on:
            gateway = Gateway(config)
            starting = asyncio.create_task(gateway.start("127.0.0.1", 0, state_timeout=2, retry_max=1))

            def waiting_for_the_broker() -> str | None:
                assert not starting.done()
                reported = gateway.not_ready
                return reported if "state topic" in reported and "not read yet" not in reported else None

            await wait_for_async(waiting_for_the_broker, 30, "the state topic reported unreachable")
            assert not gateway.ready
            kafka_on.set()
            await asyncio.wait_for(starting, 60)
            try:
                assert gateway.ready
                assert gateway.not_ready == ""
                async with charge_point(gateway, "acme", "ST-1") as cp:
                    await call_accepted(
                        cp, v16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
                    )
            finally:
                await gateway.shutdown(drain_timeout=5)

    asyncio.run(scenario())
    assert [(e.station_id, e.status) for e in events(kafka_broker, acme.topic, min_messages=1)] == [
        ("ST-1", "Available")
    ]
