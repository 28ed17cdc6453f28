"""Merging conditions into a status (``status.merge_conditions``): kstatus's rules, checked on
the conditions as they are published."""

from __future__ import annotations

from typing import Any

from charging_analytics import constants as c
from charging_analytics.spec import ChargingAnalyticsStatus, Condition
from charging_analytics.status import Cond, Reason, merge_conditions, published, read_status, ready, stalled

T0, T1 = "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z"


def _wire(conditions: list[Condition]) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = published(ChargingAnalyticsStatus(conditions=conditions))["conditions"]
    return wire


def _read(conditions: list[dict[str, Any]]) -> list[Condition]:
    return read_status({"conditions": conditions}).conditions


def _by_type(conditions: list[Condition]) -> dict[object, dict[str, object]]:
    return {cond["type"]: cond for cond in _wire(conditions)}


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = merge_conditions(None, ready(Reason.APPLIED, "13 objects"), 1, now=T0)
    same_status = merge_conditions(first, ready(Reason.UP_TO_DATE, "13 objects"), 2, now=T1)
    flipped = merge_conditions(same_status, stalled(Reason.APPLY_FAILED, "boom"), 2, now=T1)
    assert _by_type(same_status)[c.COND_READY]["lastTransitionTime"] == T0
    assert _by_type(same_status)[c.COND_READY]["reason"] == "UpToDate"
    assert _by_type(flipped)[c.COND_READY]["lastTransitionTime"] == T1
    assert _by_type(flipped)[c.COND_STALLED]["lastTransitionTime"] == T1
    # Reconciling stayed False throughout: its time is the first one
    assert _by_type(flipped)[c.COND_RECONCILING]["lastTransitionTime"] == T0


def test_updates_carry_the_generation_and_unknown_types_are_kept() -> None:
    foreign = {"type": "Synced", "status": "True", "reason": "ByAnotherController", "lastTransitionTime": T1}
    merged = merge_conditions(_read([foreign]), ready(Reason.APPLIED, "m"), 7, now=T0)
    conds = _by_type(merged)
    assert conds["Synced"] == foreign
    assert {conds[t]["observedGeneration"] for t in (c.COND_READY, c.COND_STALLED)} == {7}


def test_conditions_come_out_in_the_canonical_order_with_wire_strings() -> None:
    updates = [Cond(c.COND_DRIFTED, "False", Reason.IN_SYNC, ""), *stalled(Reason.TENANT_CONFLICT, "x")]
    zeta = {"type": "Zeta", "status": "True", "reason": "Other", "lastTransitionTime": T0}
    merged = _wire(merge_conditions(_read([zeta]), updates, 1, now=T0))
    assert [cond["type"] for cond in merged] == [*c.CONDITION_TYPES, "Zeta"]
    reasons = [cond["reason"] for cond in merged[:4]]
    assert reasons == ["TenantConflict", "TenantConflict", "TenantConflict", "InSync"]
    assert all(type(r) is str for r in reasons)  # plain strings once published, not enum members
