"""The chart's RBAC on the real apiserver, and the operator authenticated as the chart's ServiceAccount.

``helm template`` renders the chart; only the RBAC objects (ServiceAccount, Role/ClusterRole and
their bindings) are applied, server-side, as admin. The operator then authenticates with a client
certificate carrying exactly the user name and groups the apiserver gives that ServiceAccount's
tokens (``system:serviceaccount:<ns>:<name>``; ``system:serviceaccounts``,
``system:serviceaccounts:<ns>``), so RBAC ServiceAccount subjects match it and nothing else does.
The settings the operator's API calls depend on (``CHA_WATCH_NAMESPACES``) come from the rendered
Deployment (:func:`operator_env`), as they would in the cluster.

A permission is a triple ``(apiGroup, resource, verb)``; a subresource is part of the resource
(``charginganalytics/status``), as in RBAC rules and in the apiserver's "forbidden" messages.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from charging_analytics.operator.kube import ApiSession, KubeError
from testbed.controlplane import ControlPlane, KubeApiError, KubeRest
from testbed.polling import Poll, WaitTimeout, wait_for
from tests.chart.chart_support import one, render_chart

RELEASE = "cha"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
ROLE_KINDS = ("ClusterRole", "Role")
Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

#: Cluster-scoped resources the chart may grant (asked about without a namespace).
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "clusterkopfpeerings"}

#: What every authenticated user may do (system:basic-user, system:discovery, ...): not the chart's.
_DEFAULT_RESOURCES = {
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
    ("authentication.k8s.io", "selfsubjectreviews"),
}

# `... is forbidden: User "u" cannot list resource "secrets" in API group "" in the namespace "n"`,
# possibly inside a JSON body (quotes escaped).
_DENIED = re.compile(
    r'cannot (?P<verb>[a-z]+) resource \\*"(?P<resource>[^"\\]+)\\*" in API group \\*"(?P<group>[^"\\]*)\\*"'
)


def permissions(role: dict[str, Any]) -> set[Permission]:
    """Every (group, resource, verb) a Role/ClusterRole grants (no wildcards expected)."""
    out: set[Permission] = set()
    for rule in role.get("rules") or []:
        assert not rule.get("resourceNames"), "resourceNames are not modelled here"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb), rule
                    out.add((group, resource, verb))
    return out


def without(role: dict[str, Any], drop: Collection[Permission]) -> dict[str, Any]:
    """A copy of ``role`` minus ``drop`` (a rule left without a verb disappears)."""
    missing = set(drop) - permissions(role)
    assert not missing, f"the role does not grant {sorted(missing)}"
    out = copy.deepcopy(role)
    rules = []
    for rule in out.get("rules") or []:
        split = [
            {
                **rule,
                "apiGroups": [g],
                "resources": [r],
                "verbs": [v for v in rule["verbs"] if (g, r, v) not in drop],
            }
            for g in rule["apiGroups"]
            for r in rule["resources"]
        ]
        rules += [r for r in split if r["verbs"]]
    out["rules"] = rules
    assert permissions(out) == permissions(role) - set(drop)
    return out


def denials(text: str) -> set[Permission]:
    """The permissions the apiserver refused, as named in the "forbidden" messages of ``text``."""
    return {(m["group"], m["resource"], m["verb"]) for m in _DENIED.finditer(text)}


def render_release(tmp_path: Path, values: dict[str, Any], release_namespace: str) -> list[dict[str, Any]]:
    """The chart rendered by helm for a release in ``release_namespace``."""
    return render_chart(tmp_path, values, release=RELEASE, namespace=release_namespace)


def rbac_objects(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in RBAC_KINDS]


def render_rbac(tmp_path: Path, values: dict[str, Any], release_namespace: str) -> list[dict[str, Any]]:
    """The chart rendered by helm for a release in ``release_namespace``; only the RBAC objects."""
    return rbac_objects(render_release(tmp_path, values, release_namespace))


def operator_env(docs: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The literal environment (``value``, not ``valueFrom``) of the rendered operator container."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "operator")
    return {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}


class ClientRefusals(list[Permission]):
    """The permissions whose lack made the apiserver refuse (403) a client's request: the
    operator's own API session (``ApiSession``: Secrets, resource reads, status, Grafana objects,
    peering) or the gateway's ``kubernetes`` client.

    The service turns a refused Secret read or write into a Stalled condition that names the
    Secret and the HTTP status but not the apiserver's message, so the operator's log no longer
    says which verb was refused; the request does. Kopf talks to the apiserver through its own
    session and logs its refusals.
    """

    @property
    def permissions(self) -> set[Permission]:
        return set(self)


_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def permission_of(method: str, path: str, watch: bool = False) -> Permission:
    """The RBAC permission a REST request needs, e.g. PATCH /apis/g/v/namespaces/n/p/x/status ->
    (g, p/status, patch)."""
    parts = path.strip("/").split("/")
    group, rest = ("", parts[2:]) if parts[0] == "api" else (parts[1], parts[3:])
    if rest[:1] == ["namespaces"] and len(rest) > 2:
        rest = rest[2:]  # a namespaced resource (not the namespace object itself)
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    verb = _VERBS.get(method) or ("get" if len(rest) > 1 else "watch" if watch else "list")
    return (group, resource, verb)


def spy_client_refusals(monkeypatch: pytest.MonkeyPatch) -> ClientRefusals:
    """Record every 403 the operator's API session receives (the tests' own calls use urllib3)."""
    seen = ClientRefusals()
    original: Callable[..., Any] = ApiSession.request

    async def request(self: ApiSession, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return await original(self, method, path, **kwargs)
        except KubeError as err:
            if err.status == 403:
                seen.append(permission_of(method, path, "watch" in (kwargs.get("params") or {})))
            raise

    monkeypatch.setattr(ApiSession, "request", request)
    return seen


def spy_kubernetes_client_refusals(monkeypatch: pytest.MonkeyPatch) -> ClientRefusals:
    """Record every 403 the ``kubernetes`` client (the gateway's) receives, from the apiserver's
    "forbidden" message in the response body."""
    from kubernetes.client import rest as kube_rest

    seen = ClientRefusals()
    original: Callable[..., Any] = kube_rest.RESTClientObject.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = original(self, method, url, *args, **kwargs)
        if response.status == 403:
            body = response.read()
            seen.extend(denials(body.decode(errors="replace") if isinstance(body, bytes) else str(body)))
        return response

    monkeypatch.setattr(kube_rest.RESTClientObject, "request", request)
    return seen


@dataclass
class ChartRbac:
    """The chart's RBAC objects applied to ``cp``; :attr:`rest` and :attr:`kubeconfig` act as its SA."""

    cp: ControlPlane
    docs: list[dict[str, Any]]
    #: the namespace SelfSubjectAccessReviews of namespaced permissions are asked about
    namespace: str
    kubeconfig: Path = field(init=False)
    rest: KubeRest = field(init=False)
    user: str = field(init=False)
    groups: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        kinds = sorted(d["kind"] for d in self.docs)
        roles = [d for d in self.docs if d["kind"] in ROLE_KINDS]
        assert len(roles) == 1, f"expected exactly one Role or ClusterRole, got {kinds}"
        sa = next(d for d in self.docs if d["kind"] == "ServiceAccount")["metadata"]
        self.user = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
        self.groups = ("system:serviceaccounts", f"system:serviceaccounts:{sa['namespace']}")

    @property
    def role(self) -> dict[str, Any]:
        """The role as the chart renders it."""
        return next(d for d in self.docs if d["kind"] in ROLE_KINDS)

    @property
    def granted(self) -> set[Permission]:
        return permissions(self.role)

    def install(self) -> None:
        for doc in self.docs:
            self.cp.rest.apply(doc)
        self.kubeconfig = self.cp.make_user_kubeconfig(self.user, self.groups)
        self.rest = KubeRest.from_kubeconfig(self.kubeconfig)
        self.wait_effective(self.granted)

    def drop(self, *drop: Permission) -> None:
        """Re-apply the role without ``drop``; return once the authorizer refuses each of them."""
        self.cp.rest.apply(without(self.role, drop))
        self.wait_effective(self.granted - set(drop), denied=drop)

    def uninstall(self) -> None:
        """Remove the cluster-scoped objects (namespaced ones go with their test namespace)."""
        for doc in self.docs:
            if doc["kind"].startswith("Cluster"):
                res = self.cp.rest.resource(doc["apiVersion"], doc["kind"])
                try:
                    self.cp.rest.delete(res.path(name=doc["metadata"]["name"]))
                except KubeApiError as err:
                    if err.status != 404:
                        raise

    # -- the authorizer's view --------------------------------------------------------------------

    def can(self, permission: Permission, namespace: str | None = None) -> bool:
        """A SelfSubjectAccessReview as the operator's identity."""
        group, resource, verb = permission
        plural, _, sub = resource.partition("/")
        attrs = {"group": group, "resource": plural, "subresource": sub, "verb": verb}
        if namespace is not None:
            attrs["namespace"] = namespace
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        out = self.rest.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review)
        return bool(out["status"].get("allowed"))

    def _ns_for(self, permission: Permission) -> str | None:
        return None if permission[1] in CLUSTER_SCOPED else self.namespace

    def wait_effective(
        self, allowed: Iterable[Permission], denied: Iterable[Permission] = (), timeout: float = 10
    ) -> None:
        """Wait until the authorizer (fed by an informer) allows ``allowed`` and refuses ``denied``."""
        want = dict.fromkeys(allowed, True) | dict.fromkeys(denied, False)
        wrong: set[Permission] = set()

        def in_effect() -> bool:
            wrong.clear()
            wrong.update(p for p, ok in want.items() if self.can(p, self._ns_for(p)) != ok)
            return not wrong

        try:
            wait_for(in_effect, timeout, "RBAC in effect", poll=Poll(0.1))
        except WaitTimeout as err:
            raise AssertionError(f"RBAC not in effect after {timeout}s: {sorted(wrong)}") from err

    def whoami(self) -> dict[str, Any]:
        """The user the apiserver authenticated (SelfSubjectReview)."""
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        out = self.rest.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", review)
        user: dict[str, Any] = out["status"]["userInfo"]
        return user

    def effective_permissions(self, namespace: str) -> set[Permission]:
        """What the identity may do in ``namespace`` (SelfSubjectRulesReview), minus what every
        authenticated user may do."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        out = self.rest.post("/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", review)
        found = permissions({"rules": out["status"]["resourceRules"]})
        return {p for p in found if (p[0], p[1]) not in _DEFAULT_RESOURCES}
