"""The charge-point load generator against a real OCPP central system (the ``ocpp`` library).

The central system of :mod:`tests.e2e.chargepoints.central_system` validates every message against
the OCPP 1.6 / 2.0.1 JSON schemas and records what arrives, so these tests check what real
charge points would put on the wire: per-version messages, units, transaction ids, offline
replays, retries, credentials, and that a seed reproduces a run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from charging_analytics import cli
from charging_analytics.simulator.chargepoints import (
    FleetConfig,
    FleetSummary,
    OfflineConfig,
    fleet_profiles,
    run_fleet,
    station_script,
)
from charging_analytics.simulator.chargepoints.script import DISCONNECT, RECONNECT, StationProfile
from charging_analytics.simulator.simulate import SimulationConfig, station_events
from tests.e2e.chargepoints.central_system import CentralSystem, Received, Recorder, utc

START = datetime(2025, 3, 1, tzinfo=UTC)
TENANT = "acme"


def sim_config(seed: int = 11, stations: int = 4, hours: float = 4) -> SimulationConfig:
    return SimulationConfig(
        seed=seed,
        stations=stations,
        start_time=START,
        duration=timedelta(hours=hours),
        meter_interval=timedelta(minutes=5),
        stall_time=timedelta(minutes=15),
        mean_idle=timedelta(minutes=20),
        fault_probability=0.1,
    )


def passwords(stations: int) -> dict[str, str]:
    return {f"ST-{i:04d}": f"secret-{i}" for i in range(1, stations + 1)}


def drive(
    sim: SimulationConfig,
    *,
    offline: OfflineConfig | None = None,
    recorder: Recorder | None = None,
    creds: dict[str, str] | None = None,
    versions: tuple[Any, ...] = ("1.6", "2.0.1"),
) -> tuple[FleetSummary, Recorder]:
    """Run the fleet's whole simulated duration as fast as the central system answers."""
    known = passwords(sim.stations)

    async def main() -> tuple[FleetSummary, Recorder]:
        central = CentralSystem(TENANT, known, recorder)
        async with central.running():
            fleet = FleetConfig(
                gateway=central.url,
                tenant=TENANT,
                simulation=sim,
                versions=versions,
                passwords=creds if creds is not None else known,
                speedup=0,
                offline=offline or OfflineConfig(),
                heartbeat_interval_s=0,
            )
            summary = await asyncio.wait_for(run_fleet(fleet), timeout=120)
        return summary, central.recorder

    return asyncio.run(main())


def without_tx_ids(calls: list[Received]) -> list[tuple[str, dict[str, Any]]]:
    """The calls, minus the 1.6 transaction ids (the central system's numbering)."""
    return [(c.action, {k: v for k, v in c.payload.items() if k != "transaction_id"}) for c in calls]


def energy_wh(version: str, sampled: list[dict[str, Any]]) -> float:
    """The register in Wh, applying each version's unit rules (the gateway's job, done here)."""
    total = [
        s
        for s in sampled
        if s.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"
        and "phase" not in s
    ]
    assert len(total) == 1, sampled
    value = total[0]
    if version == "1.6":
        assert isinstance(value["value"], str)
        scale = 1000 if value.get("unit", "Wh") == "kWh" else 1
        return float(value["value"]) * scale
    assert isinstance(value["value"], int | float)
    unit = value.get("unit_of_measure", {})
    scale = (1000 if unit.get("unit", "Wh") == "kWh" else 1) * 10 ** unit.get("multiplier", 0)
    return float(value["value"]) * scale


