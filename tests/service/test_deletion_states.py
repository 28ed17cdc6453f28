"""Deletion is honest: a blocked deletion is never Ready, force-release is prompt and releases the
tenant's claim, and a spec the operator cannot parse is still torn down."""

from __future__ import annotations

import asyncio
import copy
import threading
import time
from typing import Any

import pytest

from charging_analytics import constants as c
from charging_analytics.operator.kube import KubeClient
from charging_analytics.operator.service import Resource, Service, teardown_target
from charging_analytics.operator.settings import OperatorSettings
from testbed.polling import wait_for
from tests.service.harness import Harness


def test_a_blocked_deletion_is_shown_as_blocked_not_ready(harness: Harness) -> None:
    body = harness.tenant("acme")
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)
        harness.rw.unreachable = True
        harness.delete("acme")
        obj = harness.wait_condition(
            "acme", c.COND_READY, "False", reason="DeletionBlocked", timeout=30, generation=False
        )
        conditions = {x["type"]: x for x in obj["status"]["conditions"]}
        harness.rw.unreachable = False
        harness.wait_gone("acme", timeout=30)
    assert conditions[c.COND_STALLED]["status"] == "True"
    assert conditions[c.COND_STALLED]["reason"] == "DeletionBlocked"
    assert c.ANNOTATION_FORCE_DELETE in conditions[c.COND_READY]["message"]
    assert harness.rw_objects(body["spec"]["tenant"]) == set()
    blocked = [e for e in harness.events() if e["reason"] == "DeletionBlocked"]
    assert blocked
    assert all("retrying in" not in e["message"] for e in blocked)


def test_force_release_is_prompt_and_releases_the_tenant_claim(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)
        for _ in range(200):  # every drop fails: deletion stays blocked with RisingWave up
            harness.rw.fail_next(r"^\s*DROP\b", "injected: cannot drop")
        harness.delete("acme")
        harness.wait_condition(
            "acme", c.COND_READY, "False", reason="DeletionBlocked", timeout=30, generation=False
        )
        time.sleep(5)  # let the retry backoff grow past the deletion cap
        started = time.monotonic()
        harness.annotate("acme", c.ANNOTATION_FORCE_DELETE, "true")
        harness.wait_gone("acme", timeout=30)
        released_after = time.monotonic() - started
    assert released_after < 15, released_after
    with harness.rw.connect() as conn:  # the claim (owner row) and the ledger rows are gone
        rows = conn.execute(
            "SELECT object_name FROM cha_system.ledger WHERE tenant = %s", (tenant,)
        ).fetchall()
    assert rows == []
    assert any(e["reason"] == "FinalizerReleased" for e in harness.events())


def test_teardown_target_survives_an_invalid_spec_but_not_an_invalid_or_reserved_tenant() -> None:
    spec = {
        "tenant": "acme",
        "risingwave": {"host": "rw"},
        "deletionPolicy": "Orphan",
        "analytics": {"tariffs": {"pricePerKwh": {"CCS": 0.12345}}},
    }
    target = teardown_target(spec)
    assert target is not None
    assert (target.tenant, target.deletion_policy) == ("acme", "Orphan")
    assert target.risingwave is not None
    assert target.risingwave.host == "rw"
    assert teardown_target({**spec, "tenant": "cha_system"}) is None
    assert teardown_target({**spec, "tenant": "Not-A-Tenant"}) is None


def test_deleting_a_resource_whose_spec_became_invalid_still_drops_its_objects(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)
    stored = harness.get("acme")
    assert stored is not None
    assert harness.rw_objects(tenant)
    # A spec stored before a rule reached the CRD: the model refuses it now.
    spec = copy.deepcopy(stored["spec"])
    spec["analytics"]["tariffs"]["pricePerKwh"]["CCS"] = 0.12345
    res = Resource.from_body({**stored, "spec": spec})

    async def delete() -> list[tuple[str, str, str]]:
        service = Service(OperatorSettings(), KubeClient())
        try:
            return (await service.delete(res)).events
        finally:
            await service.close()

    events = asyncio.run(delete())
    assert [reason for _, reason, _ in events] == ["Deleted"]
    wait_for(lambda: harness.rw_objects(tenant) == set(), 10, "the tenant's objects dropped")


def test_a_deletion_during_a_drift_check_is_released_when_the_check_ends(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kopf releases the finalizer only once the resource's drift daemon has exited; a pass that
    ends without writing anything wakes nothing, so Kopf's next look comes after its
    ``cancellation_polling`` (60 s by default). The deletion must complete soon after the pass."""
    from charging_analytics.operator import main

    original = main._reconcile
    hold = threading.Event()
    held = threading.Event()

    async def reconcile_then_linger(body: Any, memo: Any, origin: str) -> None:
        await original(body, memo, origin)
        if origin == "timer" and hold.is_set():
            hold.clear()
            held.set()
            await asyncio.sleep(5)  # the pass's tail (Events, a slow client) writes nothing

    monkeypatch.setattr(main, "_reconcile", reconcile_then_linger)
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme", timeout=30)
        hold.set()
        assert held.wait(30), "no drift check ran"
        harness.delete("acme")
        harness.wait_gone("acme", timeout=30)
    assert harness.rw_objects(tenant) == set()
