"""The tenant's Grafana objects on the real apiserver: a sidecar ConfigMap while the grafana-operator
CRDs are absent; GrafanaDatasource and GrafanaDashboard once they are installed. Created owned by
the resource, updated when the pipeline changes, drift-corrected, listed in status.objects, removed
when disabled or with the resource, and never holding a credential."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from charging_analytics.dashboard import dashboard
from charging_analytics.spec import ChargingAnalyticsSpec
from testbed.bed import unique_name
from testbed.controlplane import ControlPlane, KubeApiError
from testbed.polling import wait_for
from tests.service.harness import GRAFANA_CRDS, Harness, Reconciles
from tests.service.rbac_support import ChartRbac, operator_env, rbac_objects, render_release

GRAFANA = "/apis/grafana.integreatly.org/v1beta1/namespaces/{ns}/{plural}/{name}"
CONFIGMAP = "/api/v1/namespaces/{ns}/configmaps/{name}"


def _get(harness: Harness, path: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = harness.rest.get(path)
        return out
    except KubeApiError as err:
        if err.status == 404:
            return None
        raise


def _configmap(harness: Harness, name: str) -> str:
    return CONFIGMAP.format(ns=harness.ns, name=name)


def _grafana(harness: Harness, plural: str, name: str) -> str:
    return GRAFANA.format(ns=harness.ns, plural=plural, name=name)


def _body(harness: Harness, name: str, **dashboards: Any) -> dict[str, Any]:
    return harness.tenant(
        name,
        readOnlyUser={"enabled": True},
        dashboards={"enabled": True, **dashboards},
        onDrift="Correct",
    )


def _password(harness: Harness, name: str) -> str:
    secret = harness.rest.get(f"/api/v1/namespaces/{harness.ns}/secrets/{name}-readonly")
    return base64.b64decode(secret["data"]["password"]).decode()


def _status_kinds(harness: Harness, name: str) -> dict[str, str]:
    obj = harness.get(name) or {}
    return {
        f"{o['kind']}/{o['name']}": o["state"]
        for o in obj.get("status", {}).get("objects", [])
        if o["kind"] in ("ConfigMap", "GrafanaDashboard", "GrafanaDatasource")
    }


def _owned_by(obj: dict[str, Any], cr: dict[str, Any]) -> bool:
    refs = obj["metadata"].get("ownerReferences") or []
    return [(r["kind"], r["name"], r["uid"]) for r in refs] == [
        ("ChargingAnalytics", cr["metadata"]["name"], cr["metadata"]["uid"])
    ]


@pytest.fixture
def grafana_operator_crds(control_plane: ControlPlane) -> Iterator[None]:
    control_plane.install_crd(GRAFANA_CRDS)
    yield
    for name in ("grafanadashboards", "grafanadatasources"):
        control_plane.rest.delete(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}.grafana.integreatly.org"
        )

    def gone() -> bool:
        try:
            control_plane.rest.get("/apis/grafana.integreatly.org/v1beta1")
        except KubeApiError as err:
            return err.status == 404
        return False

    wait_for(gone, 30, "the grafana-operator CRDs to be removed")


def test_without_grafana_operator_a_sidecar_configmap_follows_the_resource(harness: Harness) -> None:
    body = _body(harness, "sidecar", folder="EV charging")
    path = _configmap(harness, "sidecar-dashboard")
    with harness.operator():
        harness.create(body)
        cr = harness.wait_ready("sidecar")
        cm = wait_for(lambda: _get(harness, path), 30, "the dashboard ConfigMap")
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["annotations"]["grafana_folder"] == "EV charging"
        assert _owned_by(cm, cr)
        ((key, text),) = cm["data"].items()
        spec = ChargingAnalyticsSpec.model_validate(cr["spec"])
        assert key == f"{dashboard(spec)['uid']}.json"
        assert json.loads(text) == dashboard(spec)
        assert _password(harness, "sidecar") not in json.dumps(cm)
        wait_for(
            lambda: _status_kinds(harness, "sidecar") == {"ConfigMap/sidecar-dashboard": "Ready"},
            30,
            "the ConfigMap in status.objects",
        )

        # drift: someone edits the dashboard in the ConfigMap; the operator puts it back
        harness.rest.merge_patch(path, {"data": {key: "{}"}})
        wait_for(
            lambda: (c := _get(harness, path)) is not None and json.loads(c["data"][key]) == dashboard(spec),
            30,
            "the edited ConfigMap to be corrected",
        )

        # disabling dashboards removes the ConfigMap and its status entry
        harness.patch_spec("sidecar", {"dashboards": {"enabled": False}})
        wait_for(lambda: _get(harness, path) is None, 30, "the ConfigMap to be removed")
        wait_for(lambda: _status_kinds(harness, "sidecar") == {}, 30, "status.objects without it")

        harness.patch_spec("sidecar", {"dashboards": {"enabled": True}})
        wait_for(lambda: _get(harness, path), 30, "the ConfigMap again")
        harness.delete("sidecar")
        harness.wait_gone("sidecar")
        assert _get(harness, path) is None


@pytest.mark.usefixtures("grafana_operator_crds")
def test_with_grafana_operator_a_datasource_and_a_dashboard_follow_the_pipeline(harness: Harness) -> None:
    body = _body(harness, "graf", instanceSelector={"matchLabels": {"team": "ev"}})
    ds_path = _grafana(harness, "grafanadatasources", "graf-risingwave")
    db_path = _grafana(harness, "grafanadashboards", "graf-dashboard")
    with harness.operator():
        harness.create(body)
        cr = harness.wait_ready("graf")
        ds = wait_for(lambda: _get(harness, ds_path), 30, "the GrafanaDatasource")
        db = wait_for(lambda: _get(harness, db_path), 30, "the GrafanaDashboard")
        assert _owned_by(ds, cr)
        assert _owned_by(db, cr)
        assert ds["spec"]["instanceSelector"] == {"matchLabels": {"team": "ev"}}
        assert db["spec"]["instanceSelector"] == {"matchLabels": {"team": "ev"}}
        tenant = cr["spec"]["tenant"]
        source = ds["spec"]["datasource"]
        assert source["user"] == f"{tenant}_reader"
        assert source["url"] == f"{harness.rw.endpoint.host}:{harness.rw.endpoint.port}"
        assert source["secureJsonData"] == {"password": "${password}"}
        assert ds["spec"]["valuesFrom"] == [
            {
                "targetPath": "secureJsonData.password",
                "valueFrom": {"secretKeyRef": {"name": "graf-readonly", "key": "password"}},
            }
        ]
        password = _password(harness, "graf")
        assert password not in json.dumps(ds)
        assert password not in json.dumps(db)
        spec = ChargingAnalyticsSpec.model_validate(cr["spec"])
        assert json.loads(db["spec"]["json"]) == dashboard(spec)
        assert json.loads(db["spec"]["json"])["panels"][0]["datasource"]["uid"] == source["uid"]
        assert _get(harness, _configmap(harness, "graf-dashboard")) is None
        wait_for(
            lambda: (
                _status_kinds(harness, "graf")
                == {"GrafanaDatasource/graf-risingwave": "Ready", "GrafanaDashboard/graf-dashboard": "Ready"}
            ),
            30,
            "both objects in status.objects",
        )

        # a pipeline change (the tariff's currency) reaches the dashboard
        harness.patch_spec("graf", {"analytics": {"tariffs": {"currency": "GBP"}}})

        def revenue_unit() -> str | None:
            d = _get(harness, db_path)
            if d is None:
                return None
            units = {
                p["title"]: p["fieldConfig"]["defaults"].get("unit")
                for p in json.loads(d["spec"]["json"])["panels"]
            }
            return units.get("Revenue per station (GBP)")

        assert wait_for(revenue_unit, 30, "the dashboard in GBP") == "currencyGBP"

        # drift: the data source pointed elsewhere is put back, the API server's defaults stay
        harness.rest.merge_patch(ds_path, {"spec": {"datasource": {"url": "elsewhere:5432"}}})
        fixed = wait_for(
            lambda: (
                (d := _get(harness, ds_path)) is not None
                and d["spec"]["datasource"]["url"] == source["url"]
                and d
            ),
            30,
            "the data source URL to be corrected",
        )
        assert fixed["spec"]["resyncPeriod"] == "5m"

        # instanceSelector is immutable in the grafana-operator's CRDs: a new selector is a new object
        harness.patch_spec("graf", {"dashboards": {"instanceSelector": {"matchLabels": {"team": "ops"}}}})
        for obj_path in (ds_path, db_path):
            moved = wait_for(
                lambda p=obj_path: (
                    (d := _get(harness, p)) is not None
                    and d["spec"]["instanceSelector"] == {"matchLabels": {"team": "ops"}}
                    and d
                ),
                30,
                "the objects under the new instanceSelector",
            )
            assert _owned_by(moved, cr)

        harness.delete("graf")
        harness.wait_gone("graf")
        assert _get(harness, ds_path) is None
        assert _get(harness, db_path) is None


def _status(harness: Harness, name: str) -> dict[str, Any]:
    return dict((harness.get(name) or {}).get("status") or {})


def _planned(harness: Harness, name: str) -> list[str] | None:
    plan = _status(harness, name).get("plan") or {}
    return plan.get("objects")


def _drifted(harness: Harness, name: str) -> str | None:
    cond = harness.condition(name, "Drifted") or {}
    return cond.get("message") if cond.get("status") == "True" else None


def test_plan_mode_creates_updates_and_deletes_no_grafana_object_and_publishes_each(
    harness: Harness, reconciles: Reconciles
) -> None:
    """spec.mode: Plan: the ConfigMap the spec wants is Pending in status.objects and listed in
    status.plan.objects (Ready=True PlanReady), and is not created; once applied, a pipeline
    change in Plan mode is listed as an update and not written, and disabling dashboards is
    listed as a delete and not carried out."""
    body = _body(harness, "plan")
    body["spec"]["mode"] = "Plan"
    path = _configmap(harness, "plan-dashboard")
    ref = f"ConfigMap {harness.ns}/plan-dashboard"
    with harness.operator():
        harness.create(body)
        assert wait_for(lambda: _planned(harness, "plan"), 60, "the plan") == [f"create {ref}"]
        assert _status_kinds(harness, "plan") == {"ConfigMap/plan-dashboard": "Pending"}
        ready = harness.wait_condition("plan", "Ready", "True", reason="PlanReady")
        assert f"create {ref}" in next(
            cond["message"] for cond in ready["status"]["conditions"] if cond["type"] == "Ready"
        )
        assert any(e["reason"] == "PlanReady" and ref in e["message"] for e in harness.events())
        reconciles.wait_more("plan")
        assert _get(harness, path) is None
        assert _planned(harness, "plan") == [f"create {ref}"]

        harness.patch_spec("plan", {"mode": "Apply"})
        cm = wait_for(lambda: _get(harness, path), 60, "the ConfigMap once applied")
        wait_for(lambda: _planned(harness, "plan") is None, 60, "no plan in Apply mode")

        harness.patch_spec("plan", {"mode": "Plan", "analytics": {"tariffs": {"currency": "GBP"}}})
        assert wait_for(lambda: _planned(harness, "plan"), 60, "the update planned") == [f"update {ref}"]
        assert _status_kinds(harness, "plan") == {"ConfigMap/plan-dashboard": "Pending"}
        reconciles.wait_more("plan")
        assert (_get(harness, path) or {}).get("data") == cm["data"]  # still the EUR dashboard

        harness.patch_spec("plan", {"dashboards": {"enabled": False}})
        assert wait_for(
            lambda: (p := _planned(harness, "plan")) and p[0].startswith("delete") and p, 60, "the delete"
        ) == [f"delete {ref}"]
        reconciles.wait_more("plan")
        assert _get(harness, path) is not None
        assert _planned(harness, "plan") == [f"delete {ref}"]

        harness.patch_spec("plan", {"mode": "Apply"})
        wait_for(lambda: _get(harness, path) is None, 60, "the ConfigMap deleted once applied")


@pytest.mark.usefixtures("grafana_operator_crds")
def test_on_drift_report_reports_an_edited_or_deleted_grafana_object_and_correct_restores_it(
    harness: Harness, reconciles: Reconciles
) -> None:
    """onDrift: Report: the data source edited and the dashboard deleted by hand are reported
    (Drifted=True naming each, Event DriftDetected, states Drifted and Missing) and left as they
    are; a pipeline change is still applied (it is not drift). onDrift: Correct restores both."""
    body = _body(harness, "rep")
    body["spec"]["onDrift"] = "Report"
    ds_path = _grafana(harness, "grafanadatasources", "rep-risingwave")
    db_path = _grafana(harness, "grafanadashboards", "rep-dashboard")
    ds_ref = f"GrafanaDatasource {harness.ns}/rep-risingwave"
    db_ref = f"GrafanaDashboard {harness.ns}/rep-dashboard"
    with harness.operator():
        harness.create(body)
        harness.wait_ready("rep")
        wait_for(
            lambda: (
                set(_status_kinds(harness, "rep").values()) == {"Ready"}
                and len(_status_kinds(harness, "rep")) == 2
            ),
            60,
            "both objects Ready",
        )
        url = (_get(harness, ds_path) or {})["spec"]["datasource"]["url"]

        harness.rest.merge_patch(ds_path, {"spec": {"datasource": {"url": "elsewhere:5432"}}})
        message = wait_for(lambda: _drifted(harness, "rep"), 60, "Drifted=True")
        assert f"{ds_ref} was edited outside the operator" in message
        assert _status_kinds(harness, "rep")["GrafanaDatasource/rep-risingwave"] == "Drifted"
        # Kopf posts the reconcile's Events after its status patch
        wait_for(
            lambda: any(e["reason"] == "DriftDetected" and ds_ref in e["message"] for e in harness.events()),
            30,
            "the DriftDetected Event",
        )

        harness.rest.delete(db_path)
        message = wait_for(
            lambda: (m := _drifted(harness, "rep")) and db_ref in m and m, 60, "the deletion reported"
        )
        assert f"{db_ref} was deleted outside the operator" in message
        assert _status_kinds(harness, "rep")["GrafanaDashboard/rep-dashboard"] == "Missing"
        reconciles.wait_more("rep")
        assert (_get(harness, ds_path) or {})["spec"]["datasource"]["url"] == "elsewhere:5432"
        assert _get(harness, db_path) is None
        assert harness.condition("rep", "Ready")["status"] == "True"  # the SQL pipeline is fine

        # a spec change is applied under Report too: the dashboard is the new spec's
        harness.patch_spec("rep", {"analytics": {"tariffs": {"currency": "GBP"}}})
        created = wait_for(lambda: _get(harness, db_path), 60, "the dashboard of the changed spec")
        assert "currencyGBP" in created["spec"]["json"]
        assert (_get(harness, ds_path) or {})["spec"]["datasource"]["url"] == "elsewhere:5432"
        message = wait_for(
            lambda: (m := _drifted(harness, "rep")) and db_ref not in m and m, 60, "only the data source"
        )
        assert ds_ref in message

        harness.patch_spec("rep", {"onDrift": "Correct"})
        wait_for(
            lambda: (_get(harness, ds_path) or {})["spec"]["datasource"]["url"] == url,
            60,
            "the data source restored",
        )
        harness.wait_condition("rep", "Drifted", "False")
        wait_for(
            lambda: any(e["reason"] == "DriftCorrected" and ds_ref in e["message"] for e in harness.events()),
            30,
            "the DriftCorrected Event",
        )
        harness.rest.delete(db_path)
        wait_for(lambda: _get(harness, db_path), 60, "the deleted dashboard recreated")
        assert _status_kinds(harness, "rep") == {
            "GrafanaDatasource/rep-risingwave": "Ready",
            "GrafanaDashboard/rep-dashboard": "Ready",
        }
        # the reader's password is in its Secret only: not in the objects, the status or an Event
        password = _password(harness, "rep")
        seen = [_get(harness, ds_path), _get(harness, db_path), harness.get("rep"), harness.events()]
        assert password not in json.dumps(seen)


@pytest.mark.parametrize("switch", [False, True], ids=["rbac.dashboards=false", "rbac.dashboards=true"])
def test_the_chart_lets_the_operator_manage_dashboards_only_with_its_switch(
    harness: Harness,
    control_plane: ControlPlane,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    switch: bool,
) -> None:
    """The operator logs in as the chart's ServiceAccount (namespaced rendering). Without the
    switch the ConfigMap is refused (403) and reported, and the SQL pipeline is Ready all the same;
    with it the ConfigMap is created and removed without a single refusal."""
    release_ns = unique_name("r")  # short: the certificate CN holds it
    control_plane.create_namespace(
        release_ns, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"}
    )
    values = {"rbac": {"scope": "namespaced", "dashboards": switch}, "watchNamespaces": [harness.ns]}
    docs = render_release(tmp_path, values, release_ns)
    monkeypatch.setenv("CHA_WATCH_NAMESPACES", operator_env(docs)["CHA_WATCH_NAMESPACES"])
    rbac = ChartRbac(control_plane, rbac_objects(docs), harness.ns)
    rbac.install()
    monkeypatch.setenv("KUBECONFIG", str(rbac.kubeconfig))
    path = _configmap(harness, "rb-dashboard")

    def failures() -> list[str]:
        return [e["message"] for e in harness.events() if e["reason"] == "DashboardsFailed"]

    with harness.operator():
        harness.create(_body(harness, "rb"))
        harness.wait_ready("rb")
        if switch:
            wait_for(lambda: _get(harness, path), 30, "the dashboard ConfigMap")
            harness.delete("rb")
            harness.wait_gone("rb")
            assert _get(harness, path) is None
            assert failures() == []
        else:
            (message, *_) = wait_for(failures, 30, "a DashboardsFailed event")
            assert "403" in message
            assert _get(harness, path) is None
            assert harness.condition("rb", "Ready")["status"] == "True"