def test_a_fleet_of_both_versions_plays_its_sessions_with_schema_valid_messages() -> None:
    summary, recorder = drive(sim_config())
    assert summary.ok, summary.describe()
    stations = recorder.by_station()
    assert sorted(stations) == ["ST-0001", "ST-0002", "ST-0003", "ST-0004"]
    versions = {sid: calls[0].version for sid, calls in stations.items()}
    assert versions == {"ST-0001": "1.6", "ST-0002": "2.0.1", "ST-0003": "1.6", "ST-0004": "2.0.1"}
    for calls in stations.values():
        assert calls[0].action == "BootNotification"
    actions_16 = {c.action for sid in ("ST-0001", "ST-0003") for c in stations[sid]}
    assert {
        "StatusNotification",
        "Authorize",
        "StartTransaction",
        "MeterValues",
        "StopTransaction",
    } <= actions_16
    actions_201 = {c.action for sid in ("ST-0002", "ST-0004") for c in stations[sid]}
    assert {"StatusNotification", "TransactionEvent"} <= actions_201
    assert summary.total_calls == len(recorder.calls)  # every call answered, none lost


def test_16_transactions_use_the_assigned_id_and_stop_without_a_connector() -> None:
    summary, recorder = drive(sim_config(), versions=("1.6",))
    assert summary.ok, summary.describe()
    started: dict[int, int] = {}  # transaction id -> connector
    assigned = iter(range(1, 10_000))  # the central system numbers in arrival order
    for call in recorder.calls:
        if call.action == "StartTransaction":
            started[next(assigned)] = call.payload["connector_id"]
            assert isinstance(call.payload["meter_start"], int)  # Wh, integer
        elif call.action == "MeterValues":
            assert call.payload["transaction_id"] in started
            assert started[call.payload["transaction_id"]] == call.payload["connector_id"]
        elif call.action == "StopTransaction":
            assert "connector_id" not in call.payload
            assert call.payload["transaction_id"] in started
            assert isinstance(call.payload["meter_stop"], int)
    stops = [c for c in recorder.calls if c.action == "StopTransaction"]
    assert stops
    assert len({c.payload["transaction_id"] for c in stops}) == len(stops)
    assert any(c.action == "StatusNotification" and c.payload["connector_id"] == 0 for c in recorder.calls)


def test_201_transaction_events_carry_evse_only_when_started_and_count_seq_no() -> None:
    summary, recorder = drive(sim_config(), versions=("2.0.1",))
    assert summary.ok, summary.describe()
    seen: dict[str, list[dict[str, Any]]] = {}
    for call in recorder.calls:
        if call.action == "TransactionEvent":
            seen.setdefault(call.payload["transaction_info"]["transaction_id"], []).append(call.payload)
    ended = [events for events in seen.values() if events[-1]["event_type"] == "Ended"]
    assert ended
    for events in ended:
        assert [e["seq_no"] for e in events] == list(range(len(events)))
        assert events[0]["event_type"] == "Started"
        assert "evse" in events[0]
        assert all("evse" not in e for e in events[1:])
        assert {e["event_type"] for e in events[1:-1]} <= {"Updated"}
    statuses = {c.payload["connector_status"] for c in recorder.calls if c.action == "StatusNotification"}
    assert statuses <= {"Available", "Occupied", "Reserved", "Unavailable", "Faulted"}
    assert "Occupied" in statuses


def fleet_registers(sim: SimulationConfig, profile: StationProfile) -> list[tuple[str, int, float]]:
    """(timestamp, connector, kWh) of every transaction event of the fleet model, in order."""
    end = START + (sim.duration or timedelta(0))
    out = []
    for at, event in station_events(sim, profile.station):
        if at > end:
            break
        if event.is_transaction_event:
            assert event.energy_kwh is not None
            out.append((event.occurred_at.isoformat(), event.connector_id, event.energy_kwh))
    return out


