"""The rules a reconcile of the tenant's Grafana objects follows (pure): drift is a difference
from what the status records as applied, a spec change is a difference from anything else; Plan
mode and onDrift Report change nothing and say what they found."""

from __future__ import annotations

import pytest

from charging_analytics import constants as c
from charging_analytics.operator.dashboards import (
    DashboardsReport,
    Decision,
    ObjectResult,
    Removal,
    decide,
    owns_dashboards,
    recorded_hashes,
    state_of,
)
from charging_analytics.operator.service import Outcome, fold_dashboards
from charging_analytics.spec import ChargingAnalyticsStatus, PlanStatus
from charging_analytics.status import Cond, read_status, ready


@pytest.mark.parametrize(
    ("live_matches", "recorded", "correct", "want"),
    [
        (True, True, True, Decision("none", drift=False)),
        (True, False, False, Decision("none", drift=False)),
        (None, False, False, Decision("create", drift=False)),  # new object
        (False, False, False, Decision("update", drift=False)),  # spec change: applied under Report
        (None, True, False, Decision("none", drift=True)),  # deleted by hand, Report
        (False, True, False, Decision("none", drift=True)),  # edited by hand, Report
        (None, True, True, Decision("restore", drift=True)),
        (False, True, True, Decision("restore", drift=True)),
    ],
)
def test_drift_is_a_difference_from_the_recorded_hash_only(
    live_matches: bool | None, recorded: bool, correct: bool, want: Decision
) -> None:
    assert decide(live_matches, recorded, correct_drift=correct) == want


def test_states_follow_the_sql_objects_conventions() -> None:
    assert state_of(Decision("create", False), absent=True, applied=False) == "Pending"  # Plan mode
    assert state_of(Decision("update", False), absent=False, applied=False) == "Pending"
    assert state_of(Decision("none", True), absent=True, applied=False) == "Missing"
    assert state_of(Decision("none", True), absent=False, applied=False) == "Drifted"
    assert state_of(Decision("restore", True), absent=False, applied=False) == "Drifted"  # Plan mode
    assert state_of(Decision("restore", True), absent=True, applied=True) == "Ready"
    assert state_of(Decision("none", False), absent=False, applied=False) == "Ready"


def test_only_entries_of_applied_states_record_a_hash() -> None:
    status = read_status(
        {
            "objects": [
                {"kind": "ConfigMap", "name": "a", "state": "Ready", "hash": "h1"},
                {"kind": "GrafanaDashboard", "name": "b", "state": "Pending", "hash": "h2"},
                {"kind": "GrafanaDatasource", "name": "c", "state": "Failed", "hash": "h3"},
                {"kind": "GrafanaDatasource", "name": "d", "state": "Missing", "hash": "h4"},
                {"kind": "MaterializedView", "name": "t.x", "state": "Ready", "hash": "h5"},
            ]
        }
    )
    assert recorded_hashes(status.objects) == {("ConfigMap", "a", "h1"), ("GrafanaDatasource", "d", "h4")}
    assert owns_dashboards(status)
    assert not owns_dashboards(ChargingAnalyticsStatus(objects=status.objects[-1:]))
    plan_mode = read_status({"plan": {"hash": "h", "objects": ["delete ConfigMap ns/a"]}})
    assert owns_dashboards(plan_mode)  # Plan mode keeps looking


def _result(action: str, *, applied: bool, drift: bool = False, absent: bool = False) -> ObjectResult:
    decision = Decision(action, drift)  # type: ignore[arg-type]
    state = state_of(decision, absent=absent, applied=applied)
    return ObjectResult("ConfigMap", "ns", "x", state, "h", decision.action, applied, drift, absent)


def _plan_outcome() -> Outcome:
    out = Outcome(
        conditions=[
            *ready("UpToDate", "plan mode: nothing to change"),
            Cond(c.COND_DRIFTED, "False", "InSync"),
        ]
    )
    out.status = ChargingAnalyticsStatus(objects=[], plan=PlanStatus(hash="sha256:0", statements=[]))
    out.result = "plan"
    return out


def test_plan_mode_lists_the_changes_on_the_plan_and_the_ready_condition() -> None:
    out = _plan_outcome()
    report = DashboardsReport(
        (_result("create", applied=False, absent=True),),
        (Removal("GrafanaDashboard", "ns", "old", applied=False),),
    )
    fold_dashboards(out, report, previous_plan=None)
    assert out.status.plan is not None
    assert out.status.plan.objects == ["create ConfigMap ns/x", "delete GrafanaDashboard ns/old"]
    ready_cond = next(cond for cond in out.conditions if cond.type == c.COND_READY)
    assert (ready_cond.status, ready_cond.reason) == ("True", "PlanReady")
    assert "create ConfigMap ns/x" in ready_cond.message
    assert [e[1] for e in out.events] == ["PlanReady"]
    again = _plan_outcome()  # the same plan again: no second Event
    fold_dashboards(again, report, previous_plan=out.status.plan)
    assert again.events == []


def test_reported_drift_sets_drifted_and_warns_and_a_restore_is_an_event() -> None:
    out = Outcome(conditions=[*ready("UpToDate", ""), Cond(c.COND_DRIFTED, "False", "InSync")])
    fold_dashboards(
        out, DashboardsReport((_result("none", applied=False, drift=True, absent=True),)), previous_plan=None
    )
    drifted = next(cond for cond in out.conditions if cond.type == c.COND_DRIFTED)
    assert (drifted.status, drifted.message) == ("True", "ConfigMap ns/x was deleted outside the operator")
    assert out.events == [("Warning", "DriftDetected", "ConfigMap ns/x was deleted outside the operator")]

    out = Outcome(
        conditions=[*ready("UpToDate", ""), Cond(c.COND_DRIFTED, "True", "DriftDetected", "t.v changed")]
    )
    fold_dashboards(
        out, DashboardsReport((_result("restore", applied=True, drift=True),)), previous_plan=None
    )
    assert next(cond for cond in out.conditions if cond.type == c.COND_DRIFTED).message == "t.v changed"
    assert out.events == [
        ("Normal", "DriftCorrected", "ConfigMap ns/x was edited outside the operator; restored")
    ]


def test_a_failed_restore_leaves_the_drift_reported_and_names_the_refused_call() -> None:
    failed = ObjectResult(
        "ConfigMap",
        "ns",
        "x",
        "Failed",
        "h",
        "restore",
        False,
        True,
        False,
        error="cannot update ConfigMap ns/x: 403 Forbidden",
    )
    out = Outcome(
        conditions=[*ready("UpToDate", ""), Cond(c.COND_DRIFTED, "True", "DriftDetected", "t.v changed")]
    )
    fold_dashboards(
        out,
        DashboardsReport((failed,), errors=("cannot list ConfigMaps in ns: 403 Forbidden",)),
        previous_plan=None,
    )
    drifted = next(cond for cond in out.conditions if cond.type == c.COND_DRIFTED)
    assert drifted.message == "t.v changed; ConfigMap ns/x was edited outside the operator"
    assert (
        "Warning",
        "DashboardsFailed",
        "cannot update ConfigMap ns/x: 403 Forbidden; cannot list ConfigMaps in ns: 403 Forbidden",
    ) in out.events
