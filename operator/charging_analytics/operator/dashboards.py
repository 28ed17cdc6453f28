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

import hashlib
import json
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .. import constants as c
from ..dashboard import DATASOURCE_TYPE, dashboard_json, dashboard_uid, datasource_uid
from ..pipeline import reader_name
from ..rw.client import Endpoint
from ..spec import ChargingAnalyticsSpec, ChargingAnalyticsStatus, ObjectStatus
from .kube import ApiSession, KubeError, object_path

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
MANAGED_BY = {c.LABEL_MANAGED_BY: c.MANAGED_BY}
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
    return spec.read_only_user.secret(owner.name)


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


def owns_dashboards(status: ChargingAnalyticsStatus) -> bool:
    """Whether the resource's status lists Grafana objects (which a disabled spec must remove),
    or a plan to change some (Plan mode lists a removal it does not carry out)."""
    return bool(dashboard_entries(status.objects)) or bool(status.plan is not None and status.plan.objects)


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
# Drift or spec change, and what a reconcile did (pure)
# --------------------------------------------------------------------------------------------

#: States of a Grafana object's status entry that say the operator made the object match that
#: entry's hash. A live object that no longer matches such an entry was edited or deleted behind
#: the operator's back (drift); otherwise a difference is a spec change. Pending (Plan mode) and
#: Failed entries record nothing applied.
RECORDED_STATES = ("Ready", "Drifted", "Missing")

#: What one object needs: create (new), update (the spec changed), restore (drift corrected).
Action = Literal["create", "update", "restore", "none"]
ObjectState = Literal["Ready", "Drifted", "Missing", "Pending", "Failed"]


@dataclass(frozen=True)
class Decision:
    action: Action
    #: edited or deleted after the operator last made it match
    drift: bool


def decide(live_matches: bool | None, recorded: bool, *, correct_drift: bool) -> Decision:
    """``live_matches``: None when the object is absent. ``recorded``: the resource's status
    records this object at the desired hash (so a difference is drift, not a spec change)."""
    if live_matches:
        return Decision("none", drift=False)
    if not recorded:
        return Decision("create" if live_matches is None else "update", drift=False)
    return Decision("restore" if correct_drift else "none", drift=True)


def state_of(decision: Decision, *, absent: bool, applied: bool) -> ObjectState:
    """The object's status state once ``decision`` was carried out (``applied``) or not."""
    if decision.action == "none" and not decision.drift:
        return "Ready"
    if applied:
        return "Ready"
    if decision.drift:
        return "Missing" if absent else "Drifted"
    return "Pending"  # Plan mode: would be created or updated (nothing was lost)


def recorded_hashes(objects: Sequence[ObjectStatus]) -> set[tuple[str, str, str]]:
    """(kind, name, hash) of the Grafana objects a status's entries record as made to match."""
    return {(o.kind, o.name, o.hash) for o in dashboard_entries(objects) if o.state in RECORDED_STATES}


def dashboard_entries(objects: Sequence[ObjectStatus]) -> list[ObjectStatus]:
    """The Grafana objects' entries of a status."""
    return [o for o in objects if o.kind in ALL_KINDS]


@dataclass(frozen=True)
class ObjectResult:
    kind: DashboardKind
    namespace: str
    name: str
    state: ObjectState
    hash: str
    action: Action
    #: whether ``action`` was carried out (Apply mode) or only planned or reported
    applied: bool
    drift: bool = False
    absent: bool = False
    #: the call that failed, e.g. ``cannot update ConfigMap ns/x: 403 Forbidden``
    error: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    def status(self) -> ObjectStatus:
        return ObjectStatus(kind=self.kind, name=self.name, state=self.state, hash=self.hash)

    def describe_drift(self) -> str:
        return f"{self.ref} was {'deleted' if self.absent else 'edited'} outside the operator"


