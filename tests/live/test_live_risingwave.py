"""The opt-in live suite: the rendered pipeline against a real RisingWave (``RISINGWAVE_DSN``).

Every other test that uses the ``risingwave`` fixture also runs live when the variable is set; these
tests exist only live, because what they check is RisingWave's own planner and catalog:

* every streaming statement of both examples passes ``EXPLAIN`` (binds and plans: NOW() placement,
  window arguments, sink shapes; docs/risingwave.md §13), with the objects it reads in place;
* a full apply, a no-op re-plan, a threshold change through shadow + SWAP, and the teardown.

Run with ``RISINGWAVE_DSN=postgresql://root@localhost:4566/dev python3 -m pytest tests/live``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
import yaml

from charging_analytics.apply import apply_plan
from charging_analytics.plan import PlanOptions, build_plan, teardown_plan
from charging_analytics.render import RenderOptions, as_text, render
from charging_analytics.rw.client import ClientOptions, Endpoint, RisingWaveClient
from charging_analytics.spec import ChargingAnalytics, ChargingAnalyticsSpec

ROOT = Path(__file__).resolve().parents[2]
DSN = os.environ.get("RISINGWAVE_DSN")

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not DSN, reason="live suite: set RISINGWAVE_DSN to a RisingWave (>= 2.3.0) to run it"),
]


def _spec(example: str, **alerts: object) -> ChargingAnalyticsSpec:
    doc = next(
        d
        for d in yaml.safe_load_all((ROOT / "examples" / example).read_text())
        if d["kind"] == "ChargingAnalytics"
    )
    doc["spec"]["tenant"] = f"live_{uuid.uuid4().hex[:8]}"
    # no credentials or external sinks needed: PLAINTEXT source, no PostgreSQL sink, no reader
    doc["spec"]["kafka"].pop("security", None)
    doc["spec"]["alerts"].setdefault("sinks", {}).pop("postgres", None)
    doc["spec"]["alerts"].update(alerts)
    doc["spec"].pop("readOnlyUser", None)
    return ChargingAnalytics.model_validate(doc).spec


async def _client() -> RisingWaveClient:
    assert DSN is not None
    client = RisingWaveClient(Endpoint.from_dsn(DSN), ClientOptions(statement_timeout=120))
    await client.open()
    return client


@pytest.mark.parametrize("example", ["acme.yaml", "voltbay.yaml"])
def test_every_streaming_statement_binds_and_plans_on_risingwave(example: str) -> None:
    spec = _spec(example)

    async def run() -> None:
        client = await _client()
        try:
            for obj in render(spec, RenderOptions()):
                if obj.kind in ("MaterializedView", "Sink"):
                    await client.execute("EXPLAIN " + as_text(obj.statement))
                if obj.kind != "User":
                    await client.execute(as_text(obj.statement))  # the next one reads it
        finally:
            await client.execute(f'DROP SCHEMA IF EXISTS "{spec.tenant}" CASCADE')  # v2.3+
            await client.close()

    asyncio.run(run())


def test_apply_replan_rebuild_and_teardown_on_risingwave() -> None:
    spec = _spec("voltbay.yaml")
    changed = _spec("voltbay.yaml", stalledSessionMinutes=45).model_copy(update={"tenant": spec.tenant})

    async def run() -> None:
        client = await _client()
        owner = "live/voltbay"
        try:
            for target in (spec, changed):
                snapshot = await client.snapshot()
                options = PlanOptions(owner=owner, ledger_exists=snapshot.ledger_exists)
                plan = build_plan(render(target), snapshot.tenant(spec.tenant), options)
                await apply_plan(client, plan)
                snapshot = await client.snapshot()
                again = build_plan(render(target), snapshot.tenant(spec.tenant), PlanOptions(owner=owner))
                assert again.empty, [a.describe() for a in again.actions]
            names = {o.name for o in snapshot.objects if o.schema == spec.tenant}
            assert not any(n.endswith("__next") for n in names)
            assert "INTERVAL '2700 seconds'" in next(
                o.definition or ""
                for o in snapshot.objects
                if o.schema == spec.tenant and o.name == "stalled_sessions"
            )
        finally:
            await apply_plan(client, teardown_plan((await client.snapshot()).tenant(spec.tenant)))
            gone = await client.snapshot()
            await client.close()
        assert spec.tenant not in gone.schemas

    asyncio.run(run())
