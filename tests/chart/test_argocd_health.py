"""The Argo CD health check, run the way Argo CD runs scripts from argocd-cm.

Argo CD evaluates ``resource.customizations.health.<group>_<kind>`` scripts with gopher-lua
(Lua 5.1 semantics), a global ``obj`` holding the live object, and only the base, table, package
and a reduced os library open: ``string`` and ``math`` are absent, and so are string methods
(their metatable is installed by the string library). The harness below reproduces that
sandbox in lupa's Lua 5.1 and replays every case of ``health_test.yaml`` (Argo CD's own test
layout), comparing status and message exactly, as Argo CD's ``TestLuaHealthScript`` does.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from charging_analytics.plan import Drift, Plan
from charging_analytics.spec import ChargingAnalytics, ChargingAnalyticsStatus
from charging_analytics.status import (
    DRIFT_REASONS,
    EVENT_REASONS,
    PROGRESS_REASONS,
    READY_REASONS,
    STALLED_REASONS,
    WAITING_REASONS,
    Cond,
    Reason,
    drifted,
    merge_conditions,
    published,
    ready,
    reconciling,
    stalled,
    waiting,
)

ARGOCD_DIR = Path(__file__).resolve().parents[2] / "charts" / "charging-analytics-operator" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"
HEALTH_TESTS: list[dict[str, Any]] = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())["tests"]
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

# Runs once per runtime, before the script: leaves only what argocd-cm scripts get.
_SANDBOX = """
debug.setmetatable("", nil)
string, math, io, debug = nil, nil, nil, nil
local safe_os = {time = os.time, date = os.date, clock = os.clock, difftime = os.difftime}
os = safe_os
"""


def _jsonable(value: Any) -> Any:
    """What Argo CD hands the script: JSON values (timestamps are strings, nulls are absent)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_jsonable(v) for v in value if v is not None]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat().replace("+00:00", "Z")
    return value


def sandboxed_runtime() -> lua51.LuaRuntime:
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute(_SANDBOX)
    return runtime


def run_health(obj: dict[str, Any], script: str | None = None) -> dict[str, Any]:
    runtime = sandboxed_runtime()
    runtime.globals().obj = runtime.table_from(_jsonable(obj), recursive=True)
    result = runtime.execute(script if script is not None else HEALTH_LUA.read_text())
    assert result is not None, "health.lua must return a table"
    return {key: result[key] for key in ("status", "message")}


def _case_id(case: dict[str, Any]) -> str:
    return Path(case["inputPath"]).stem


@pytest.mark.parametrize("case", HEALTH_TESTS, ids=_case_id)
def test_health_script_maps_status_to_expected_argo_health(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD_DIR / case["inputPath"]).read_text())
    assert run_health(obj) == case["healthStatus"]