@dataclass(frozen=True)
class Removal:
    """An owned object the spec no longer wants: deleted (Apply mode) or to be deleted (Plan)."""

    kind: DashboardKind
    namespace: str
    name: str
    applied: bool

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class DashboardsReport:
    objects: tuple[ObjectResult, ...]
    removals: tuple[Removal, ...] = ()
    #: failed calls not tied to a desired object (listing or deleting what is no longer wanted)
    errors: tuple[str, ...] = ()

    @property
    def failures(self) -> list[str]:
        return [*(o.error for o in self.objects if o.error), *self.errors]

    def planned(self) -> list[str]:
        """What an apply would change (Plan mode), e.g. ``create ConfigMap ns/x``."""
        changes = [f"{o.action} {o.ref}" for o in self.objects if not o.applied and o.action != "none"]
        return changes + [f"delete {r.ref}" for r in self.removals if not r.applied]

    def drift(self) -> list[str]:
        """Drift left after this reconcile: reported (Report), planned (Plan) or not restored."""
        return [o.describe_drift() for o in self.objects if o.drift and o.state != "Ready"]


# --------------------------------------------------------------------------------------------
# Reconcile (Kubernetes API)
# --------------------------------------------------------------------------------------------


class ApiFailure(Exception):
    """One refused or failed call, named by verb and object (not the apiserver's message)."""


async def _call(verb: str, what: str, call: Awaitable[Any]) -> Any:
    try:
        return await call
    except KubeError as err:
        raise ApiFailure(f"cannot {verb} {what}: {err.status} {err.reason}") from err


def _not_found(err: ApiFailure) -> bool:
    cause = err.__cause__
    return isinstance(cause, KubeError) and cause.status == 404


def _path(kind: DashboardKind, namespace: str, name: str | None = None) -> str:
    if kind == "ConfigMap":
        return object_path("", "v1", "configmaps", namespace, name)
    return object_path(GRAFANA_GROUP, GRAFANA_VERSION, GRAFANA_PLURALS[kind], namespace, name)


