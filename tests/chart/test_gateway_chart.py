"""The chart's OCPP gateway: rendering, probes, Pod Security, RBAC, values schema, dry runs.

Rendering tests need only helm; the ``k8s`` ones run against the test bed's kube-apiserver
(server-side dry run, "restricted" Pod Security admission, SubjectAccessReviews).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chart_support import (
    CHART_DIR,
    dynamic_client,
    ensure_crds,
    find,
    helm,
    kube_version,
    one,
    render_chart,
    server_apply,
    server_dry_run,
    values_args,
)
from test_chart_dryrun import can, install_rbac, new_namespace

from charging_analytics import cli
from charging_analytics import constants as c

pytestmark = pytest.mark.helm

FILE_MODE = {"gateway": {"enabled": True, "tenants": {"secretName": "gw-tenants"}}}
K8S_MODE = {
    "gateway": {
        "enabled": True,
        "tenants": {"source": "kubernetes", "watchNamespaces": ["tenants-a", "tenants-b"]},
        "state": {"bootstrapServers": ["kafka-0.kafka:9092", "kafka-1.kafka:9092"]},
    }
}
FULL = {
    "gateway": {
        "enabled": True,
        "replicas": 3,
        "tenants": {"secretName": "gw-tenants"},
        "tls": {"secretName": "gw-tls"},
        "ingress": {"enabled": True, "host": "ocpp.example.com", "className": "nginx"},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
}
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
GATEWAY_NAME = "charging-analytics-operator-gateway"


def gateway_objects(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "gateway"]


def gateway_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in gateway_objects(docs) if d["kind"] == "Deployment"]
    return deployment


def gateway_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (ctr,) = gateway_deployment(docs)["spec"]["template"]["spec"]["containers"]
    return dict(ctr)


@pytest.mark.parametrize("values", [FILE_MODE, K8S_MODE, FULL], ids=["file", "kubernetes", "full"])
def test_chart_with_gateway_lints_cleanly(values: dict[str, Any], tmp_path: Path) -> None:
    args = ["lint", str(CHART_DIR), "--strict", "--kube-version", kube_version()]
    assert "1 chart(s) linted, 0 chart(s) failed" in helm(*args, *values_args(values, tmp_path)).stdout


def test_gateway_is_off_by_default(tmp_path: Path) -> None:
    assert gateway_objects(render_chart(tmp_path)) == []


def test_gateway_renders_its_own_objects_next_to_the_operator(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, FULL, api_versions=(SERVICE_MONITOR_API,))
    kinds = sorted(d["kind"] for d in gateway_objects(docs))
    assert kinds == [
        "Deployment",
        "Ingress",
        "PodDisruptionBudget",
        "Service",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
    for doc in gateway_objects(docs):
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == GATEWAY_NAME
    # Still exactly one operator Deployment, and no operator selector matches gateway pods.
    operator = [d for d in find(docs, "Deployment") if d not in gateway_objects(docs)]
    assert len(operator) == 1
    gateway_pod_labels = gateway_deployment(docs)["spec"]["template"]["metadata"]["labels"]
    for doc in docs:
        if doc in gateway_objects(docs):
            continue
        selector = doc.get("spec", {}).get("selector", {})
        selector = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
        if selector:
            assert not all(gateway_pod_labels.get(k) == v for k, v in selector.items()), doc["metadata"][
                "name"
            ]


def test_gateway_meets_pod_security_restricted_and_mounts_no_token_in_file_mode(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, FILE_MODE)
    pod = gateway_deployment(docs)["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = gateway_container(docs)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "cha-charging-analytics-operator-gateway"
    assert (
        pod["serviceAccountName"]
        != one([d for d in docs if d not in gateway_objects(docs)], "ServiceAccount")["metadata"]["name"]
    )


def test_gateway_probes_healthz_and_readyz_on_the_metrics_port(tmp_path: Path) -> None:
    ctr = gateway_container(render_chart(tmp_path, FILE_MODE))
    assert {p["name"]: p["containerPort"] for p in ctr["ports"]} == {"ocpp": 9000, "metrics": 9100}
    assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert ctr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_gateway_args_are_accepted_by_the_gateway_cli(tmp_path: Path) -> None:
    docs = render_chart(tmp_path, FULL, api_versions=(SERVICE_MONITOR_API,))
    ctr = gateway_container(docs)
    assert ctr["command"] == ["charging-analytics", "gateway"]
    assert "--tenants-file=/etc/charging-analytics/tenants/tenants.yaml" in ctr["args"]
    assert "--tls-cert=/etc/charging-analytics/tls/tls.crt" in ctr["args"]
    parser = cli.build_parser()
    parsed = parser.parse_args([ctr["command"][1], *ctr["args"]])
    assert parsed.port == 9000
    assert parsed.metrics_port == 9100
    assert parsed.log_format == "json"
    volumes = {v["name"]: v for v in gateway_deployment(docs)["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tenants"]["secret"]["secretName"] == "gw-tenants"
    assert volumes["tls"]["secret"]["secretName"] == "gw-tls"


def test_gateway_in_file_mode_has_no_rbac(tmp_path: Path) -> None:
    docs = gateway_objects(render_chart(tmp_path, FILE_MODE))
    assert not [d for d in docs if d["kind"] in {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}]
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_gateway_rbac_in_kubernetes_mode_grants_exactly_read_access_per_watched_namespace(
    tmp_path: Path,
) -> None:
    docs = gateway_objects(render_chart(tmp_path, K8S_MODE))
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    roles = find(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["tenants-a", "tenants-b"]
    for role in roles:
        granted = sorted(
            (group, resource, tuple(rule["verbs"]))
            for rule in role["rules"]
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        )
        assert granted == [
            ("", "secrets", ("list", "watch")),
            (c.GROUP, c.PLURAL, ("list", "watch")),
        ]
    bindings = find(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["tenants-a", "tenants-b"]
    for binding in bindings:
        assert binding["subjects"] == [
            {
                "kind": "ServiceAccount",
                "name": "cha-charging-analytics-operator-gateway",
                "namespace": "cha-system",
            }
        ]
    pod = gateway_deployment(docs)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["CHA_WATCH_NAMESPACES"] == "tenants-a,tenants-b"
    args = pod["containers"][0]["args"]
    assert not any(a.startswith("--tenants-file") for a in args)
    parsed = cli.build_parser().parse_args([pod["containers"][0]["command"][1], *args])
    assert parsed.kubernetes is True
    assert parsed.state_bootstrap_servers == "kafka-0.kafka:9092,kafka-1.kafka:9092"
    assert (parsed.state_topic, parsed.heartbeat_interval) == ("charging-analytics-gateway-state", 300)


def test_gateway_service_monitor_needs_the_prometheus_operator_api(tmp_path: Path) -> None:
    assert not find(gateway_objects(render_chart(tmp_path, FULL)), "ServiceMonitor")
    docs = gateway_objects(render_chart(tmp_path, FULL, api_versions=(SERVICE_MONITOR_API,)))
    monitor = one(docs, "ServiceMonitor")
    (metrics_service,) = [s for s in find(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    labels = metrics_service["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    (ocpp_service,) = [s for s in find(docs, "Service") if not s["metadata"]["name"].endswith("-metrics")]
    assert not all(
        ocpp_service["metadata"]["labels"].get(k) == v
        for k, v in monitor["spec"]["selector"]["matchLabels"].items()
    )


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"gateway": {"enabled": True}}, "secretName"),
        ({"gateway": {"enabled": True, "tenants": {"source": "kubernetes"}}}, "watchNamespaces"),
        (
            {"gateway": {"enabled": True, "tenants": {"source": "kubernetes", "watchNamespaces": ["a"]}}},
            "gateway.state.bootstrapServers",
        ),
        ({"gateway": {"enabled": True, "tenants": {"source": "etcd"}}}, "source"),
        ({"gateway": {"enabled": True, "tenants": {"secretName": "x"}, "port": 0}}, "port"),
        ({"gateway": {"enabled": True, "tenants": {"secretName": "x"}, "replicaz": 2}}, "replicaz"),
        (
            {"gateway": {"enabled": True, "tenants": {"secretName": "x"}, "ingress": {"enabled": True}}},
            "gateway.ingress.host",
        ),
    ],
)
def test_gateway_values_are_validated(values: dict[str, Any], fragment: str, tmp_path: Path) -> None:
    proc = helm("template", "cha", str(CHART_DIR), *values_args(values, tmp_path), check=False)
    assert proc.returncode != 0
    assert fragment in proc.stderr


# --------------------------------------------------------------------------------------------
# Against the real kube-apiserver
# --------------------------------------------------------------------------------------------


@pytest.mark.k8s
@pytest.mark.parametrize("mode", ["file", "kubernetes"])
def test_gateway_manifests_pass_server_side_dry_run(
    mode: str, kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    ensure_crds(kube_api, sorted((CHART_DIR / "crds").glob("*.yaml")))
    values = FILE_MODE
    if mode == "kubernetes":
        values = {
            "gateway": {
                "enabled": True,
                "tenants": {"source": "kubernetes", "watchNamespaces": [new_namespace(kube_api)]},
                "state": {"bootstrapServers": ["kafka:9092"]},
                "ingress": {"enabled": True, "host": "ocpp.example.com"},
            }
        }
    docs = gateway_objects(render_chart(tmp_path, values, namespace=namespace))
    dyn = dynamic_client(kube_api)
    answered = [server_dry_run(dyn, doc) for doc in docs]
    assert [(a["kind"], a["metadata"]["name"]) for a in answered] == [
        (d["kind"], d["metadata"]["name"]) for d in docs
    ]


@pytest.mark.k8s
def test_gateway_pod_is_admitted_under_restricted_pod_security(kube_api: Any, tmp_path: Path) -> None:
    from kubernetes.dynamic.exceptions import ForbiddenError

    ns = new_namespace(
        kube_api,
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )
    docs = gateway_objects(render_chart(tmp_path, FILE_MODE, namespace=ns))
    dyn = dynamic_client(kube_api)
    server_apply(dyn, one(docs, "ServiceAccount"), dry_run=False)
    template = gateway_deployment(docs)["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "gateway-pod-security",
            "namespace": ns,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }
    server_dry_run(dyn, pod)
    pod["spec"]["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    with pytest.raises(ForbiddenError, match="capabilities"):
        server_dry_run(dyn, pod)


@pytest.mark.k8s
def test_gateway_rbac_reads_tenants_and_secrets_only_in_watched_namespaces(
    kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    watched = [new_namespace(kube_api), new_namespace(kube_api)]
    values = {
        "gateway": {
            "enabled": True,
            "tenants": {"source": "kubernetes", "watchNamespaces": watched},
            "state": {"bootstrapServers": ["kafka:9092"]},
        }
    }
    docs = gateway_objects(render_chart(tmp_path, values, namespace=namespace))
    cluster_scoped: list[tuple[str, str]] = []
    install_rbac(kube_api, docs, cluster_scoped)
    assert cluster_scoped == []
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    group = c.GROUP
    for ns in watched:
        for verb in ("list", "watch"):
            assert can(kube_api, namespace, sa, verb, c.PLURAL, group=group, namespace=ns)
            assert can(kube_api, namespace, sa, verb, "secrets", namespace=ns)
        for verb in ("get", "create", "update", "patch", "delete"):
            assert not can(kube_api, namespace, sa, verb, c.PLURAL, group=group, namespace=ns)
            assert not can(kube_api, namespace, sa, verb, "secrets", namespace=ns)
        assert not can(
            kube_api,
            namespace,
            sa,
            "patch",
            c.PLURAL,
            group=group,
            namespace=ns,
            subresource="status",
        )
        assert not can(kube_api, namespace, sa, "list", "configmaps", namespace=ns)
    other = new_namespace(kube_api)
    assert not can(kube_api, namespace, sa, "get", "secrets", namespace=other)
    assert not can(kube_api, namespace, sa, "list", c.PLURAL, group=group)
    assert not can(kube_api, namespace, sa, "list", "secrets")
    assert not can(kube_api, namespace, sa, "list", "namespaces")