def test_meter_values_encode_the_fleet_models_register_in_each_stations_units() -> None:
    sim = sim_config(stations=8)
    summary, recorder = drive(sim)
    assert summary.ok, summary.describe()
    profiles = fleet_profiles(sim, ("1.6", "2.0.1"))
    assert len({p.unit_16 for p in profiles if p.version == "1.6"} | {p.unit_201 for p in profiles}) > 2
    for profile in profiles:
        decoded: list[float] = []
        for call in recorder.by_station()[profile.station_id]:
            p = call.payload
            if call.action == "StartTransaction":
                decoded.append(float(p["meter_start"]))
            elif call.action == "MeterValues":
                decoded.append(energy_wh(call.version, p["meter_value"][0]["sampled_value"]))
            elif call.action == "StopTransaction":
                decoded.append(float(p["meter_stop"]))
            elif call.action == "TransactionEvent" and "meter_value" in p:
                decoded.append(energy_wh(call.version, p["meter_value"][0]["sampled_value"]))
        expected = [kwh * 1000 for _, _, kwh in fleet_registers(sim, profile)]
        assert decoded == pytest.approx(expected, abs=0.5), profile


def test_the_same_seed_replays_the_same_messages_and_another_seed_does_not() -> None:
    first_summary, first = drive(sim_config(seed=5))
    _, second = drive(sim_config(seed=5))
    _, other = drive(sim_config(seed=6))
    assert first_summary.ok
    one, two, three = first.by_station(), second.by_station(), other.by_station()
    assert {sid: without_tx_ids(calls) for sid, calls in one.items()} == {
        sid: without_tx_ids(calls) for sid, calls in two.items()
    }
    assert {sid: without_tx_ids(calls) for sid, calls in one.items()} != {
        sid: without_tx_ids(calls) for sid, calls in three.items()
    }


def _timestamps(call: Received) -> list[datetime]:
    return _payload_timestamps(call.payload)


def _payload_timestamps(p: Mapping[str, Any]) -> list[datetime]:
    stamps = [utc(p["timestamp"])] if "timestamp" in p else []
    stamps += [utc(m["timestamp"]) for m in p.get("meter_value", [])]
    return stamps


def test_offline_stations_replay_queued_transaction_messages_in_order_with_original_timestamps() -> None:
    sim = sim_config(stations=4, hours=6)
    offline = OfflineConfig(per_hour=0.4, duration=(timedelta(minutes=20), timedelta(minutes=40)))
    summary, recorder = drive(sim, offline=offline)
    assert summary.ok, summary.describe()
    assert summary.replayed > 0
    end = START + timedelta(hours=6)
    for profile in fleet_profiles(sim, ("1.6", "2.0.1")):
        script = list(station_script(profile, sim, offline=offline, until=end))
        reconnects = [s.send_at for s in script if s.action == RECONNECT]
        if not reconnects:
            continue
        calls = recorder.by_station()[profile.station_id]
        assert recorder.connections[profile.station_id] == 1 + len(reconnects)
        # Every reconnect first replays what was queued, oldest first, timestamps from the outage.
        for number, back_at in enumerate(reconnects, start=2):
            replay = [c for c in calls if c.connection == number]
            queued = [s for s in script if s.queued and s.send_at == back_at]
            outage_start = max(s.send_at for s in script if s.action == DISCONNECT and s.send_at < back_at)
            assert [c.action for c in replay[: len(queued)]] == [s.action for s in queued]
            stamps = [t for c in replay[: len(queued)] for t in _timestamps(c)]
            assert stamps == sorted(stamps)
            assert all(outage_start <= t < back_at for t in stamps)
            if profile.version == "2.0.1":
                assert all(c.payload.get("offline") is True for c in replay[: len(queued)])
        # Nothing a connected charger sends is dated inside an outage, except the replays.
        in_outage = [
            c
            for c in calls
            if c.action in {"StatusNotification", "Authorize"}
            and any(
                d.send_at <= t < r
                for d, r in zip([s for s in script if s.action == DISCONNECT], reconnects, strict=False)
                for t in _timestamps(c)
            )
        ]
        assert all(
            c.action == "StatusNotification" for c in in_outage
        )  # the current status, as of its change


def test_a_transaction_message_the_central_system_refuses_is_retried_until_stored() -> None:
    recorder = Recorder(reject={"StartTransaction": 2, "TransactionEvent": 1})
    summary, recorded = drive(sim_config(stations=2), recorder=recorder)
    assert summary.call_errors == {
        "StartTransaction:InternalError": 2,
        "TransactionEvent:InternalError": 1,
    }
    assert summary.retries == 3
    assert summary.skipped == 0
    stops = [c for c in recorded.calls if c.action == "StopTransaction"]
    starts = [c for c in recorded.calls if c.action == "StartTransaction"]
    assert len(starts) >= len(stops) > 0


