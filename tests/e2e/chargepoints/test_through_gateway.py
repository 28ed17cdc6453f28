"""The load generator against the real gateway and a real Kafka broker.

Simulated charge points of both versions play a few hours of the fleet model through
:class:`charging_analytics.gateway.server.Gateway`; what lands in the tenant's topic must be
the fleet model's transaction events (same connectors, same registers), whatever unit each
station's meter reports in.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from charging_analytics.events import format_timestamp
from charging_analytics.simulator.chargepoints import (
    FleetConfig,
    OfflineConfig,
    fleet_profiles,
    run_fleet,
    station_script,
)
from charging_analytics.simulator.simulate import SimulationConfig, station_events
from tests.e2e.gateway.support import PASSWORD, events, gateway_config, running, tenant

START = datetime(2025, 3, 1, tzinfo=UTC)
HOURS = 4


@pytest.mark.timeout(240)
def test_simulated_fleet_through_the_gateway_lands_the_fleet_models_transactions(kafka_broker: str) -> None:
    sim = SimulationConfig(
        seed=21,
        stations=4,
        start_time=START,
        duration=timedelta(hours=HOURS),
        meter_interval=timedelta(minutes=5),
        stall_time=timedelta(minutes=15),
        mean_idle=timedelta(minutes=20),
        fault_probability=0.0,
        stall_probability=0.0,
    )
    profiles = fleet_profiles(sim, ("1.6", "2.0.1"))
    registry = {
        p.station_id: {c.connector_id: c.connector_type for c in p.station.connectors} for p in profiles
    }
    acme = tenant(kafka_broker, "acme", registry)
    offline = OfflineConfig(per_hour=0.3, duration=(timedelta(minutes=10), timedelta(minutes=30)))

    async def main() -> None:
        async with running(gateway_config(kafka_broker, acme)) as gateway:
            fleet = FleetConfig(
                gateway=f"ws://127.0.0.1:{gateway.port}",
                tenant="acme",
                simulation=sim,
                passwords={sid: f"{PASSWORD}-{sid}" for sid in registry},
                speedup=0,
                offline=offline,
                heartbeat_interval_s=0,
            )
            summary = await asyncio.wait_for(run_fleet(fleet), timeout=180)
            assert summary.ok, summary.describe()

    asyncio.run(main())

    expected: dict[tuple[str, int], list[tuple[str, float]]] = defaultdict(list)
    end = START + timedelta(hours=HOURS)
    for profile in profiles:
        # What the charge point sent: a station still offline at the end never replays its queue.
        script = station_script(profile, sim, offline=offline, until=end)
        sent = {
            stamp
            for step in script
            if step.is_transaction_message
            for stamp in [step.payload.get("timestamp")]
            + [m["timestamp"] for m in step.payload.get("meter_value", [])]
        }
        for at, event in station_events(sim, profile.station):
            if at > end:
                break
            if event.is_transaction_event and format_timestamp(event.occurred_at) in sent:
                assert event.energy_kwh is not None
                expected[(event.station_id, event.connector_id)].append((event.event_type, event.energy_kwh))
    published: dict[tuple[str, int], list[tuple[str, float]]] = defaultdict(list)
    received = events(kafka_broker, acme.topic, min_messages=sum(len(v) for v in expected.values()))
    for event in sorted(received, key=lambda e: e.occurred_at):
        if event.is_transaction_event:
            assert event.energy_kwh is not None
            published[(event.station_id, event.connector_id)].append((event.event_type, event.energy_kwh))
    assert set(published) == set(expected)
    for key, wanted in expected.items():
        got = published[key]
        assert [t for t, _ in got] == [t for t, _ in wanted], key
        assert [kwh for _, kwh in got] == pytest.approx([kwh for _, kwh in wanted], abs=0.001), key
