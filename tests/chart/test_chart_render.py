"""The Helm chart: lint, render, Pod Security, RBAC per mode, values schema, CRD copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    ARGOCD_DIR,
    CHART_DIR,
    CRDS_DIR,
    HEALTH_KEY,
    argocd_cm_patch_text,
    find,
    helm,
    kube_version,
    one,
    render_chart,
    values_args,
)

from charging_analytics import constants as c
from charging_analytics.crd import CRD_FILENAME

pytestmark = pytest.mark.helm

SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
CRD_FILE = CRD_FILENAME

NAMESPACED = {"rbac": {"scope": "namespaced"}, "watchNamespaces": ["tenants-a", "tenants-b"]}
PEERED = {"replicas": 2}
NAMESPACED_PEERED = {**NAMESPACED, "replicas": 3, "peering": {"name": "cha-peers"}}
SERVICE_MONITOR = {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
WITH_CREDENTIALS = {"risingwave": {"host": "rw.example.internal", "credentialsSecret": {"name": "rw-admin"}}}

VALUE_SETS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "default": ({}, ()),
    "namespaced-two-namespaces": (NAMESPACED, ()),
    "replicas-2-peering": (PEERED, ()),
    "namespaced-peering": (NAMESPACED_PEERED, ()),
    "servicemonitor": (SERVICE_MONITOR, (SERVICE_MONITOR_API,)),
    "default-rw-credentials": (WITH_CREDENTIALS, ()),
}


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = one(docs, "Deployment")
    (ctr,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(ctr)


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


def rules_of(role: dict[str, Any]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [
        (group, resource, tuple(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


# --------------------------------------------------------------------------------------------
# lint and render
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_lints_cleanly_with_values(name: str, tmp_path: Path) -> None:
    # helm lint has no --api-versions; the ServiceMonitor set is linted with the flag on (the
    # template then renders nothing) and rendered with the API present by the test below.
    values, _ = VALUE_SETS[name]
    args = ["lint", str(CHART_DIR), "--strict", "--kube-version", kube_version()]
    out = helm(*args, *values_args(values, tmp_path)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_renders_only_known_kinds_with_labels(name: str, tmp_path: Path) -> None:
    values, apis = VALUE_SETS[name]
    docs = render_chart(tmp_path, values, api_versions=apis)
    allowed = {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "KopfPeering",
        "ClusterKopfPeering",
    }
    assert {d["kind"] for d in docs} <= allowed
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "charging-analytics-operator"
        assert labels["app.kubernetes.io/instance"] == "cha"


def test_chart_refuses_kubernetes_older_than_1_30() -> None:
    proc = helm("template", "cha", str(CHART_DIR), "--kube-version", "1.29.5", check=False)
    assert proc.returncode != 0
    assert "kubeVersion" in proc.stderr or "incompatible" in proc.stderr


# --------------------------------------------------------------------------------------------
# Deployment
# --------------------------------------------------------------------------------------------


def test_deployment_meets_pod_security_restricted(tmp_path: Path) -> None:
    docs = render_chart(tmp_path)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork")
    assert not pod.get("hostPID")
    assert not pod.get("hostIPC")
    ctr = container(docs)
    sc = ctr["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    tmp = {v["name"]: v for v in pod["volumes"]}["tmp"]
    assert "emptyDir" in tmp
    assert {"name": "tmp", "mountPath": "/tmp"} in ctr["volumeMounts"]


def test_deployment_probes_kopf_liveness_endpoint_and_exposes_metrics(tmp_path: Path) -> None:
    ctr = container(render_chart(tmp_path))
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    assert ports == {"healthz": 8080, "metrics": 9090}
    for probe in ("livenessProbe", "readinessProbe"):
        assert ctr[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert "--liveness=http://0.0.0.0:8080/healthz" in ctr["args"]
    assert ctr["resources"]["requests"]["cpu"]
    assert ctr["resources"]["limits"]["memory"]


def test_single_replica_runs_standalone_cluster_wide_with_recreate_strategy(tmp_path: Path) -> None:
    docs = render_chart(tmp_path)
    ctr = container(docs)
    assert ctr["command"] == ["charging-analytics", "operator"]
    assert "--all-namespaces" in ctr["args"]
    assert "--standalone" in ctr["args"]
    assert not [a for a in ctr["args"] if a.startswith(("--namespace", "--peering"))]
    assert one(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not find(docs, "PodDisruptionBudget")
    assert not find(docs, "ClusterKopfPeering")
    assert not find(docs, "KopfPeering")


def test_replicas_above_one_use_cluster_peering_and_pdb(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, PEERED)
    ctr = container(docs)
    derived = "cha-system-cha-charging-analytics-operator"  # <namespace>-<fullname>: cluster-scoped
    assert f"--peering={derived}" in ctr["args"]
    assert "--standalone" not in ctr["args"]
    assert env_of(docs)["CHA_PEERING_NAME"] == derived
    (peering,) = find(docs, "ClusterKopfPeering")
    assert peering["apiVersion"] == "kopf.dev/v1"
    assert peering["metadata"]["name"] == derived
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert (
        pdb["spec"]["selector"]["matchLabels"] == one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert one(docs, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"


def test_namespaced_peering_uses_one_kopfpeering_per_watched_namespace(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, NAMESPACED_PEERED)
    peerings = find(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["tenants-a", "tenants-b"]
    assert {p["metadata"]["name"] for p in peerings} == {"cha-peers"}
    assert not find(docs, "ClusterKopfPeering")
    for role in find(docs, "Role"):
        assert ("kopf.dev", "kopfpeerings", ("get", "list", "watch", "patch")) in rules_of(role)


def test_operator_configuration_env_vars(tmp_path: Path) -> None:
    env = env_of(render_chart(tmp_path, WITH_CREDENTIALS))
    assert env["CHA_WATCH_NAMESPACES"] == ""
    assert env["CHA_DEFAULT_RW_HOST"] == "rw.example.internal"
    assert env["CHA_DEFAULT_RW_PORT"] == "4566"
    assert env["CHA_DEFAULT_RW_DATABASE"] == "dev"
    assert env["CHA_DEFAULT_RW_SSLMODE"] == "prefer"
    assert env["CHA_DEFAULT_RW_USER"] == {"secretKeyRef": {"name": "rw-admin", "key": "username"}}
    assert env["CHA_DEFAULT_RW_PASSWORD"] == {"secretKeyRef": {"name": "rw-admin", "key": "password"}}
    assert env["CHA_DRIFT_INTERVAL_SECONDS"] == "60"
    assert env["CHA_CATALOG_CACHE_SECONDS"] == "60"
    assert env["CHA_LOG_FORMAT"] == "json"
    assert env["CHA_METRICS_PORT"] == "9090"
    assert all(isinstance(v, str | dict) for v in env.values())


def test_default_endpoint_without_secret_sets_no_credentials(tmp_path: Path) -> None:
    env = env_of(render_chart(tmp_path))
    assert "CHA_DEFAULT_RW_USER" not in env
    assert "CHA_DEFAULT_RW_PASSWORD" not in env
    assert "CHA_PEERING_NAME" not in env


# --------------------------------------------------------------------------------------------
# RBAC
# --------------------------------------------------------------------------------------------

CR_RULES = {
    (c.GROUP, c.PLURAL, ("get", "list", "watch", "patch")),
    (c.GROUP, f"{c.PLURAL}/status", ("patch",)),
    ("", "secrets", ("get", "list", "watch")),
    ("", "secrets", ("create", "patch")),
    ("", "events", ("create",)),
}


def test_cluster_rbac_grants_exactly_the_operator_needs(tmp_path: Path) -> None:
    docs = render_chart(tmp_path)
    role = one(docs, "ClusterRole")
    assert set(rules_of(role)) == CR_RULES | {
        ("apiextensions.k8s.io", "customresourcedefinitions", ("list", "watch")),
    }
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": one(docs, "ServiceAccount")["metadata"]["name"],
            "namespace": "cha-system",
        }
    ]
    assert not find(docs, "Role")
    assert not find(docs, "RoleBinding")


DASHBOARD_RULES = {
    ("", "configmaps", ("get", "list", "create", "update", "delete")),
    ("grafana.integreatly.org", "grafanadashboards", ("get", "list", "create", "update", "delete")),
    ("grafana.integreatly.org", "grafanadatasources", ("get", "list", "create", "update", "delete")),
}


def test_dashboard_rbac_is_rendered_only_when_enabled(tmp_path: Path) -> None:
    default = set(rules_of(one(render_chart(tmp_path), "ClusterRole")))
    assert not default & DASHBOARD_RULES
    enabled = set(rules_of(one(render_chart(tmp_path, {"rbac": {"dashboards": True}}), "ClusterRole")))
    assert enabled - default == DASHBOARD_RULES


def test_cluster_rbac_with_peering_adds_clusterkopfpeerings(tmp_path: Path) -> None:
    rules = set(rules_of(one(render_chart(tmp_path, PEERED), "ClusterRole")))
    assert ("kopf.dev", "clusterkopfpeerings", ("get", "list", "watch", "patch")) in rules
    assert not any(resource == "kopfpeerings" for _, resource, _ in rules)


def test_cluster_scope_with_watch_namespaces_grants_only_the_namespaced_rules(tmp_path: Path) -> None:
    """The Deployment sets CHA_WATCH_NAMESPACES, so the operator turns Kopf's cluster scanning
    off: it never lists or watches namespaces or CRDs, and the chart grants neither
    (docs/rbac.md, "Removed")."""
    docs = render_chart(tmp_path, {"watchNamespaces": ["tenants-a"]})
    assert set(rules_of(one(docs, "ClusterRole"))) == CR_RULES
    assert "--namespace=tenants-a" in container(docs)["args"]
    assert "--all-namespaces" not in container(docs)["args"]
    assert env_of(docs)["CHA_WATCH_NAMESPACES"] == "tenants-a"


def test_no_rendering_grants_anything_on_namespaces(tmp_path: Path) -> None:
    for values in ({}, {"watchNamespaces": ["tenants-a"]}, NAMESPACED, PEERED):
        for kind in ("ClusterRole", "Role"):
            for role in find(render_chart(tmp_path, values), kind):
                assert not any(resource == "namespaces" for _, resource, _ in rules_of(role)), values


def test_namespaced_rbac_creates_role_per_namespace_and_nothing_cluster_scoped(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, NAMESPACED)
    assert not find(docs, "ClusterRole")
    assert not find(docs, "ClusterRoleBinding")
    roles = find(docs, "Role")
    bindings = find(docs, "RoleBinding")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["tenants-a", "tenants-b"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["tenants-a", "tenants-b"]
    for role in roles:
        assert set(rules_of(role)) == CR_RULES
    for binding in bindings:
        assert binding["subjects"][0]["namespace"] == "cha-system"
    args = container(docs)["args"]
    assert "--namespace=tenants-a" in args
    assert "--namespace=tenants-b" in args
    assert "--all-namespaces" not in args
    assert env_of(docs)["CHA_WATCH_NAMESPACES"] == "tenants-a,tenants-b"


def test_secret_writes_can_be_turned_off(tmp_path: Path) -> None:
    rules = set(rules_of(one(render_chart(tmp_path, {"rbac": {"secretWrites": False}}), "ClusterRole")))
    assert ("", "secrets", ("get", "list", "watch")) in rules
    assert not any(r == "secrets" and "create" in verbs for _, r, verbs in rules)


def test_rbac_has_no_wildcards_and_no_delete(tmp_path: Path) -> None:
    for values in ({}, NAMESPACED_PEERED, PEERED):
        for doc in render_chart(tmp_path, values):
            if doc["kind"] not in ("ClusterRole", "Role"):
                continue
            for group, resource, verbs in rules_of(doc):
                assert "*" not in (group, resource, *verbs)
                assert "delete" not in verbs
                assert "deletecollection" not in verbs
                assert "escalate" not in verbs
                assert "bind" not in verbs


def test_every_rbac_rule_has_a_comment_explaining_it() -> None:
    sources = (CHART_DIR / "templates" / "_helpers.tpl").read_text() + (
        CHART_DIR / "templates" / "rbac.yaml"
    ).read_text()
    lines = sources.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- apiGroups:"):
            above = [x.strip() for x in lines[max(0, i - 3) : i]]
            assert any(x.startswith("#") for x in above), f"rule without a comment: {line.strip()}"


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def test_service_monitor_needs_flag_and_prometheus_operator_api(tmp_path: Path) -> None:
    assert not find(render_chart(tmp_path, SERVICE_MONITOR), "ServiceMonitor")
    assert not find(render_chart(tmp_path, {}, api_versions=(SERVICE_MONITOR_API,)), "ServiceMonitor")
    docs = render_chart(tmp_path, SERVICE_MONITOR, api_versions=(SERVICE_MONITOR_API,))
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"


def test_metrics_service_selects_the_operator_pods(tmp_path: Path) -> None:
    docs = render_chart(tmp_path)
    service = one(docs, "Service")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


# --------------------------------------------------------------------------------------------
# values.schema.json
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"replicas": "two"}, "replicas"),
        ({"replicas": 0}, "replicas"),
        ({"rbac": {"scope": "everything"}}, "scope"),
        ({"unknownTopLevel": True}, "unknownTopLevel"),
        ({"image": {"repository": "x", "tags": "typo"}}, "tags"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "watchNamespaces"),
        ({"rbac": {"scope": "namespaced"}}, "watchNamespaces"),
        ({"risingwave": {"host": "rw", "sslmode": "sometimes"}}, "sslmode"),
        ({"operator": {"logFormat": "xml"}}, "logFormat"),
    ],
    ids=[
        "replicas-string",
        "replicas-zero",
        "rbac-scope",
        "unknown-key",
        "image-typo",
        "namespace-name",
        "namespaced-without-namespaces",
        "sslmode",
        "log-format",
    ],
)
def test_values_schema_rejects_bad_values(values: dict[str, Any], fragment: str, tmp_path: Path) -> None:
    for command in ("lint", "template"):
        args = [command, *(["cha"] if command == "template" else []), str(CHART_DIR)]
        proc = helm(*args, "--kube-version", kube_version(), *values_args(values, tmp_path), check=False)
        assert proc.returncode != 0, f"helm {command} accepted {values}"
        assert fragment in proc.stdout + proc.stderr


def test_values_yaml_documents_every_schema_property() -> None:
    import json

    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert set(schema["properties"]) - {"global"} == set(values)


# --------------------------------------------------------------------------------------------
# CRDs
# --------------------------------------------------------------------------------------------


def test_chart_crd_is_byte_identical_to_generated_crd() -> None:
    assert (CHART_DIR / "crds" / CRD_FILE).read_bytes() == (CRDS_DIR / CRD_FILE).read_bytes()


def test_chart_ships_kopf_peering_crds_matching_peering_objects() -> None:
    docs = list(yaml.safe_load_all((CHART_DIR / "crds" / "kopf-peerings.yaml").read_text()))
    by_kind = {d["spec"]["names"]["kind"]: d for d in docs}
    assert set(by_kind) == {"ClusterKopfPeering", "KopfPeering"}
    assert by_kind["ClusterKopfPeering"]["spec"]["scope"] == "Cluster"
    assert by_kind["KopfPeering"]["spec"]["scope"] == "Namespaced"
    for doc in docs:
        assert doc["spec"]["group"] == "kopf.dev"
        assert doc["metadata"]["name"] == f"{doc['spec']['names']['plural']}.kopf.dev"
        assert [v["name"] for v in doc["spec"]["versions"]] == ["v1"]


def test_argocd_cm_patch_embeds_the_tested_health_script() -> None:
    text = (ARGOCD_DIR / "argocd-cm-patch.yaml").read_text()
    assert text == argocd_cm_patch_text(), (
        "regenerate: python3 tests/chart/chart_support.py write-argocd-cm-patch"
    )
    patch = yaml.safe_load(text)
    assert patch["kind"] == "ConfigMap"
    assert patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"][HEALTH_KEY] == (ARGOCD_DIR / "health.lua").read_text()


# --------------------------------------------------------------------------------------------
# Contract with the operator: its CLI and its settings accept what the chart passes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_operator_cli_accepts_rendered_command_and_args(name: str, tmp_path: Path) -> None:
    from charging_analytics.cli import build_parser

    values, apis = VALUE_SETS[name]
    ctr = container(render_chart(tmp_path, values, api_versions=apis))
    program, *command = ctr["command"]
    assert program == "charging-analytics"
    args = build_parser().parse_args([*command, *ctr["args"]])
    assert args.command == "operator"
    assert args.liveness == build_parser().parse_args(["operator"]).liveness  # the CLI's own default
    assert args.all_namespaces is not bool(values.get("watchNamespaces"))
    assert args.namespace == values.get("watchNamespaces", [])
    assert args.standalone is (values.get("replicas", 1) == 1)


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_operator_settings_load_from_rendered_env(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charging_analytics.operator.settings import OperatorSettings

    values, apis = VALUE_SETS[name]
    env = env_of(render_chart(tmp_path, values, api_versions=apis))
    # Read by the operator's own code (peering priority, event source), not by its settings.
    informational = {"CHA_POD_NAME", "CHA_POD_NAMESPACE"}
    for key, value in env.items():
        assert key.startswith("CHA_")
        if key in informational:
            continue
        assert key[4:].lower() in OperatorSettings.model_fields, f"{key} is not an operator setting"
        monkeypatch.setenv(key, value if isinstance(value, str) else "from-secret")
    settings = OperatorSettings()
    assert settings.default_rw_host == (
        values.get("risingwave", {}).get("host") or "risingwave-frontend.risingwave.svc"
    )
    assert settings.log_format == "json"
    assert settings.metrics_port == 9090


def test_two_releases_with_replicas_never_share_a_peering_name(tmp_path: Path) -> None:
    names = set()
    for release, namespace in (("cha", "cha-system"), ("cha-b", "cha-system"), ("cha", "other")):
        docs = render_chart(tmp_path, PEERED, release=release, namespace=namespace)
        (peering,) = find(docs, "ClusterKopfPeering")
        assert f"--peering={peering['metadata']['name']}" in container(docs)["args"]
        names.add(peering["metadata"]["name"])
    assert len(names) == 3


def test_every_operator_setting_is_set_from_values(tmp_path: Path) -> None:
    """No setting is reachable only through extraEnv: each OperatorSettings field has a value."""
    from charging_analytics.operator.settings import OperatorSettings

    env = env_of(render_chart(tmp_path, {}))
    wanted = {f"CHA_{name.upper()}" for name in OperatorSettings.model_fields}
    # the default endpoint's user/password come from a Secret only when one is named
    optional = {"CHA_DEFAULT_RW_USER", "CHA_DEFAULT_RW_PASSWORD"}
    # ... and its TLS files only when a TLS Secret is named
    tls = {"CHA_DEFAULT_RW_SSLROOTCERT", "CHA_DEFAULT_RW_SSLCERT", "CHA_DEFAULT_RW_SSLKEY"}
    # ... and the peering object only when replicas peer
    peering = {"CHA_PEERING_NAME"}
    assert wanted - optional - tls - peering - set(env) == set()
    assert peering <= set(env_of(render_chart(tmp_path, PEERED)))
    with_secret = env_of(render_chart(tmp_path, {"risingwave": {"credentialsSecret": {"name": "rw"}}}))
    assert optional <= set(with_secret)
    with_tls = env_of(render_chart(tmp_path, {"risingwave": {"tls": RW_TLS}}))
    assert tls <= set(with_tls)


def test_the_charts_defaults_are_the_operators_own_except_the_endpoint_host_and_log_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values.yaml repeats the settings' defaults: each one reads back as OperatorSettings' default."""
    from charging_analytics.operator.settings import OperatorSettings

    # the chart's deliberate choices: the in-cluster RisingWave service, and logs for a collector
    chosen = {"default_rw_host": "risingwave-frontend.risingwave.svc", "log_format": "json"}
    for key, value in env_of(render_chart(tmp_path, {})).items():
        if isinstance(value, str):
            monkeypatch.setenv(key, value)
    loaded = OperatorSettings()
    for name, field in OperatorSettings.model_fields.items():
        assert getattr(loaded, name) == chosen.get(name, field.default), f"values.yaml's default of {name}"