def test_a_wrong_password_is_refused_at_the_handshake_and_sends_nothing() -> None:
    sim = sim_config(stations=2)
    creds = passwords(2) | {"ST-0002": "wrong"}
    summary, recorder = drive(sim, creds=creds)
    assert summary.refused_stations == 1
    assert summary.connect_failures == {"HTTP 401": 1}
    assert set(recorder.by_station()) == {"ST-0001"}
    assert recorder.refused == [(f"/ocpp/{TENANT}/ST-0002", 401)]


def test_a_201_station_answers_get_base_report_with_its_connector_types() -> None:
    recorder = Recorder(get_base_report=True)
    sim = sim_config(stations=2)
    summary, recorded = drive(sim, recorder=recorder, versions=("2.0.1",))
    assert summary.ok
    reports = [c for c in recorded.calls if c.action == "NotifyReport"]
    assert {c.station_id for c in reports} == {"ST-0001", "ST-0002"}
    for report in reports:
        assert report.payload["request_id"] == 7
        profile = next(p for p in fleet_profiles(sim, ("2.0.1",)) if p.station_id == report.station_id)
        types = {
            item["component"]["evse"]["id"]: item["variable_attribute"][0]["value"]
            for item in report.payload["report_data"]
        }
        expected = {"CCS": "cCCS2", "CHAdeMO": "cG105", "Type2": "sType2"}
        assert types == {c.connector_id: expected[c.connector_type] for c in profile.station.connectors}


def test_scripts_are_pure_and_queued_steps_are_older_than_their_sending() -> None:
    sim = sim_config(stations=3, hours=8)
    offline = OfflineConfig(per_hour=0.5)
    end = START + timedelta(hours=8)
    for profile in fleet_profiles(sim, ("1.6", "2.0.1")):
        once = list(station_script(profile, sim, offline=offline, until=end))
        again = list(station_script(profile, sim, offline=offline, until=end))
        assert once == again
        sends = [s.send_at for s in once]
        assert sends == sorted(sends)
        for step in once:
            if step.queued:
                assert step.is_transaction_message
                stamps = _payload_timestamps(step.payload)
                assert stamps
                assert all(t < step.send_at for t in stamps)


@pytest.fixture
def central_in_thread() -> Iterator[CentralSystem]:
    """A central system on its own event loop, for the CLI (which runs its own loop)."""
    central = CentralSystem(TENANT, passwords(3))
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with central.running():
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield central
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def test_cli_simulate_gateway_drives_charge_points_with_passwords_from_a_file(
    central_in_thread: CentralSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    creds = tmp_path / "acme-stations.yaml"
    creds.write_text(yaml.safe_dump(passwords(3)))
    code = cli.main(
        [
            "simulate",
            "--gateway",
            central_in_thread.url,
            "--tenant",
            TENANT,
            "--stations",
            "3",
            "--versions",
            "2.0.1,1.6",
            "--password-file",
            str(creds),
            "--seed",
            "3",
            "--start-time",
            "2025-03-01T00:00:00.000Z",
            "--speedup",
            "0",
            "--rate",
            "0",
            "--simulated-duration",
            "7200",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "3 charge points" in err
    assert "secret-" not in err
    by_station = central_in_thread.recorder.by_station()
    assert {sid: calls[0].version for sid, calls in by_station.items()} == {
        "ST-0001": "2.0.1",
        "ST-0002": "1.6",
        "ST-0003": "2.0.1",
    }


def test_cli_simulate_gateway_rejects_kafka_only_options(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["simulate", "--gateway", "ws://127.0.0.1:1", "--tenant", TENANT, "--max-events", "5"])
    assert code == 2
    assert "Kafka-mode options" in capsys.readouterr().err
