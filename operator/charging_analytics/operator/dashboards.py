"""The tenant's Grafana objects: desired manifests (pure) and their reconcile (Kubernetes API).

With the grafana-operator's CRDs installed (``grafana.integreatly.org/v1beta1``), a tenant with
``spec.dashboards.enabled`` gets a ``GrafanaDatasource`` (RisingWave as a PostgreSQL data source,
as the tenant's read-only user, the password taken by the grafana-operator from the operator's
read-only Secret through ``valuesFrom``) and a ``GrafanaDashboard``. Without them it gets a
ConfigMap labelled ``grafana_dashboard: "1"`` for the Grafana chart's dashboard sidecar (the data
source is then provisioned as docs/dashboards.md shows). Every object is owned by the resource
(garbage-collected with it, and deleted by the operator on teardown), labelled with its owner so
objects the spec no longer wants are found and removed, and compared with what is desired on every
reconcile (drift is corrected; keys the API server or other controllers add are left alone).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import kubernetes

from .. import constants as c
from ..dashboard import DATASOURCE_TYPE, dashboard_json, dashboard_uid, datasource_uid
from ..pipeline import reader_name
from ..rw.client import Endpoint
from ..spec import ChargingAnalyticsSpec
from .kube import KubeError

GRAFANA_GROUP = "grafana.integreatly.org"
GRAFANA_VERSION = "v1beta1"
GRAFANA_API_VERSION = f"{GRAFANA_GROUP}/{GRAFANA_VERSION}"
#: kind -> plural of the grafana-operator resources the operator manages.
GRAFANA_PLURALS = {"GrafanaDatasource": "grafanadatasources", "GrafanaDashboard": "grafanadashboards"}
#: The Grafana chart's dashboard sidecar picks up ConfigMaps with this label (its default).
SIDECAR_LABEL = "grafana_dashboard"
#: The sidecar puts a dashboard into the folder named by this annotation (its default).
SIDECAR_FOLDER_ANNOTATION = "grafana_folder"
OWNER_LABEL = f"{c.GROUP}/owner"
TENANT_LABEL = f"{c.GROUP}/tenant"
MANAGED_BY = {"app.kubernetes.io/managed-by": "charging-analytics-operator"}
#: The key of the dashboard in the sidecar ConfigMap (the sidecar writes it as this file name).
CONFIGMAP_KEY_SUFFIX = ".json"

Provider = Literal["GrafanaOperator", "ConfigMap"]
DashboardKind = Literal["GrafanaDashboard", "GrafanaDatasource", "ConfigMap"]
ALL_KINDS: tuple[DashboardKind, ...] = ("GrafanaDatasource", "GrafanaDashboard", "ConfigMap")


# --------------------------------------------------------------------------------------------
# Desired manifests (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    namespace: str
    name: str
    uid: str | None


def object_name(owner: Owner, kind: DashboardKind) -> str:
    suffix = {"GrafanaDatasource": "risingwave", "GrafanaDashboard": "dashboard", "ConfigMap": "dashboard"}
    return f"{owner.name}-{suffix[kind]}"[:253]


def _metadata(owner: Owner, spec: ChargingAnalyticsSpec, kind: DashboardKind) -> dict[str, Any]:
    labels = {**MANAGED_BY, OWNER_LABEL: owner.name[:63], TENANT_LABEL: spec.tenant}
    meta: dict[str, Any] = {"name": object_name(owner, kind), "namespace": owner.namespace, "labels": labels}
    if owner.uid:
        meta["ownerReferences"] = [
            {
                "apiVersion": c.API_VERSION,
                "kind": c.KIND,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": False,
            }
        ]
    return meta


def read_only_secret(owner: Owner, spec: ChargingAnalyticsSpec) -> str:
    return spec.read_only_user.secret_name or f"{owner.name}-readonly"


def datasource_manifest(owner: Owner, spec: ChargingAnalyticsSpec, endpoint: Endpoint) -> dict[str, Any]:
    """RisingWave as Grafana's PostgreSQL data source, as the tenant's read-only user.

    The password stays in the operator's read-only Secret: ``valuesFrom`` tells the
    grafana-operator to substitute ``${password}`` from it
    (https://grafana.github.io/grafana-operator/docs/datasources/).
    """
    return {
        "apiVersion": GRAFANA_API_VERSION,
        "kind": "GrafanaDatasource",
        "metadata": _metadata(owner, spec, "GrafanaDatasource"),
        "spec": {
            "instanceSelector": {"matchLabels": dict(spec.dashboards.instance_selector.match_labels)},
            "valuesFrom": [
                {
                    "targetPath": "secureJsonData.password",
                    "valueFrom": {"secretKeyRef": {"name": read_only_secret(owner, spec), "key": "password"}},
                }
            ],
            "datasource": {
                "name": f"RisingWave {spec.tenant}",
                "uid": datasource_uid(spec.tenant),
                "type": DATASOURCE_TYPE,
                "access": "proxy",
                "url": f"{endpoint.host}:{endpoint.port}",
                "user": reader_name(spec.tenant),
                "jsonData": {
                    "database": endpoint.database,
                    "sslmode": endpoint.sslmode,
                    # RisingWave speaks the PostgreSQL 13.0 protocol dialect (SELECT version())
                    "postgresVersion": 1300,
                    "timescaledb": False,
                },
                "secureJsonData": {"password": "${password}"},
            },
        },
    }


def dashboard_manifest(owner: Owner, spec: ChargingAnalyticsSpec) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instanceSelector": {"matchLabels": dict(spec.dashboards.instance_selector.match_labels)},
        "json": dashboard_json(spec),
    }
    if spec.dashboards.folder:
        body["folder"] = spec.dashboards.folder
    return {
        "apiVersion": GRAFANA_API_VERSION,
        "kind": "GrafanaDashboard",
        "metadata": _metadata(owner, spec, "GrafanaDashboard"),
        "spec": body,
    }


def configmap_manifest(owner: Owner, spec: ChargingAnalyticsSpec) -> dict[str, Any]:
    meta = _metadata(owner, spec, "ConfigMap")
    meta["labels"][SIDECAR_LABEL] = "1"
    if spec.dashboards.folder:
        meta["annotations"] = {SIDECAR_FOLDER_ANNOTATION: spec.dashboards.folder}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {f"{dashboard_uid(spec.tenant)}{CONFIGMAP_KEY_SUFFIX}": dashboard_json(spec)},
    }


def desired_manifests(
    owner: Owner, spec: ChargingAnalyticsSpec, endpoint: Endpoint, provider: Provider
) -> list[dict[str, Any]]:
    """What the tenant's dashboards need from Kubernetes (nothing when not enabled)."""
    if not spec.dashboards.enabled:
        return []
    if provider == "GrafanaOperator":
        return [datasource_manifest(owner, spec, endpoint), dashboard_manifest(owner, spec)]
    return [configmap_manifest(owner, spec)]


def owns_dashboards(status: Mapping[str, Any]) -> bool:
    """Whether the resource's status lists Grafana objects (which a disabled spec must remove)."""
    return any(o.get("kind") in ALL_KINDS for o in status.get("objects") or [] if isinstance(o, Mapping))


def choose_provider(spec: ChargingAnalyticsSpec, grafana_operator_installed: bool) -> Provider:
    if spec.dashboards.provider == "Auto":
        return "GrafanaOperator" if grafana_operator_installed else "ConfigMap"
    return spec.dashboards.provider


def _content(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a manifest the operator owns: spec (or data) and its labels and annotations."""
    meta = manifest.get("metadata", {})
    body = {k: manifest[k] for k in ("spec", "data") if k in manifest}
    return {
        **body,
        "labels": dict(meta.get("labels") or {}),
        "annotations": dict(meta.get("annotations") or {}),
    }


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    text = json.dumps(_content(manifest), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def contains(live: Any, desired: Any) -> bool:
    """Whether every key the operator sets has its value in the live object (defaults and keys that
    others add do not count as drift)."""
    if isinstance(desired, Mapping):
        return isinstance(live, Mapping) and all(
            k in live and contains(live[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)


# --------------------------------------------------------------------------------------------
# Reconcile (Kubernetes API)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectResult:
    kind: DashboardKind
    name: str
    state: Literal["Ready", "Drifted", "Missing"]
    hash: str
    change: Literal["created", "updated", "unchanged", "reported"]

    def status(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "state": self.state, "hash": self.hash}


class DashboardProvisioner:
    """Creates, corrects and removes the tenant's Grafana objects.

    Whether the grafana-operator CRDs are installed is read from API discovery (which every
    authenticated client may read), at most once per ``discovery_seconds``.
    """

    def __init__(self, api: kubernetes.client.ApiClient, *, discovery_seconds: float = 30.0) -> None:
        self.api = api
        # untyped handles: the manifests are plain dicts, which the client sends as they are
        self.core: Any = kubernetes.client.CoreV1Api(api)
        self.custom: Any = kubernetes.client.CustomObjectsApi(api)
        self.discovery_seconds = discovery_seconds
        self._installed: tuple[float, bool] | None = None

    async def grafana_operator_installed(self) -> bool:
        now = time.monotonic()
        if self._installed is not None and now - self._installed[0] < self.discovery_seconds:
            return self._installed[1]

        def discover() -> bool:
            try:
                found = self.custom.get_api_resources(GRAFANA_GROUP, GRAFANA_VERSION)
            except kubernetes.client.ApiException as err:
                if err.status == 404:
                    return False
                raise KubeError(err.status, err.reason) from None
            names = {r.name for r in found.resources or []}
            return set(GRAFANA_PLURALS.values()) <= names

        installed = await asyncio.to_thread(discover)
        self._installed = (now, installed)
        return installed

    # -- generic access to the three kinds ------------------------------------------------------

    def _get(self, kind: DashboardKind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            if kind == "ConfigMap":
                sanitize: Any = self.api.sanitize_for_serialization
                obj = sanitize(self.core.read_namespaced_config_map(name, namespace))
            else:
                obj = self.custom.get_namespaced_custom_object(
                    GRAFANA_GROUP, GRAFANA_VERSION, namespace, GRAFANA_PLURALS[kind], name
                )
        except kubernetes.client.ApiException as err:
            if err.status == 404:
                return None
            raise KubeError(err.status, err.reason) from None
        return dict(obj)

    def _create(self, manifest: dict[str, Any]) -> None:
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        try:
            if kind == "ConfigMap":
                self.core.create_namespaced_config_map(namespace, manifest)
            else:
                self.custom.create_namespaced_custom_object(
                    GRAFANA_GROUP, GRAFANA_VERSION, namespace, GRAFANA_PLURALS[kind], manifest
                )
        except kubernetes.client.ApiException as err:
            raise KubeError(err.status, err.reason) from None

    def _replace(self, manifest: dict[str, Any], live: Mapping[str, Any]) -> None:
        """Write the desired content over the live object, keeping what others added to it."""
        meta = dict(live.get("metadata") or {})
        want = manifest["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), **want["labels"]}
        if want.get("annotations"):
            meta["annotations"] = {**(meta.get("annotations") or {}), **want["annotations"]}
        if "ownerReferences" in want:
            meta["ownerReferences"] = want["ownerReferences"]
        body = {**live, **{k: v for k, v in manifest.items() if k != "metadata"}, "metadata": meta}
        if "spec" in manifest:
            body["spec"] = {**(live.get("spec") or {}), **manifest["spec"]}
        kind, namespace, name = manifest["kind"], meta["namespace"], meta["name"]
        try:
            if kind == "ConfigMap":
                self.core.replace_namespaced_config_map(name, namespace, body)
            else:
                self.custom.replace_namespaced_custom_object(
                    GRAFANA_GROUP, GRAFANA_VERSION, namespace, GRAFANA_PLURALS[kind], name, body
                )
        except kubernetes.client.ApiException as err:
            raise KubeError(err.status, err.reason) from None

    def _delete(self, kind: DashboardKind, namespace: str, name: str) -> None:
        try:
            if kind == "ConfigMap":
                self.core.delete_namespaced_config_map(name, namespace)
            else:
                self.custom.delete_namespaced_custom_object(
                    GRAFANA_GROUP, GRAFANA_VERSION, namespace, GRAFANA_PLURALS[kind], name
                )
        except kubernetes.client.ApiException as err:
            if err.status != 404:
                raise KubeError(err.status, err.reason) from None

    def _owned(self, kind: DashboardKind, owner: Owner) -> list[str]:
        selector = f"{OWNER_LABEL}={owner.name[:63]}"
        try:
            if kind == "ConfigMap":
                items = self.core.list_namespaced_config_map(owner.namespace, label_selector=selector).items
                found = [(i.metadata.name, i.metadata.owner_references or []) for i in items]
            else:
                listed = self.custom.list_namespaced_custom_object(
                    GRAFANA_GROUP,
                    GRAFANA_VERSION,
                    owner.namespace,
                    GRAFANA_PLURALS[kind],
                    label_selector=selector,
                )
                found = [
                    (i["metadata"]["name"], i["metadata"].get("ownerReferences") or [])
                    for i in listed.get("items", [])
                ]
        except kubernetes.client.ApiException as err:
            if err.status == 404:
                return []
            raise KubeError(err.status, err.reason) from None
        # only what this resource owns (a resource of the same name recreated has another uid)
        return [
            str(name)
            for name, refs in found
            if owner.uid is None or any(_ref_uid(r) == owner.uid for r in refs)
        ]

    # -- the reconcile ----------------------------------------------------------------------------

    async def reconcile(
        self,
        owner: Owner,
        spec: ChargingAnalyticsSpec,
        endpoint: Endpoint,
        *,
        apply: bool,
        correct_drift: bool,
    ) -> list[ObjectResult]:
        """Bring the tenant's Grafana objects to the spec; with ``apply`` false, only report."""
        installed = await self.grafana_operator_installed() if spec.dashboards.enabled else False
        desired = desired_manifests(owner, spec, endpoint, choose_provider(spec, installed))
        kinds = ALL_KINDS if installed else ("ConfigMap",)

        def run() -> list[ObjectResult]:
            results = [self._converge(m, apply=apply, correct_drift=correct_drift) for m in desired]
            if apply:
                keep = {(m["kind"], m["metadata"]["name"]) for m in desired}
                for kind in kinds:
                    for name in self._owned(kind, owner):
                        if (kind, name) not in keep:
                            self._delete(kind, owner.namespace, name)
            return results

        return await asyncio.to_thread(run)

    def _converge(self, manifest: dict[str, Any], *, apply: bool, correct_drift: bool) -> ObjectResult:
        kind: DashboardKind = manifest["kind"]
        meta = manifest["metadata"]
        digest = manifest_hash(manifest)
        live = self._get(kind, meta["namespace"], meta["name"])
        if live is None:
            if not apply:
                return ObjectResult(kind, meta["name"], "Missing", digest, "reported")
            self._create(manifest)
            return ObjectResult(kind, meta["name"], "Ready", digest, "created")
        if contains(_content(live), _content(manifest)) and _owner_refs_match(live, manifest):
            return ObjectResult(kind, meta["name"], "Ready", digest, "unchanged")
        if not (apply and correct_drift):
            return ObjectResult(kind, meta["name"], "Drifted", digest, "reported")
        selector = manifest.get("spec", {}).get("instanceSelector")
        if selector is not None and (live.get("spec") or {}).get("instanceSelector") != selector:
            # the grafana-operator's CRDs make instanceSelector immutable: replace the object
            self._delete(kind, meta["namespace"], meta["name"])
            self._create(manifest)
        else:
            self._replace(manifest, live)
        return ObjectResult(kind, meta["name"], "Ready", digest, "updated")

    async def delete_all(self, owner: Owner) -> int:
        """Remove every Grafana object the resource owns (the teardown of the resource)."""
        installed = await self.grafana_operator_installed()

        def run() -> int:
            count = 0
            for kind in ALL_KINDS if installed else ("ConfigMap",):
                for name in self._owned(kind, owner):
                    self._delete(kind, owner.namespace, name)
                    count += 1
            return count

        return await asyncio.to_thread(run)


def _ref_uid(ref: Any) -> str | None:
    return ref.get("uid") if isinstance(ref, Mapping) else getattr(ref, "uid", None)


def _owner_refs_match(live: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    want: Sequence[Mapping[str, Any]] = manifest["metadata"].get("ownerReferences") or []
    have = (live.get("metadata") or {}).get("ownerReferences") or []
    return {r["uid"] for r in want} <= {_ref_uid(r) for r in have}