RW_TLS = {"secretName": "rw-tls", "caKey": "ca.crt", "certificateKey": "tls.crt", "privateKeyKey": "tls.key"}


def test_the_default_endpoints_tls_secret_is_mounted_read_only_where_the_env_points(
    tmp_path: Path,
) -> None:
    docs = render_chart(tmp_path, {"risingwave": {"tls": RW_TLS}})
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "risingwave-tls"]
    assert volume["secret"]["secretName"] == "rw-tls"
    # root-owned, group fsGroup, 0440: what libpq accepts for a key file, and readable by the operator
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == 10001
    items = {i["key"]: i["path"] for i in volume["secret"]["items"]}
    assert items == {"ca.crt": "ca.pem", "tls.crt": "certificate.pem", "tls.key": "private-key.pem"}
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["name"] == "risingwave-tls"]
    assert mount["readOnly"] is True
    env = env_of(docs)
    for var, path in (
        ("CHA_DEFAULT_RW_SSLROOTCERT", "ca.pem"),
        ("CHA_DEFAULT_RW_SSLCERT", "certificate.pem"),
        ("CHA_DEFAULT_RW_SSLKEY", "private-key.pem"),
    ):
        assert env[var] == f"{mount['mountPath']}/{path}"
    ca_only = render_chart(tmp_path, {"risingwave": {"tls": {"secretName": "rw-tls"}}})
    assert set(env_of(ca_only)) & {"CHA_DEFAULT_RW_SSLCERT", "CHA_DEFAULT_RW_SSLKEY"} == set()
    assert "CHA_DEFAULT_RW_SSLROOTCERT" in env_of(ca_only)
    without = render_chart(tmp_path, {})
    assert "risingwave-tls" not in {
        v["name"] for v in one(without, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
