"""A process killed after any statement of an apply: its successor converges without a human.

For every k, an apply through the real client against the RisingWave double is cut after its
k-th statement as a SIGKILL would cut it: statement k ran, nothing more is sent (no FLUSH after
the failure, no ledger write), the process's connections are gone. A new client (a new process)
then snapshots, plans and applies once. The result must be the catalog an uninterrupted apply
builds (objects, definitions, users, grants, ledger rows), and for a change that needs no
approval when uninterrupted (a fresh tenant, a threshold change) the resumed plan needs none
either: nothing the killed apply created can be "destroyed".

The double makes DML visible only at FLUSH (``dml_visibility_delay=None``), the strictest
reading of RisingWave's checkpoint visibility: ledger marks the killed process wrote without its
FLUSH must still reach the successor's snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from charging_analytics.apply import ApplyError, apply_plan
from charging_analytics.catalog import CatalogSnapshot
from charging_analytics.plan import Plan, PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, DesiredObject, RenderOptions, render
from charging_analytics.rw.client import ClientOptions, Endpoint, RisingWaveClient
from charging_analytics.validation import parse_documents
from tests.rw_double import RisingWaveDouble

ROOT = Path(__file__).resolve().parents[3]
OWNER = "tenants/voltbay"
CREDS = Credentials(reader=Credential("voltbay_reader", "reader-pw"))


def _spec(**alerts: Any) -> Any:
    doc = yaml.safe_load((ROOT / "examples" / "voltbay.yaml").read_text(encoding="utf-8"))
    doc["spec"]["readOnlyUser"] = {"enabled": True}
    doc["spec"]["alerts"].update({"availabilityBelowPercent": 80, **alerts})
    return parse_documents([doc]).resources[0].spec


def _desired(**alerts: Any) -> list[DesiredObject]:
    return render(_spec(**alerts), RenderOptions(credentials=CREDS))


class Killed(Exception):
    """The process is gone."""


class DiesAfter:
    """The statement runner of a process that is killed right after its k-th statement."""

    def __init__(self, client: RisingWaveClient, k: int) -> None:
        self.client = client
        self.left = k
        self.sent: list[str] = []

    async def execute(self, statement: str, *, sensitive: tuple[str, ...] = ()) -> None:
        if self.left <= 0:
            raise Killed
        self.left -= 1
        self.sent.append(statement)
        await self.client.execute(statement, sensitive=sensitive)

    async def snapshot(self) -> CatalogSnapshot:
        raise AssertionError("apply does not read the catalog")


@dataclass
class Bed:
    double: RisingWaveDouble

    def client(self) -> RisingWaveClient:
        return RisingWaveClient(Endpoint.from_dsn(self.double.dsn), ClientOptions(pool_min=1, pool_max=1))

    def state(self) -> tuple[Any, ...]:
        """What two applies must agree on: objects and definitions, users, grants, ledger."""
        objects = sorted((o.kind, o.qualified, o.definition, o.depends_on) for o in self.double.objects())
        ledger = sorted(
            self.double.query(
                "SELECT tenant, object_name, kind, definition_hash, depends_on FROM cha_system.ledger"
            )
        )
        users = sorted(self.double.users())
        grants = sorted(self.double.privileges("voltbay_reader"))
        return objects, ledger, users, grants


async def _plan(client: RisingWaveClient, desired: Sequence[DesiredObject]) -> Plan:
    snapshot = await client.snapshot()
    options = PlanOptions(owner=OWNER, ledger_exists=snapshot.ledger_exists)
    return build_plan(desired, snapshot.tenant("voltbay"), options)


async def _apply(bed: Bed, desired: Sequence[DesiredObject], k: int | None = None) -> tuple[Plan, int]:
    """Plan and apply with a fresh client; with ``k``, the process dies after statement k.
    Returns the plan and how many statements were sent."""
    client = bed.client()
    try:
        plan = await _plan(client, desired)
        runner = DiesAfter(client, k if k is not None else 10**6)
        if k is None:
            await apply_plan(runner, plan)
        else:
            with pytest.raises(ApplyError) as failed:
                await apply_plan(runner, plan)
            assert isinstance(failed.value.cause, Killed), failed.value
        return plan, len(runner.sent)
    finally:
        await client.close()


@pytest.fixture
def fresh_bed() -> Iterator[Any]:
    doubles: list[RisingWaveDouble] = []

    def make() -> Bed:
        double = RisingWaveDouble().start()
        doubles.append(double)
        return Bed(double)

    yield make
    for double in doubles:
        double.stop()


Change = tuple[dict[str, Any] | None, dict[str, Any]]
CHANGES: dict[str, Change] = {
    # (alerts before, or None for a fresh tenant; alerts after)
    "fresh tenant": (None, {}),
    "threshold change": ({}, {"availabilityBelowPercent": 65}),
    "low availability disabled": ({}, {"availabilityBelowPercent": None}),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_apply_killed_after_any_statement_converges_on_restart_without_approval(
    change: str, fresh_bed: Any
) -> None:
    before, after = CHANGES[change]
    target_desired = _desired(**after)

    async def prepare(bed: Bed) -> None:
        if before is not None:
            await _apply(bed, _desired(**before))

    async def scenario() -> None:
        reference = fresh_bed()
        await prepare(reference)
        plan, total = await _apply(reference, target_desired)
        assert not plan.destructive
        check = reference.client()
        try:
            assert (await _plan(check, target_desired)).empty
        finally:
            await check.close()
        target = reference.state()
        reference.double.stop()

        needed_approval: list[int] = []
        for k in range(1, total):
            bed = fresh_bed()
            await prepare(bed)
            _, sent = await _apply(bed, target_desired, k)
            assert sent == k
            resumed, _ = await _apply(bed, target_desired)  # the next process
            if resumed.destructive:
                needed_approval.append(k)
            after_resume = bed.client()
            try:
                assert (await _plan(after_resume, target_desired)).empty, f"killed after statement {k}"
            finally:
                await after_resume.close()
            assert bed.state() == target, f"killed after statement {k}: a different catalog"
            bed.double.stop()
        assert needed_approval == [], f"kill points that needed approval: {needed_approval} of {total - 1}"

    asyncio.run(scenario())
