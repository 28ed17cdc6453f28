"""The tenants file, and the ``charging-analytics gateway`` process: probes, metrics, JSON logs
without credentials, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from ocpp.v16 import call as v16

from charging_analytics.gateway.config import ConfigError, load_tenants_file
from testbed.kafka import create_topic
from testbed.polling import Poll, wait_for
from testbed.process import free_port
from tests.e2e.gateway.support import basic, events, http_get, still_running

REPO = Path(__file__).resolve().parents[3]


def write_tenants(tmp_path: Path, bootstrap: str, topic: str, **overrides: object) -> Path:
    doc: dict[str, object] = {
        "state": {"bootstrapServers": [bootstrap], "topic": f"gw-state-{uuid.uuid4().hex[:8]}"},
        "heartbeatInterval": 120,
        "tenants": [
            {
                "tenant": "acme",
                "kafka": {"bootstrapServers": [bootstrap], "eventsTopic": topic},
                "credentialsFile": "acme-stations.yaml",
                "stations": [
                    {
                        "id": "ST-0001",
                        "connectors": [
                            {"id": 1, "standard": "IEC_62196_T2_COMBO"},
                            {"id": 2, "standard": "CHADEMO"},
                        ],
                    }
                ],
            }
        ],
        **overrides,
    }
    (tmp_path / "acme-stations.yaml").write_text("ST-0001: correct-horse-battery\n")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_tenants_file_resolves_registry_and_credentials(tmp_path: Path) -> None:
    config = load_tenants_file(write_tenants(tmp_path, "localhost:9092", "ocpp.acme.events"))
    tenant, station = config.station("acme", "ST-0001") or (None, None)
    assert tenant is not None
    assert station is not None
    assert (tenant.topic, dict(station.connector_types), config.heartbeat_interval) == (
        "ocpp.acme.events",
        {1: "CCS", 2: "CHAdeMO"},
        120,
    )
    assert station.password == "correct-horse-battery"
    assert "correct-horse" not in repr(config)  # never in a repr, hence never in a log line


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["tenants"][0]["stations"][0]["connectors"][0].update(standard="DOMESTIC_F"),
            "tenants.0.stations.0.connectors.0.standard",
        ),
        (lambda d: d["tenants"][0].update(tenant="Acme"), "tenants.0.tenant"),
        (lambda d: d["tenants"][0]["stations"][0].update(id="ST:1"), "tenants.0.stations.0.id"),
        (lambda d: d["tenants"][0].update(extra=1), "tenants.0.extra"),
        (lambda d: d["tenants"][0].update(credentialsFile="missing.yaml"), "missing.yaml"),
        (
            lambda d: d["tenants"][0]["stations"].append(
                {"id": "ST-0002", "connectors": [{"id": 1, "standard": "CCS"}]}
            ),
            "no password for station(s) ST-0002",
        ),
    ],
)
def test_bad_tenants_file_names_the_field(tmp_path: Path, mutate: object, message: str) -> None:
    path = write_tenants(tmp_path, "localhost:9092", "t")
    doc = yaml.safe_load(path.read_text())
    mutate(doc)  # type: ignore[operator]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_tenants_file(path)
    assert message in str(err.value)
    assert "correct-horse" not in str(err.value)


def test_gateway_process_serves_probes_metrics_and_drains_on_sigterm(
    kafka_broker: str, tmp_path: Path
) -> None:
    topic = f"ocpp.acme.{uuid.uuid4().hex[:8]}"
    create_topic(kafka_broker, topic)
    tenants = write_tenants(tmp_path, kafka_broker, topic)
    port, metrics_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}{os.pathsep}{REPO}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "charging_analytics.cli",
            "gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            str(metrics_port),
            "--tenants-file",
            str(tenants),
            "--log-format",
            "json",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: http_get(f"http://127.0.0.1:{metrics_port}/readyz")[0] == 200,
            90,
            "the gateway ready",
            poll=Poll(0.2),
            check=lambda: still_running(proc),
        )
        assert http_get(f"http://127.0.0.1:{metrics_port}/healthz")[0] == 200

        async def charger() -> None:
            import websockets
            from ocpp.v16 import ChargePoint

            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ocpp/acme/ST-0001",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=basic("ST-0001", "correct-horse-battery"),
            ) as ws:
                cp = ChargePoint("ST-0001", ws)
                task = asyncio.create_task(cp.start())
                boot = await cp.call(v16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                assert boot.interval == 120
                await cp.call(
                    v16.StatusNotification(connector_id=2, error_code="NoError", status="Available")
                )
                task.cancel()
            for bad in ("wrong", "correct-horse-battery-x"):
                with pytest.raises(websockets.InvalidStatus):
                    await websockets.connect(
                        f"ws://127.0.0.1:{port}/ocpp/acme/ST-0001",
                        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                        additional_headers=basic("ST-0001", bad),
                    )

        asyncio.run(charger())
        status, metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200
        assert 'ocpp_gateway_messages_total{action="StatusNotification",version="1.6"} 1.0' in metrics
        assert 'ocpp_gateway_rejected_handshakes_total{reason="bad_credentials"} 2.0' in metrics
        assert (
            'ocpp_gateway_events_published_total{event_type="StatusNotification",tenant="acme"} 1.0'
            in metrics
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logs = proc.stderr.read() if proc.stderr else ""
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert any(line.get("reason") == "bad_credentials" and line.get("status") == 401 for line in lines)
    assert any(line["message"] == "station connected" and line.get("station") == "ST-0001" for line in lines)
    assert "correct-horse" not in logs
    assert "Authorization" not in logs
    assert [e.connector_type for e in events(kafka_broker, topic)] == ["CHAdeMO"]
