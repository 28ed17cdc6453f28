"""Rotating a Kafka credential: in place on RisingWave >= 2.6, a source rebuild before.

Render, plan and apply through the real client against the double at each version: on 2.6 and
later the rotation is one ``ALTER SOURCE ... CONNECTOR WITH`` (not destructive, the source and its
views keep their ids); before 2.6 the source must be recreated, which is destructive and waits for
approval as any source rebuild does.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from charging_analytics.apply import apply_plan
from charging_analytics.plan import Plan, PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, RenderOptions, render
from charging_analytics.rw.client import RisingWaveClient
from tests.rw_double.fixtures import RisingWaveTarget
from tests.testbed.rw_double.test_versions import _spec


async def _plan(client: RisingWaveClient, tenant: str, password: str, *, apply: bool) -> Plan:
    caps = await client.capabilities()
    creds = Credentials(
        kafka=Credential("pipeline", password),
        alerts_db=Credential("writer", "db-pw"),
        reader=Credential(f"{tenant}_reader", "ro-pw"),
    )
    objects = render(
        _spec(tenant), RenderOptions(secret_store="inline", credentials=creds, capabilities=caps)
    )
    snapshot = await client.snapshot()
    plan = build_plan(objects, snapshot.tenant(tenant), PlanOptions(ledger_exists=snapshot.ledger_exists))
    if apply:
        await apply_plan(client, plan)
    return plan


@pytest.mark.parametrize("risingwave_version", ["2.6.0", "3.0.3"])
def test_kafka_credential_rotation_alters_the_source_in_place(risingwave: RisingWaveTarget) -> None:
    tenant = f"r_{uuid.uuid4().hex[:8]}"
    source = f"{tenant}.ocpp_events"
    old = "first\\pass'word"
    new = "second\\pass'word"

    async def scenario() -> tuple[Plan, Plan]:
        async with RisingWaveClient(risingwave.endpoint) as client:
            await _plan(client, tenant, old, apply=True)
            before = risingwave.object(source)
            rotation = await _plan(client, tenant, new, apply=True)
            assert risingwave.object(source) == before  # same id, same definition
            return rotation, await _plan(client, tenant, new, apply=False)

    rotation, after = asyncio.run(scenario())
    source_actions = [a for a in rotation.actions if a.name == source]
    assert [(a.type, a.destructive) for a in source_actions] == [("update", False)]
    assert source_actions[0].sql.startswith(f'ALTER SOURCE "{tenant}"."ocpp_events" CONNECTOR WITH')
    assert "[redacted]" in source_actions[0].sql
    assert not rotation.destructive
    # only what embeds the credential changed: the source in place, the Kafka alerts sink rebuilt
    rebuilt = {a.name for a in rotation.actions if a.type == "create"}
    assert rebuilt == {f"{tenant}.alerts_to_kafka"}
    assert risingwave.connector_option(source, "properties.sasl.password") == new
    assert after.empty


@pytest.mark.parametrize("risingwave_version", ["2.3.0", "2.5.0"])
def test_kafka_credential_rotation_before_2_6_recreates_the_source(risingwave: RisingWaveTarget) -> None:
    tenant = f"r_{uuid.uuid4().hex[:8]}"

    async def scenario() -> Plan:
        async with RisingWaveClient(risingwave.endpoint) as client:
            await _plan(client, tenant, "first", apply=True)
            return await _plan(client, tenant, "second", apply=False)

    rotation = asyncio.run(scenario())
    assert not any(a.sql.startswith("ALTER SOURCE") for a in rotation.actions)
    drops = [a for a in rotation.actions if a.type == "drop" and a.name == f"{tenant}.ocpp_events"]
    assert drops
    assert drops[0].destructive
    assert rotation.destructive
