"""The chart against the test bed's real kube-apiserver.

Every rendered manifest goes through a server-side apply dry-run (schemas, strict field
validation, admission, RBAC escalation checks); the operator's pod is admitted under the
"restricted" Pod Security Standard; the RBAC the chart grants is checked with
SubjectAccessReviews against the real authorizer.

Fixtures ``kube_api`` (a ``kubernetes.client.ApiClient`` with admin rights) and ``namespace`` (a
fresh namespace name) come from ``tests/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import (
    CHART_DIR,
    dynamic_client,
    ensure_crds,
    find,
    helm,
    one,
    render_chart,
    server_apply,
    server_dry_run,
)

from charging_analytics import constants as c

pytestmark = [pytest.mark.k8s, pytest.mark.helm]

CHART_CRDS = sorted((CHART_DIR / "crds").glob("*.yaml"))
RELEASE = "cha"

# Value sets that can be dry-run here: the ServiceMonitor needs the Prometheus Operator's CRD,
# which the test bed does not have (its rendering is covered in test_chart_render.py).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "cluster-peering": {"replicas": 2},
    "namespaced": {"rbac": {"scope": "namespaced"}},
    "namespaced-peering": {"rbac": {"scope": "namespaced"}, "replicas": 2, "peering": {"name": "cha-peers"}},
    "cluster-scope-watching-namespaces": {"replicas": 2},
    "default-rw-credentials": {
        "risingwave": {"host": "rw.example.internal", "credentialsSecret": {"name": "rw"}}
    },
}
NEEDS_WATCH_NAMESPACES = {"namespaced", "namespaced-peering", "cluster-scope-watching-namespaces"}


def new_namespace(kube_api: Any, labels: dict[str, str] | None = None) -> str:
    from kubernetes import client

    name = f"cha-chart-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(kube_api).create_namespace({"metadata": {"name": name, "labels": labels or {}}})
    return name


@pytest.fixture
def chart_crds(kube_api: Any) -> None:
    """The chart's crds/ (ChargingAnalytics + Kopf peering), as ``helm install`` would create them.

    They stay installed: CRDs without objects are inert (Kopf runs standalone unless a peering
    object exists), and removing them while other tests run would race with them.
    """
    ensure_crds(kube_api, CHART_CRDS)


@pytest.fixture
def cluster_objects(kube_api: Any) -> Iterator[list[tuple[str, str]]]:
    """Cluster-scoped objects a test really created, deleted afterwards."""
    from kubernetes import client

    created: list[tuple[str, str]] = []
    yield created
    rbac = client.RbacAuthorizationV1Api(kube_api)
    for kind, name in reversed(created):
        if kind == "ClusterRoleBinding":
            rbac.delete_cluster_role_binding(name)
        elif kind == "ClusterRole":
            rbac.delete_cluster_role(name)


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_rendered_manifest_passes_server_side_dry_run(
    name: str, kube_api: Any, namespace: str, chart_crds: None, tmp_path: Path
) -> None:
    values = dict(VALUE_SETS[name])
    if name in NEEDS_WATCH_NAMESPACES:
        values["watchNamespaces"] = [new_namespace(kube_api), new_namespace(kube_api)]
    docs = render_chart(tmp_path, values, release=RELEASE, namespace=namespace)
    dyn = dynamic_client(kube_api)
    for crd_file in CHART_CRDS:
        for crd in yaml.safe_load_all(crd_file.read_text()):
            server_dry_run(dyn, crd)
    answered = [server_dry_run(dyn, doc) for doc in docs]
    assert [(a["kind"], a["metadata"]["name"]) for a in answered] == [
        (d["kind"], d["metadata"]["name"]) for d in docs
    ]
    assert one(docs, "Deployment")["metadata"]["namespace"] == namespace


def test_operator_pod_is_admitted_under_restricted_pod_security(kube_api: Any, tmp_path: Path) -> None:
    from kubernetes.dynamic.exceptions import ForbiddenError

    ns = new_namespace(
        kube_api,
        {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        },
    )
    docs = render_chart(tmp_path, release=RELEASE, namespace=ns)
    dyn = dynamic_client(kube_api)
    server_apply(dyn, one(docs, "ServiceAccount"), dry_run=False)
    template = one(docs, "Deployment")["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "operator-pod-security",
            "namespace": ns,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }
    server_dry_run(dyn, pod)

    # The same pod with privilege escalation allowed must be refused: proves the namespace
    # really enforces "restricted" on this API server.
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    with pytest.raises(ForbiddenError, match="allowPrivilegeEscalation"):
        server_dry_run(dyn, pod)


# --------------------------------------------------------------------------------------------
# RBAC, checked by the API server's authorizer
# --------------------------------------------------------------------------------------------


def can(
    kube_api: Any,
    sa_ns: str,
    sa: str,
    verb: str,
    resource: str,
    *,
    group: str = "",
    namespace: str | None = None,
    subresource: str = "",
) -> bool:
    from kubernetes import client

    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{sa_ns}:{sa}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, group=group, resource=resource, namespace=namespace, subresource=subresource
            ),
        )
    )
    answer = client.AuthorizationV1Api(kube_api).create_subject_access_review(review)
    return bool(answer.status.allowed)


def install_rbac(kube_api: Any, docs: list[dict[str, Any]], created: list[tuple[str, str]]) -> None:
    dyn = dynamic_client(kube_api)
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        for doc in find(docs, kind):
            server_apply(dyn, doc, dry_run=False)
            if kind.startswith("Cluster"):
                created.append((kind, doc["metadata"]["name"]))


def test_cluster_rbac_lets_the_operator_serve_every_namespace_and_nothing_more(
    kube_api: Any, namespace: str, cluster_objects: list[tuple[str, str]], tmp_path: Path
) -> None:
    docs = render_chart(tmp_path, {"replicas": 2}, release=RELEASE, namespace=namespace)
    install_rbac(kube_api, docs, cluster_objects)
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    group = c.GROUP
    for verb in ("list", "watch"):
        assert can(kube_api, namespace, sa, verb, c.PLURAL, group=group)
    assert can(kube_api, namespace, sa, "patch", c.PLURAL, group=group, namespace="any-tenant")
    assert can(
        kube_api,
        namespace,
        sa,
        "patch",
        c.PLURAL,
        group=group,
        namespace="t",
        subresource="status",
    )
    assert can(kube_api, namespace, sa, "watch", "customresourcedefinitions", group="apiextensions.k8s.io")
    assert can(kube_api, namespace, sa, "patch", "clusterkopfpeerings", group="kopf.dev")
    assert can(kube_api, namespace, sa, "create", "events", namespace="t")
    assert not can(kube_api, namespace, sa, "create", "events", group="events.k8s.io", namespace="t")
    assert not can(kube_api, namespace, sa, "update", "secrets", namespace="t")
    assert can(kube_api, namespace, sa, "get", "secrets", namespace="t")
    # Not granted: rewriting or deleting a user's resource, deleting Secrets, anything else.
    assert not can(kube_api, namespace, sa, "update", c.PLURAL, group=group, namespace="t")
    assert not can(kube_api, namespace, sa, "delete", c.PLURAL, group=group, namespace="t")
    assert not can(kube_api, namespace, sa, "delete", "secrets", namespace="t")
    assert not can(kube_api, namespace, sa, "create", "pods", namespace="t")
    assert not can(
        kube_api, namespace, sa, "patch", "customresourcedefinitions", group="apiextensions.k8s.io"
    )
    assert not can(kube_api, namespace, sa, "list", "namespaces")


def test_cluster_rbac_with_watch_namespaces_grants_nothing_on_namespaces_or_crds(
    kube_api: Any, namespace: str, cluster_objects: list[tuple[str, str]], tmp_path: Path
) -> None:
    """With watchNamespaces the operator scans nothing (the Deployment sets CHA_WATCH_NAMESPACES),
    so the ClusterRole carries only the namespaced rules (docs/rbac.md, "Removed")."""
    watched = new_namespace(kube_api)
    docs = render_chart(tmp_path, {"watchNamespaces": [watched]}, release=RELEASE, namespace=namespace)
    install_rbac(kube_api, docs, cluster_objects)
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    group = c.GROUP
    assert can(kube_api, namespace, sa, "watch", c.PLURAL, group=group, namespace=watched)
    assert can(kube_api, namespace, sa, "watch", "secrets", namespace=watched)
    for verb in ("list", "watch"):
        assert not can(kube_api, namespace, sa, verb, "namespaces")
        assert not can(
            kube_api, namespace, sa, verb, "customresourcedefinitions", group="apiextensions.k8s.io"
        )


def test_namespaced_rbac_confines_the_operator_to_its_watch_namespaces(
    kube_api: Any, namespace: str, tmp_path: Path
) -> None:
    watched = [new_namespace(kube_api), new_namespace(kube_api)]
    values = {
        "rbac": {"scope": "namespaced", "secretWrites": False},
        "watchNamespaces": watched,
        "replicas": 2,
    }
    docs = render_chart(tmp_path, values, release=RELEASE, namespace=namespace)
    unused: list[tuple[str, str]] = []
    install_rbac(kube_api, docs, unused)
    assert unused == [], "namespaced mode must not create cluster-scoped RBAC"
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    group = c.GROUP
    for ns in watched:
        assert can(kube_api, namespace, sa, "watch", c.PLURAL, group=group, namespace=ns)
        assert can(
            kube_api,
            namespace,
            sa,
            "patch",
            c.PLURAL,
            group=group,
            namespace=ns,
            subresource="status",
        )
        assert can(kube_api, namespace, sa, "patch", "kopfpeerings", group="kopf.dev", namespace=ns)
        assert can(kube_api, namespace, sa, "watch", "secrets", namespace=ns)
        assert not can(kube_api, namespace, sa, "create", "secrets", namespace=ns)
    other = new_namespace(kube_api)
    assert not can(kube_api, namespace, sa, "list", c.PLURAL, group=group, namespace=other)
    assert not can(kube_api, namespace, sa, "list", c.PLURAL, group=group)
    assert not can(kube_api, namespace, sa, "get", "secrets", namespace=other)
    assert not can(kube_api, namespace, sa, "list", "customresourcedefinitions", group="apiextensions.k8s.io")
    assert not can(kube_api, namespace, sa, "list", "namespaces")


def test_helm_install_server_dry_run_against_the_cluster_prints_notes(
    control_plane: Any, namespace: str, chart_crds: None
) -> None:
    """``helm install --dry-run=server``: capabilities from the live cluster, NOTES rendered."""
    proc = helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        "--namespace",
        namespace,
        "--dry-run=server",
        "--kubeconfig",
        str(control_plane.kubeconfig),
        "--set",
        "replicas=2",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    )
    notes = proc.stdout.split("NOTES:", 1)[1]
    assert f"installed as {RELEASE}-charging-analytics-operator in namespace {namespace}" in notes
    peering = f"{namespace}-{RELEASE}-charging-analytics-operator"[:63].rstrip("-")
    assert f'peering through ClusterKopfPeering "{peering}"' in notes
    # The test bed has no Prometheus Operator: the ServiceMonitor is skipped, and NOTES say so.
    assert "no ServiceMonitor was created" in notes
    assert "kind: ServiceMonitor" not in proc.stdout
