"""The GitOps examples: kustomize overlays and Argo CD ApplicationSets render valid tenants.

No kustomize or Argo CD binary is available, so ``chart_support`` carries a deliberately minimal
kustomize (resources, namespace, name prefix/suffix, inline JSON6902 patches; anything else is an
error) and a renderer for ApplicationSet templates that accepts only ``{{ .field }}`` references.
The rendered ChargingAnalytics are checked with the Pydantic model and, with the ``k8s`` marker,
by a server-side dry-run against the test bed's kube-apiserver and the generated CRD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CRDS_DIR,
    GITOPS_DIR,
    REPO_ROOT,
    KustomizeError,
    apply_json6902,
    dynamic_client,
    ensure_crds,
    git_files_params,
    go_template,
    kustomize_build,
    render_application,
    server_dry_run,
)

from charging_analytics.crd import CRD_FILENAME
from charging_analytics.spec import ChargingAnalytics

OVERLAYS = GITOPS_DIR / "kustomize" / "overlays"
TENANTS = sorted(p.name for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").is_file())
APPSET_LIST = GITOPS_DIR / "argocd" / "applicationset.yaml"
APPSET_GIT_FILES = GITOPS_DIR / "argocd" / "applicationset-git-files.yaml"
CRD_PATH = CRDS_DIR / CRD_FILENAME


def tenant_cr(tenant: str) -> dict[str, Any]:
    docs = kustomize_build(OVERLAYS / tenant)
    assert [d["kind"] for d in docs] == ["ChargingAnalytics"]
    return docs[0]


def applications(appset_path: Path) -> list[dict[str, Any]]:
    """The Applications an ApplicationSet generates, from its list or git-files generator."""
    appset = yaml.safe_load(appset_path.read_text())
    assert appset["kind"] == "ApplicationSet"
    assert appset["spec"]["goTemplate"] is True
    assert appset["spec"]["goTemplateOptions"] == ["missingkey=error"]
    (generator,) = appset["spec"]["generators"]
    if "list" in generator:
        params = generator["list"]["elements"]
    else:
        (files,) = generator["git"]["files"]
        params = [git_files_params(p) for p in sorted(REPO_ROOT.glob(files["path"]))]
    assert params, f"{appset_path.name} generates no Application"
    return [render_application(appset["spec"]["template"], p) for p in params]


# --------------------------------------------------------------------------------------------
# kustomize overlays
# --------------------------------------------------------------------------------------------


def test_example_has_two_tenant_overlays() -> None:
    assert TENANTS == ["north", "south"]


@pytest.mark.parametrize("tenant", TENANTS)
def test_overlay_renders_a_charging_analytics_valid_for_the_model(tenant: str) -> None:
    cr = tenant_cr(tenant)
    model = ChargingAnalytics.model_validate(cr)
    assert model.spec.tenant == tenant
    assert cr["metadata"]["namespace"] == f"tenant-{tenant}"
    assert cr["metadata"]["name"] == f"{tenant}-charging-analytics"


@pytest.mark.parametrize("tenant", TENANTS)
def test_overlay_gives_the_tenant_its_own_topics_and_consumer_group(tenant: str) -> None:
    model = ChargingAnalytics.model_validate(tenant_cr(tenant))
    assert model.spec.kafka.events_topic == f"ocpp.{tenant}.events"
    assert model.spec.alerts.sinks.kafka is not None
    assert model.spec.alerts.sinks.kafka.topic == f"ocpp.{tenant}.alerts"
    assert model.spec.consumer_group_prefix == f"cha-{tenant}"


def test_overlays_differ_from_base_in_tenant_topics_and_tariffs() -> None:
    base = ChargingAnalytics.model_validate(kustomize_build(GITOPS_DIR / "kustomize" / "base")[0])
    north = ChargingAnalytics.model_validate(tenant_cr("north"))
    south = ChargingAnalytics.model_validate(tenant_cr("south"))
    assert base.spec.tenant not in {north.spec.tenant, south.spec.tenant}
    assert base.spec.analytics.tariffs != north.spec.analytics.tariffs
    assert (north.spec.analytics.tariffs.currency, south.spec.analytics.tariffs.currency) == ("EUR", "GBP")
    assert south.spec.on_drift == "Report"
    assert north.spec.on_drift == "Correct"
    assert north.spec.alerts.availability_below_percent == 75
    assert south.spec.analytics.revenue_window == "4h"
    # Everything not patched is inherited from the base.
    assert north.spec.kafka.bootstrap_servers == base.spec.kafka.bootstrap_servers
    assert south.spec.analytics.state_retention == base.spec.analytics.state_retention


def test_json6902_applier_follows_rfc6902_for_the_ops_used() -> None:
    doc = {"a": {"b": 1, "list": [1, 2]}}
    out = apply_json6902(
        doc,
        [
            {"op": "replace", "path": "/a/b", "value": 2},
            {"op": "add", "path": "/a/c~1d", "value": "slash"},
            {"op": "add", "path": "/a/list/-", "value": 3},
            {"op": "add", "path": "/a/list/0", "value": 0},
            {"op": "remove", "path": "/a/list/1"},
            {"op": "test", "path": "/a/b", "value": 2},
        ],
    )
    assert out == {"a": {"b": 2, "c/d": "slash", "list": [0, 2, 3]}}
    assert doc == {"a": {"b": 1, "list": [1, 2]}}, "the input must not be modified"


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "replace", "path": "/missing", "value": 1}],
        [{"op": "remove", "path": "/a/missing"}],
        [{"op": "add", "path": "/no/parent", "value": 1}],
        [{"op": "test", "path": "/a", "value": 2}],
        [{"op": "move", "from": "/a", "path": "/b"}],
    ],
    ids=["replace-missing", "remove-missing", "add-without-parent", "test-mismatch", "unsupported-op"],
)
def test_json6902_applier_rejects_what_kustomize_would_reject(ops: list[dict[str, Any]]) -> None:
    with pytest.raises(KustomizeError):
        apply_json6902({"a": 1}, ops)


def test_minimal_kustomize_refuses_fields_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\ncommonLabels: {a: b}\n")
    with pytest.raises(KustomizeError, match="commonLabels"):
        kustomize_build(tmp_path)


def test_minimal_kustomize_refuses_a_patch_that_matches_nothing(tmp_path: Path) -> None:
    base = GITOPS_DIR / "kustomize" / "base"
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [str(base)],
                "patches": [{"target": {"kind": "ChargingAnalytics", "name": "nope"}, "patch": "[]"}],
            }
        )
    )
    with pytest.raises(KustomizeError, match="matches no resource"):
        kustomize_build(tmp_path)


# --------------------------------------------------------------------------------------------
# Argo CD ApplicationSets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("appset", [APPSET_LIST, APPSET_GIT_FILES], ids=["list", "git-files"])
def test_applicationset_renders_one_valid_tenant_per_element(appset: Path) -> None:
    apps = applications(appset)
    assert sorted(a["metadata"]["name"] for a in apps) == [f"cha-{t}" for t in TENANTS]
    for app in apps:
        assert app["metadata"]["labels"]["analytics.evcharging.io/tenant"] in TENANTS
        spec = app["spec"]
        path = REPO_ROOT / spec["source"]["path"]
        assert (path / "kustomization.yaml").is_file(), f"{spec['source']['path']} is not a kustomize dir"
        (cr,) = kustomize_build(path)
        model = ChargingAnalytics.model_validate(cr)
        assert app["metadata"]["name"] == f"cha-{model.spec.tenant}"
        assert cr["metadata"]["namespace"] == spec["destination"]["namespace"]
        assert "CreateNamespace=true" in spec["syncPolicy"]["syncOptions"]


def test_both_applicationsets_generate_the_same_applications() -> None:
    assert applications(APPSET_LIST) == applications(APPSET_GIT_FILES)


def test_applicationsets_keep_tenants_when_the_applicationset_is_deleted() -> None:
    for path in (APPSET_LIST, APPSET_GIT_FILES):
        assert yaml.safe_load(path.read_text())["spec"]["syncPolicy"]["preserveResourcesOnDeletion"] is True


def test_go_template_renderer_fails_on_missing_keys_and_unsupported_actions() -> None:
    assert go_template(
        "cha-{{ .tenant }}-{{.path.basename}}", {"tenant": "n", "path": {"basename": "b"}}
    ) == ("cha-n-b")
    with pytest.raises(KeyError):
        go_template("{{.missing}}", {})
    with pytest.raises(ValueError, match="unsupported"):
        go_template("{{ .tenant | upper }}", {"tenant": "n"})


# --------------------------------------------------------------------------------------------
# Server-side dry-run on the real apiserver
# --------------------------------------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("tenant", TENANTS)
def test_overlay_passes_server_side_dry_run_against_the_crd(
    tenant: str, kube_api: Any, namespace: str
) -> None:
    ensure_crds(kube_api, [CRD_PATH])
    cr = tenant_cr(tenant)
    # The tenant namespaces of the example do not exist on the test bed; the fixture's does.
    result = server_dry_run(dynamic_client(kube_api), cr, namespace)
    assert result["metadata"]["namespace"] == namespace
    assert result["spec"]["tenant"] == tenant
    # The API server applied the CRD's defaults: what Argo CD will diff against.
    assert result["spec"]["suspend"] is False
    assert result["spec"]["readOnlyUser"] == {"enabled": False}


@pytest.mark.k8s
def test_dry_run_rejects_an_overlay_that_breaks_a_cel_rule(kube_api: Any, namespace: str) -> None:
    from kubernetes.dynamic.exceptions import UnprocessibleEntityError

    ensure_crds(kube_api, [CRD_PATH])
    cr = apply_json6902(tenant_cr("north"), [{"op": "replace", "path": "/spec/tenant", "value": "pg_north"}])
    with pytest.raises(UnprocessibleEntityError, match="reserved schema name"):
        server_dry_run(dynamic_client(kube_api), cr, namespace)