class DashboardProvisioner:
    """Creates, corrects and removes the tenant's Grafana objects.

    Whether the grafana-operator CRDs are installed is read from API discovery (which every
    authenticated client may read), at most once per ``discovery_seconds``.
    """

    def __init__(self, api: ApiSession, *, discovery_seconds: float = 30.0) -> None:
        self.api = api
        self.discovery_seconds = discovery_seconds
        self._installed: tuple[float, bool] | None = None

    async def grafana_operator_installed(self) -> bool:
        now = time.monotonic()
        if self._installed is not None and now - self._installed[0] < self.discovery_seconds:
            return self._installed[1]
        found = await self.api.get(f"/apis/{GRAFANA_GROUP}/{GRAFANA_VERSION}")
        names = {r.get("name") for r in (found or {}).get("resources") or []}
        installed = found is not None and set(GRAFANA_PLURALS.values()) <= names
        self._installed = (now, installed)
        return installed

    # -- generic access to the three kinds ------------------------------------------------------

    async def _get(self, kind: DashboardKind, namespace: str, name: str) -> dict[str, Any] | None:
        what = f"{kind} {namespace}/{name}"
        try:
            obj = await _call("get", what, self.api.request("GET", _path(kind, namespace, name)))
        except ApiFailure as err:
            if _not_found(err):
                return None
            raise
        return dict(obj)

    async def _create(self, manifest: dict[str, Any]) -> None:
        kind, namespace = manifest["kind"], manifest["metadata"]["namespace"]
        what = f"{kind} {namespace}/{manifest['metadata']['name']}"
        await _call("create", what, self.api.request("POST", _path(kind, namespace), body=manifest))

    async def _replace(self, manifest: dict[str, Any], live: Mapping[str, Any]) -> None:
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
        what = f"{kind} {namespace}/{name}"
        await _call("update", what, self.api.request("PUT", _path(kind, namespace, name), body=body))

    async def _delete(self, kind: DashboardKind, namespace: str, name: str) -> None:
        what = f"{kind} {namespace}/{name}"
        try:
            await _call("delete", what, self.api.request("DELETE", _path(kind, namespace, name)))
        except ApiFailure as err:
            if not _not_found(err):
                raise

    async def _owned(self, kind: DashboardKind, owner: Owner) -> list[str]:
        selector = f"{OWNER_LABEL}={owner.name[:63]}"
        what = f"{kind}s in {owner.namespace}"
        try:
            listed = await _call(
                "list",
                what,
                self.api.request("GET", _path(kind, owner.namespace), params={"labelSelector": selector}),
            )
        except ApiFailure as err:
            if _not_found(err):
                return []
            raise
        found = [
            (i["metadata"]["name"], i["metadata"].get("ownerReferences") or [])
            for i in (listed or {}).get("items") or []
        ]
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
        recorded: set[tuple[str, str, str]],
    ) -> DashboardsReport:
        """Bring the tenant's Grafana objects to the spec; with ``apply`` false (Plan mode), only
        say what would change. ``recorded``: what the resource's status records as made to match
        (:func:`recorded_hashes`), which tells drift from a spec change. A failed call fails only
        its object (reported in the result), so one refused kind does not hide the others."""
        # also when disabled: the grafana-operator's objects of an earlier reconcile must go
        installed = await self.grafana_operator_installed()
        desired = desired_manifests(owner, spec, endpoint, choose_provider(spec, installed))
        kinds = ALL_KINDS if installed else ("ConfigMap",)

        objects = tuple(
            [
                await self._converge(m, apply=apply, correct_drift=correct_drift, recorded=recorded)
                for m in desired
            ]
        )
        keep = {(m["kind"], m["metadata"]["name"]) for m in desired}
        removals: list[Removal] = []
        errors: list[str] = []
        for kind in kinds:
            try:
                for name in await self._owned(kind, owner):
                    if (kind, name) in keep:
                        continue
                    if apply:
                        await self._delete(kind, owner.namespace, name)
                    removals.append(Removal(kind, owner.namespace, name, applied=apply))
            except ApiFailure as err:
                errors.append(str(err))
        return DashboardsReport(objects, tuple(removals), tuple(errors))

    async def _converge(
        self,
        manifest: dict[str, Any],
        *,
        apply: bool,
        correct_drift: bool,
        recorded: set[tuple[str, str, str]],
    ) -> ObjectResult:
        kind: DashboardKind = manifest["kind"]
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        digest = manifest_hash(manifest)

        def result(state: ObjectState, decision: Decision, **more: Any) -> ObjectResult:
            return ObjectResult(
                kind, namespace, name, state, digest, decision.action, drift=decision.drift, **more
            )

        try:
            live = await self._get(kind, namespace, name)
        except ApiFailure as err:
            return result("Failed", Decision("none", False), applied=False, error=str(err))
        matches = (
            None
            if live is None
            else (contains(_content(live), _content(manifest)) and _owner_refs_match(live, manifest))
        )
        decision = decide(matches, (kind, name, digest) in recorded, correct_drift=correct_drift)
        act = apply and decision.action != "none"
        try:
            if act and live is None:
                await self._create(manifest)
            elif act and live is not None:
                selector = manifest.get("spec", {}).get("instanceSelector")
                if selector is not None and (live.get("spec") or {}).get("instanceSelector") != selector:
                    # the grafana-operator's CRDs make instanceSelector immutable: replace the object
                    await self._delete(kind, namespace, name)
                    await self._create(manifest)
                else:
                    await self._replace(manifest, live)
        except ApiFailure as err:
            return result("Failed", decision, applied=False, absent=live is None, error=str(err))
        state = state_of(decision, absent=live is None, applied=act)
        return result(state, decision, applied=act, absent=live is None)

    async def delete_all(self, owner: Owner) -> int:
        """Remove every Grafana object the resource owns (the teardown of the resource)."""
        installed = await self.grafana_operator_installed()

        count = 0
        try:
            for kind in ALL_KINDS if installed else ("ConfigMap",):
                for name in await self._owned(kind, owner):
                    await self._delete(kind, owner.namespace, name)
                    count += 1
        except ApiFailure as err:
            cause = err.__cause__
            status = cause.status if isinstance(cause, KubeError) else None
            raise KubeError(status, str(err)) from None
        return count


def _ref_uid(ref: Any) -> str | None:
    return ref.get("uid") if isinstance(ref, Mapping) else getattr(ref, "uid", None)


def _owner_refs_match(live: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    want: Sequence[Mapping[str, Any]] = manifest["metadata"].get("ownerReferences") or []
    have = (live.get("metadata") or {}).get("ownerReferences") or []
    return {r["uid"] for r in want} <= {_ref_uid(r) for r in have}