@pytest.mark.parametrize("case", HEALTH_TESTS, ids=_case_id)
def test_health_testdata_is_a_resource_the_operator_could_produce(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((ARGOCD_DIR / case["inputPath"]).read_text())
    ChargingAnalytics.model_validate(obj)
    if "status" in obj:
        ChargingAnalyticsStatus.model_validate(obj["status"])
    assert case["healthStatus"]["status"] in ARGO_STATUSES


def test_health_cases_cover_every_status_the_script_can_return() -> None:
    covered = {case["healthStatus"]["status"] for case in HEALTH_TESTS}
    assert covered == {"Healthy", "Progressing", "Degraded", "Suspended", "Unknown"}
    assert len(HEALTH_TESTS) >= 12


def test_every_testdata_file_is_listed_in_health_test_yaml() -> None:
    listed = {case["inputPath"] for case in HEALTH_TESTS}
    on_disk = {f"testdata/{p.name}" for p in (ARGOCD_DIR / "testdata").glob("*.yaml")}
    assert listed == on_disk


def test_sandbox_has_no_string_or_math_library_like_argocd_cm() -> None:
    runtime = sandboxed_runtime()
    assert runtime.execute("return string == nil and math == nil and io == nil and debug == nil")
    assert runtime.execute("return os.execute == nil and os.getenv == nil and os.time ~= nil")
    with pytest.raises(lua51.LuaError):
        runtime.execute('return ("abc"):upper()')
    with pytest.raises(lua51.LuaError):
        runtime.execute('return string.format("%d", 1)')


def test_health_script_uses_no_library_outside_the_argocd_cm_sandbox() -> None:
    # The sandbox would already fail a case, but only on the branch a case reaches: check the
    # whole text so an untested branch cannot call string.*/math.* either.
    source = HEALTH_LUA.read_text()
    code = "\n".join(line.split("--", 1)[0] for line in source.splitlines())
    for forbidden in ("string.", "math.", "io.", "debug.", "os.", "require", ":sub(", ":find(", ":match("):
        assert forbidden not in code, forbidden


def test_health_message_reports_the_generation_awaited_when_status_is_stale() -> None:
    obj = yaml.safe_load((ARGOCD_DIR / "testdata" / "healthy.yaml").read_text())
    obj["metadata"]["generation"] = 7
    assert run_health(obj) == {
        "status": "Progressing",
        "message": "Waiting for the operator to observe generation 7",
    }


def test_health_plan_mode_counts_pending_actions_from_status_plan() -> None:
    obj = yaml.safe_load((ARGOCD_DIR / "testdata" / "plan_mode_pending.yaml").read_text())
    obj["status"]["plan"]["actions"] = 42
    assert run_health(obj) == {"status": "Suspended", "message": "Plan mode: 42 actions pending"}


def test_health_drift_without_ondrift_field_is_treated_as_correct_the_crd_default() -> None:
    obj = yaml.safe_load((ARGOCD_DIR / "testdata" / "drift_being_corrected.yaml").read_text())
    del obj["spec"]["onDrift"]
    assert run_health(obj)["status"] == "Progressing"


# --------------------------------------------------------------------------------------------
# The script against the reasons the operator writes (charging_analytics.status.Reason)
# --------------------------------------------------------------------------------------------

#: kstatus's generic reasons, which the script also accepts from other writers; the operator
#: itself reports progress as Reconciling=True (reason Backfilling or Deleting).
KSTATUS_GENERIC_REASONS = {"Reconciling", "Progressing"}
#: Cases of statuses the operator never writes (Ready=Unknown; Ready=False with a generic
#: kstatus reason), kept because the script must still map them.
NOT_FROM_THE_OPERATOR = {"ready_unknown", "ready_false_reconciling_reason"}


def _case_conditions(case: dict[str, Any]) -> list[dict[str, Any]]:
    obj = yaml.safe_load((ARGOCD_DIR / case["inputPath"]).read_text())
    conditions: list[dict[str, Any]] = (obj.get("status") or {}).get("conditions") or []
    return conditions


def test_every_reason_the_script_compares_with_is_one_the_operator_writes() -> None:
    compared = set(re.findall(r'reason == "([A-Za-z]+)"', HEALTH_LUA.read_text()))
    assert {"PlanReady", "ApprovalPending"} <= compared
    assert compared - KSTATUS_GENERIC_REASONS <= {r.value for r in Reason}


@pytest.mark.parametrize(
    "case", [c for c in HEALTH_TESTS if _case_id(c) not in NOT_FROM_THE_OPERATOR], ids=_case_id
)
def test_health_testdata_carries_only_reasons_the_operator_writes(case: dict[str, Any]) -> None:
    written = {r.value for r in Reason} - {r.value for r in EVENT_REASONS}
    assert {cond["reason"] for cond in _case_conditions(case)} <= written


def _with_conditions(conds: list[Cond], **spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((ARGOCD_DIR / "testdata" / "healthy.yaml").read_text())
    obj["spec"].update(spec)
    merged = merge_conditions(None, conds, obj["metadata"].get("generation"))
    obj["status"]["conditions"] = published(ChargingAnalyticsStatus(conditions=merged))["conditions"]
    obj["status"]["plan"] = {"hash": "sha256:abc", "actions": 2}
    return obj


#: What each condition reason's status (as the operator builds it) means to Argo CD.
HEALTH_BY_REASON: dict[Reason, str] = {
    **dict.fromkeys((Reason.APPLIED, Reason.UP_TO_DATE), "Healthy"),
    Reason.PLAN_READY: "Suspended",  # Plan mode with actions pending
    Reason.APPROVAL_PENDING: "Suspended",
    Reason.SUSPENDED: "Suspended",
    **dict.fromkeys(PROGRESS_REASONS, "Progressing"),
    **dict.fromkeys(STALLED_REASONS, "Degraded"),
}


def _status_for(reason: Reason) -> dict[str, Any]:
    if reason in READY_REASONS:
        mode = "Plan" if reason == Reason.PLAN_READY else "Apply"
        return _with_conditions([*ready(reason, "m"), drifted(None)], mode=mode)
    if reason in WAITING_REASONS:
        return _with_conditions(waiting(reason, "m"), suspend=reason == Reason.SUSPENDED)
    if reason in PROGRESS_REASONS:
        return _with_conditions(reconciling(reason, "m"))
    return _with_conditions(stalled(reason, "m"))


def test_every_condition_reason_has_the_argo_health_it_should() -> None:
    conditions = set(Reason) - EVENT_REASONS - DRIFT_REASONS
    assert set(HEALTH_BY_REASON) == conditions
    for reason, health in HEALTH_BY_REASON.items():
        assert run_health(_status_for(reason))["status"] == health, reason


@pytest.mark.parametrize(("on_drift", "health"), [("Report", "Degraded"), ("Correct", "Progressing")])
def test_drift_reasons_have_the_argo_health_they_should(on_drift: str, health: str) -> None:
    drift_found = (Drift("north.sessions", "MaterializedView", "modified"),)
    plan = Plan(tenant="north", actions=(), drift=drift_found, changed=())
    in_sync = _with_conditions([*ready(Reason.APPLIED, "m"), drifted(None)], onDrift=on_drift)
    drift = _with_conditions([*ready(Reason.APPLIED, "m"), drifted(plan)], onDrift=on_drift)
    assert drifted(plan).reason == Reason.DRIFT_DETECTED
    assert run_health(in_sync)["status"] == "Healthy"
    assert run_health(drift)["status"] == health
