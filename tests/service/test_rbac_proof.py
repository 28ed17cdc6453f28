"""RBAC proof: the operator runs its whole lifecycle as an identity bound only to the chart's
rendered roles, each permission those roles grant is shown to be needed, the grants this proof
once showed unused stay removed, and what the roles do not grant is refused by the real
authorizer. ``docs/rbac.md`` is the table.

How: ``helm template`` renders the chart; only its RBAC objects are applied to the real
kube-apiserver; the operator (KopfRunner, as in ``test_lifecycle.py``) authenticates with a client
certificate for ``system:serviceaccount:<release ns>:<sa>`` in the ServiceAccount groups, which is
the user name RBAC ServiceAccount subjects match, and gets ``CHA_WATCH_NAMESPACES`` from the
rendered Deployment (with it set, the operator turns Kopf's cluster scanning off). A necessity
test re-applies the role without one permission and asserts both halves of the failure: the
apiserver refused exactly that permission (its "forbidden" message names verb and resource, in
Kopf's log or in a 403 response to the operator's own Kubernetes client) and the consequence the
rule's comment predicts.

Renderings used:

* ``rbac.scope=namespaced`` (Role + RoleBinding in the watched namespace; operator with
  ``--namespace``) on the session's control plane.
* ``rbac.scope=cluster`` (ClusterRole + binding; operator with ``--all-namespaces``, the chart's
  default) on a private control plane of this module: an all-namespaces operator on the shared one
  would adopt every other test's leftover resources. The necessity tests run here; the namespaced
  Role carries the very same rules (``cha.namespacedRules``).
* ``rbac.scope=cluster`` with ``watchNamespaces`` (operator with ``--namespace``). The chart sets
  ``CHA_WATCH_NAMESPACES`` here too, so the operator scans nothing, and the ClusterRole carries
  only the namespaced rules: no namespaces list/watch and no CRD list/watch, because with scanning
  off Kopf uses neither (docs/rbac.md, "Removed"). The lifecycle runs with exactly them.

``test_every_granted_permission_has_a_proof`` ties every permission of these renderings to its
test. The peering rules (``replicas > 1``) are not covered (docs/rbac.md).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from charging_analytics import constants as c
from charging_analytics.pipeline import reader_name
from testbed.bed import Testbed as _Testbed
from testbed.bed import crd_files, unique_name
from testbed.controlplane import ControlPlane, KubeApiError
from testbed.polling import wait_for
from testbed.postgres import PostgresServer
from tests.rw_double.fixtures import RisingWaveTarget
from tests.service.harness import GRAFANA_CRDS, Harness, Reconciles
from tests.service.rbac_support import (
    ChartRbac,
    ClientRefusals,
    Permission,
    denials,
    operator_env,
    permissions,
    rbac_objects,
    render_rbac,
    render_release,
    spy_client_refusals,
)

pytestmark = [pytest.mark.k8s, pytest.mark.helm]

G = c.GROUP
CR_GET, CR_LIST, CR_WATCH, CR_PATCH = ((G, c.PLURAL, v) for v in ("get", "list", "watch", "patch"))
STATUS_PATCH = (G, f"{c.PLURAL}/status", "patch")
SECRET_GET, SECRET_LIST, SECRET_WATCH = (("", "secrets", v) for v in ("get", "list", "watch"))
SECRET_CREATE, SECRET_UPDATE, SECRET_PATCH = (("", "secrets", v) for v in ("create", "update", "patch"))
EVENT_CREATE, EVENT_PATCH = ("", "events", "create"), ("", "events", "patch")
EVENTS_K8S = {("events.k8s.io", "events", v) for v in ("create", "patch")}
CRD_LIST, CRD_WATCH = (("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch"))
NAMESPACES_LIST, NAMESPACES_WATCH = (("", "namespaces", v) for v in ("list", "watch"))

#: What Kopf's cluster scanning asks for when started with --namespace: the namespaced rendering
#: grants no cluster-scoped permission on purpose, and the operator turns scanning off when
#: CHA_WATCH_NAMESPACES is set (the chart sets it), so these are never asked for there.
KOPF_OBSERVER_PROBES = {NAMESPACES_LIST, CRD_LIST}

#: The tenants' Grafana objects (spec.dashboards), granted only with rbac.dashboards=true.
GRAFANA = "grafana.integreatly.org"
DASHBOARD_RESOURCES = (("", "configmaps"), (GRAFANA, "grafanadashboards"), (GRAFANA, "grafanadatasources"))
DASHBOARD_VERBS = ("get", "list", "create", "update", "delete")


def dashboard_permissions(*verbs: str) -> set[Permission]:
    return {(g, r, v) for g, r in DASHBOARD_RESOURCES for v in verbs or DASHBOARD_VERBS}


#: Used by no code path (docs/rbac.md, "Removed"), so they must stay out of every rendering
#: (``test_the_grants_found_unused_are_no_longer_rendered``).
#: namespaces list/watch would only matter with Kopf's cluster scanning on, and every rendering that
#: could grant it sets CHA_WATCH_NAMESPACES, which turns scanning off.
REMOVED = {SECRET_UPDATE, EVENT_PATCH, NAMESPACES_LIST, NAMESPACES_WATCH} | EVENTS_K8S

#: How long an effect the full-permission operator shows within ~1-2 s must stay absent.
GRACE = 5.0

#: Every permission the chart grants -> the test that proves it (docs/rbac.md has the same table).
PROOFS: dict[Permission, str] = {
    CR_GET: "test_without_get_on_the_resource_a_rotated_secret_reconciles_nothing",
    CR_LIST: "test_without_list_on_the_resource_the_operator_never_sees_it",
    CR_WATCH: "test_without_watch_on_the_resource_one_created_after_startup_goes_unnoticed",
    CR_PATCH: "test_without_patch_on_the_resource_nothing_is_built_and_nothing_leaks_on_delete",
    STATUS_PATCH: "test_without_status_patch_the_work_is_done_but_no_status_appears",
    SECRET_GET: "test_without_get_on_secrets_a_credentials_secret_is_unreadable",
    SECRET_LIST: "test_without_list_or_watch_on_secrets_a_rotated_secret_reconciles_nothing",
    SECRET_WATCH: "test_without_list_or_watch_on_secrets_a_rotated_secret_reconciles_nothing",
    SECRET_CREATE: "test_without_create_on_secrets_the_read_only_users_secret_is_unwritable",
    SECRET_PATCH: "test_without_patch_on_secrets_a_stale_read_only_users_secret_is_unwritable",
    EVENT_CREATE: "test_without_create_on_events_no_event_is_posted",
    CRD_LIST: "test_without_crd_list_or_watch_a_crd_installed_after_startup_is_never_served",
    CRD_WATCH: "test_without_crd_list_or_watch_a_crd_installed_after_startup_is_never_served",
    **dict.fromkeys(dashboard_permissions("get"), "test_without_dashboard_get_each_grafana_object_is_failed"),
    **dict.fromkeys(
        dashboard_permissions("create"), "test_without_dashboard_create_no_grafana_object_is_made"
    ),
    **dict.fromkeys(
        dashboard_permissions("update"), "test_without_dashboard_update_drift_is_reported_not_restored"
    ),
    **dict.fromkeys(
        dashboard_permissions("list"), "test_without_dashboard_list_or_delete_disabled_dashboards_stay"
    ),
    **dict.fromkeys(
        dashboard_permissions("delete"), "test_without_dashboard_list_or_delete_disabled_dashboards_stay"
    ),
}

CLUSTER_VALUES: dict[str, Any] = {}  # the chart's defaults: rbac.scope=cluster, all namespaces
DASHBOARD_VALUES: dict[str, Any] = {"rbac": {"dashboards": True}}  # the defaults plus dashboards


def namespaced_values(namespace: str) -> dict[str, Any]:
    return {"rbac": {"scope": "namespaced"}, "watchNamespaces": [namespace]}


def cluster_watching_values(namespace: str) -> dict[str, Any]:
    return {"watchNamespaces": [namespace]}  # rbac.scope=cluster, Kopf with --namespace


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_control_plane(testbed: _Testbed) -> Iterator[ControlPlane]:
    """A control plane of this module's own: only its resources exist there."""
    cp = ControlPlane(workdir=testbed.root / f"k8s-rbac-{uuid.uuid4().hex[:6]}")
    cp.start()
    try:
        for path in crd_files():
            cp.install_crd(path)
        yield cp
    finally:
        cp.stop(keep_workdir=True)


def _release_namespace(cp: ControlPlane) -> str:
    # short: the client certificate's CN (system:serviceaccount:<ns>:<sa>) is limited to 64 chars
    name = unique_name("r")
    cp.create_namespace(name, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"})
    return name


def _operator_env_from_chart(docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> str:
    """Give the operator the chart's CHA_WATCH_NAMESPACES (read at start-up); return it."""
    watched = operator_env(docs)["CHA_WATCH_NAMESPACES"]
    monkeypatch.setenv("CHA_WATCH_NAMESPACES", watched)
    return watched


@pytest.fixture
def refusals(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Refusals:
    return Refusals(caplog, spy_client_refusals(monkeypatch))


@pytest.fixture
def namespaced(
    harness: Harness, control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ChartRbac:
    """The namespaced rendering (watchNamespaces=[the test namespace]) applied; the operator logs
    in as its ServiceAccount, with the chart's CHA_WATCH_NAMESPACES."""
    docs = render_release(tmp_path, namespaced_values(harness.ns), _release_namespace(control_plane))
    assert _operator_env_from_chart(docs, monkeypatch) == harness.ns
    rbac = ChartRbac(control_plane, rbac_objects(docs), harness.ns)
    rbac.install()
    monkeypatch.setenv("KUBECONFIG", str(rbac.kubeconfig))
    return rbac


@contextlib.contextmanager
def _cluster_bed(
    cp: ControlPlane,
    ns: str,
    values: dict[str, Any],
    services: tuple[str, PostgresServer, RisingWaveTarget],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Harness, ChartRbac]]:
    for path in crd_files():  # idempotent; a test may have removed the CRD
        cp.install_crd(path)
    docs = render_release(tmp_path, values, _release_namespace(cp))
    _operator_env_from_chart(docs, monkeypatch)
    rbac = ChartRbac(cp, rbac_objects(docs), ns)
    rbac.install()
    monkeypatch.setenv("KUBECONFIG", str(rbac.kubeconfig))
    harness = Harness(cp, ns, *services)
    try:
        yield harness, rbac
    finally:
        _remove_resources(harness)
        rbac.uninstall()


@pytest.fixture
def cluster(
    private_control_plane: ControlPlane,
    kafka_broker: str,
    postgres_server: PostgresServer,
    risingwave: RisingWaveTarget,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Harness, ChartRbac]]:
    """The cluster rendering (the chart's defaults) applied to the private control plane, a fresh
    namespace there, and the operator logging in as the ServiceAccount (CHA_WATCH_NAMESPACES
    empty, as the chart renders it: Kopf's cluster scanning stays on)."""
    ns = unique_name(f"t-{request.node.name}"[:40])
    private_control_plane.create_namespace(ns)
    services = (kafka_broker, postgres_server, risingwave)
    with _cluster_bed(private_control_plane, ns, CLUSTER_VALUES, services, tmp_path, monkeypatch) as bed:
        yield bed


@pytest.fixture
def cluster_watching(
    private_control_plane: ControlPlane,
    kafka_broker: str,
    postgres_server: PostgresServer,
    risingwave: RisingWaveTarget,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Harness, ChartRbac]]:
    """rbac.scope=cluster with watchNamespaces=[a namespace the test creates when it wants]; the
    chart sets CHA_WATCH_NAMESPACES to it, so the operator turns Kopf's cluster scanning off."""
    ns = unique_name("t-later")
    services = (kafka_broker, postgres_server, risingwave)
    values = cluster_watching_values(ns)
    with _cluster_bed(private_control_plane, ns, values, services, tmp_path, monkeypatch) as bed:
        yield bed


def _remove_resources(harness: Harness) -> None:
    """Leave nothing an all-namespaces operator of a later test would pick up."""
    with contextlib.suppress(KubeApiError):
        for item in harness.rest.get(harness.path()).get("items", []):
            name = item["metadata"]["name"]
            with contextlib.suppress(KubeApiError):
                harness.rest.merge_patch(harness.path(name), {"metadata": {"finalizers": None}})
                harness.delete(name)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class Refusals:
    """What the apiserver refused the operator: Kopf's requests (their "forbidden" messages in
    the log) and the service's own Kubernetes client (the 403 response bodies)."""

    def __init__(self, caplog: pytest.LogCaptureFixture, client: ClientRefusals) -> None:
        self.caplog = caplog
        self.client = client

    def now(self) -> set[Permission]:
        return denials(self.caplog.text) | self.client.permissions

    def of(self, runner: Any) -> set[Permission]:
        """Everything refused while ``runner`` ran (its whole output, and the client's 403s)."""
        return denials(runner.output) | self.client.permissions

    def wait(self, permission: Permission, timeout: float = 15) -> None:
        """Wait until the apiserver has refused ``permission``."""
        wait_for(lambda: permission in self.now(), timeout, f"a 403 for {permission}")


def _finalizers(harness: Harness, name: str) -> list[str]:
    obj = harness.get(name) or {}
    return list(obj.get("metadata", {}).get("finalizers") or [])


def _status(harness: Harness, name: str) -> dict[str, Any]:
    obj = harness.get(name) or {}
    return dict(obj.get("status") or {})


def _pg_tenant(harness: Harness, name: str, *, reader: bool = False) -> dict[str, Any]:
    """A tenant whose PostgreSQL sink credentials come from a Secret (created here); with
    ``reader``, it also asks for a read-only user, whose credentials the operator writes to the
    Secret ``<name>-readonly``."""
    harness.alerts_db_secret(name)
    return harness.tenant(name, postgres_sink=True, onDrift="Correct", readOnlyUser={"enabled": reader})


def _reader_secret(harness: Harness, name: str) -> dict[str, str] | None:
    try:
        obj = harness.cp.rest.get(f"/api/v1/namespaces/{harness.ns}/secrets/{name}-readonly")
    except KubeApiError as err:
        if err.status == 404:
            return None
        raise
    return {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}


def _tamper(harness: Harness, name: str) -> None:
    """Overwrite the credentials in the read-only user's Secret, which stays owned by the resource
    (the operator repairs only Secrets it owns; it refuses to write into anyone else's)."""
    path = f"/api/v1/namespaces/{harness.ns}/secrets/{name}-readonly"
    data = {"username": "intruder", "password": "guess"}
    try:
        harness.rest.merge_patch(path, {"stringData": data})
    except KubeApiError as err:
        if err.status != 404:
            raise
        owner = harness.get(name)
        assert owner is not None, "create the resource first: the Secret is owned by it"
        ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": name, "uid": owner["metadata"]["uid"]}
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-readonly", "namespace": harness.ns, "ownerReferences": [ref]},
            "stringData": data,
        }
        harness.rest.post(f"/api/v1/namespaces/{harness.ns}/secrets", body)


def _reader_secret_is_the_operators(harness: Harness, name: str, tenant: str) -> bool:
    data = _reader_secret(harness, name) or {}
    return data.get("username") == reader_name(tenant) and data.get("password") not in (None, "", "guess")


def _rotate(harness: Harness, name: str) -> None:
    """Rewrite the tenant's credentials Secret (same working credentials, a new revision)."""
    harness.secret(
        f"{name}-alerts-db",
        {
            "username": harness.pg.alerts_user,
            "password": harness.pg.alerts_password,
            "rotated": uuid.uuid4().hex,
        },
    )


def _lifecycle(harness: Harness, reconciles: Reconciles, ready_timeout: float = 30) -> None:
    """Create (Ready; the sink's Secret read, the read-only user's Secret written), update
    (threshold applied), drift (a view dropped behind the operator's back: corrected), Secret
    events (a rotated credentials Secret reconciles the resource; a tampered read-only user's
    Secret is patched back), delete (finalizer released, resource gone, tenant dropped)."""
    body = _pg_tenant(harness, "acme", reader=True)
    tenant = body["spec"]["tenant"]
    harness.create(body)
    harness.wait_ready("acme", timeout=ready_timeout)
    assert _finalizers(harness, "acme") == [c.FINALIZER]
    assert f"{tenant}.alerts_to_postgres" in harness.rw_objects(tenant)  # the PG Secret was read
    assert _reader_secret_is_the_operators(harness, "acme", tenant)  # its Secret was created

    harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": 25}})
    obj = harness.wait_condition("acme", c.COND_READY, "True", reason="Applied", timeout=30)
    assert obj["status"]["observedGeneration"] == 2
    assert "INTERVAL '1500 seconds'" in harness.rw.object(f"{tenant}.stalled_sessions").definition

    harness.rw.execute(f'DROP MATERIALIZED VIEW "{tenant}"."alerts" CASCADE')
    wait_for(lambda: any(e["reason"] == "DriftCorrected" for e in harness.events()), 30, "DriftCorrected")
    harness.wait_condition("acme", c.COND_DRIFTED, "False", timeout=30)
    harness.wait_ready("acme", timeout=30)
    assert {f"{tenant}.alerts", f"{tenant}.alerts_to_postgres"} <= harness.rw_objects(tenant)

    _rotate(harness, "acme")
    wait_for(lambda: ("secret", "acme") in reconciles, 15, "a reconcile triggered by the Secret")
    _tamper(harness, "acme")
    wait_for(lambda: _reader_secret_is_the_operators(harness, "acme", tenant), 15, "the Secret repaired")
    harness.wait_ready("acme", timeout=30)
    reconciles.settle()

    harness.delete("acme")
    harness.wait_gone("acme", timeout=30)
    assert harness.rw_objects(tenant) == set()
    reasons = {e["reason"] for e in harness.events()}
    assert {"Applied", "DriftCorrected", "Deleted"} <= reasons, reasons


# --------------------------------------------------------------------------------------------
# The identity and its rules
# --------------------------------------------------------------------------------------------


def _assert_identity(rbac: ChartRbac) -> None:
    me = rbac.whoami()
    assert me["username"] == rbac.user
    assert set(me["groups"]) == {*rbac.groups, "system:authenticated"}


def test_the_operator_identity_is_the_service_account_with_exactly_the_namespaced_roles_rules(
    harness: Harness, namespaced: ChartRbac
) -> None:
    _assert_identity(namespaced)
    assert namespaced.effective_permissions(harness.ns) == namespaced.granted
    other = _release_namespace(harness.cp)
    assert namespaced.effective_permissions(other) == set()
    assert not namespaced.can(CRD_LIST)
    assert not namespaced.can(NAMESPACES_LIST)
    assert not namespaced.can(CR_LIST)  # cluster-wide


def test_the_operator_identity_is_the_service_account_with_exactly_the_cluster_roles_rules(
    cluster: tuple[Harness, ChartRbac],
) -> None:
    harness, rbac = cluster
    _assert_identity(rbac)
    # a ClusterRole applies in every namespace (SelfSubjectRulesReview lists all of its rules)
    assert rbac.effective_permissions(harness.ns) == rbac.granted
    assert rbac.effective_permissions(_release_namespace(harness.cp)) == rbac.granted
    assert rbac.can(CR_LIST)
    assert rbac.can(CR_WATCH)
    assert rbac.can(CRD_LIST)
    assert rbac.can(CRD_WATCH)


def _granted(tmp_path: Path, values: dict[str, Any]) -> set[Permission]:
    docs = render_rbac(tmp_path, values, "cha-system")
    return {p for d in docs if d["kind"] in ("Role", "ClusterRole") for p in permissions(d)}


#: The renderings without the dashboard switch (the chart's default) ...
PLAIN_RENDERINGS = (CLUSTER_VALUES, namespaced_values("tenants"), cluster_watching_values("tenants"))
#: ... and with it (the same rules plus the dashboard rules: ``cha.namespacedRules``).
PROVEN_RENDERINGS = (*PLAIN_RENDERINGS, DASHBOARD_VALUES)


def test_every_granted_permission_has_a_proof(tmp_path: Path) -> None:
    """A rule added to the chart needs a test here (and a row in docs/rbac.md); a needed one may
    not silently disappear: every permission proven needed is still granted somewhere."""
    granted: set[Permission] = set()
    for values in PROVEN_RENDERINGS:
        granted |= _granted(tmp_path, values)
    assert granted <= set(PROOFS), sorted(granted - set(PROOFS))
    assert set(PROOFS) <= granted, sorted(set(PROOFS) - granted)
    assert set(PROOFS.values()) <= set(globals())


def test_the_grants_found_unused_are_no_longer_rendered(tmp_path: Path) -> None:
    """secrets ``update``, core events ``patch``, events.k8s.io events and namespaces list/watch
    are used by no code path (docs/rbac.md, "Removed"), so no rendering may grant them (the
    peering renderings with ``replicas > 1`` included)."""
    peering = {"replicas": 2}
    renderings = (
        *PROVEN_RENDERINGS,
        peering,
        {**namespaced_values("tenants"), **peering},
        {**cluster_watching_values("tenants"), **peering},
    )
    for values in renderings:
        granted = _granted(tmp_path, values)
        assert not granted & REMOVED, (values, sorted(granted & REMOVED))
        assert not {p for p in granted if p[0] == "events.k8s.io"}, values
        assert {SECRET_CREATE, SECRET_PATCH, EVENT_CREATE} <= granted, values  # the verbs in use stay
        # CRD list/watch only where Kopf scans: cluster-wide, with --all-namespaces
        crd = {CRD_LIST, CRD_WATCH}
        assert granted & crd == (set() if values.get("watchNamespaces") else crd), values


# --------------------------------------------------------------------------------------------
# The full lifecycle with exactly the chart's RBAC
# --------------------------------------------------------------------------------------------


def _assert_no_refusal(runner: Any, refusals: Refusals) -> None:
    assert refusals.of(runner) == set()
    assert refusals.client == []
    assert " 403" not in runner.output
    assert "Forbidden" not in runner.output
    assert "Not enough permissions" not in runner.output


def test_namespaced_rbac_runs_the_full_lifecycle(
    harness: Harness, namespaced: ChartRbac, reconciles: Reconciles, refusals: Refusals
) -> None:
    """Kopf started with --namespace would list namespaces and CRDs cluster-wide, which the
    namespaced rendering deliberately does not grant, and retry each refusal for ~55 s before
    serving anything. The chart sets CHA_WATCH_NAMESPACES (the ``namespaced`` fixture takes it
    from the rendered Deployment), the operator then turns Kopf's cluster scanning off, and
    serves the namespace at once: not a single request is refused."""
    assert not namespaced.can(NAMESPACES_LIST)
    assert not namespaced.can(CRD_LIST)
    assert not namespaced.granted & dashboard_permissions()  # rbac.dashboards is off by default
    with harness.operator() as runner:
        _lifecycle(harness, reconciles, ready_timeout=15)  # 403 retries would take ~55 s
    assert not refusals.of(runner) & KOPF_OBSERVER_PROBES
    _assert_no_refusal(runner, refusals)


def test_cluster_rbac_runs_the_full_lifecycle_across_all_namespaces(
    cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    harness, rbac = cluster
    assert not rbac.granted & dashboard_permissions()  # rbac.dashboards is off by default
    with harness.operator(all_namespaces=True) as runner:
        _lifecycle(harness, reconciles)
    _assert_no_refusal(runner, refusals)


# --------------------------------------------------------------------------------------------
# Each permission is needed: remove it, see exactly it refused and the predicted failure
# --------------------------------------------------------------------------------------------


def test_without_get_on_the_resource_a_rotated_secret_reconciles_nothing(
    cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """The Secret handler reads the resources that reference a rotated Secret with a GET."""
    harness, rbac = cluster
    rbac.drop(CR_GET)
    with harness.operator(all_namespaces=True) as runner:
        harness.create(_pg_tenant(harness, "acme"))
        harness.wait_ready("acme", timeout=30)
        _rotate(harness, "acme")
        refusals.wait(CR_GET)
        time.sleep(1)
    assert ("secret", "acme") not in reconciles
    assert refusals.of(runner) == {CR_GET}


def test_without_list_on_the_resource_the_operator_never_sees_it(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = cluster
    rbac.drop(CR_LIST)
    harness.create(harness.tenant("acme"))
    with harness.operator(all_namespaces=True) as runner:
        refusals.wait(CR_LIST)
        time.sleep(GRACE)
    assert _finalizers(harness, "acme") == []
    assert _status(harness, "acme") == {}
    assert refusals.of(runner) == {CR_LIST}


def test_without_watch_on_the_resource_one_created_after_startup_goes_unnoticed(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = cluster
    rbac.drop(CR_WATCH)
    with harness.operator(all_namespaces=True) as runner:
        refusals.wait(CR_WATCH)
        harness.create(harness.tenant("acme"))
        time.sleep(GRACE)
    assert _finalizers(harness, "acme") == []
    assert _status(harness, "acme") == {}
    assert refusals.of(runner) == {CR_WATCH}


def test_without_patch_on_the_resource_nothing_is_built_and_nothing_leaks_on_delete(
    cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """Kopf PATCHes its finalizer (and progress annotations) onto a resource before any change
    handler runs. Without it the create handler never runs, and the drift daemon, which Kopf runs
    anyway, skips a resource without the operator's finalizer: nothing is built. Deleting the
    resource (gone at once, no finalizer) therefore leaves nothing behind in RisingWave. Before
    drift passes skipped such resources, they built the pipeline and the delete leaked it."""
    harness, rbac = cluster
    rbac.drop(CR_PATCH)
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator(all_namespaces=True) as runner:
        harness.create(body)
        refusals.wait(CR_PATCH)
        wait_for(lambda: ("timer", "acme") in reconciles, 15, "a drift pass")
        time.sleep(GRACE)  # a few more drift intervals (2 s here)
        assert _finalizers(harness, "acme") == []
        assert harness.rw_objects(tenant) == set()  # nothing built
        assert _status(harness, "acme") == {}
        harness.delete("acme")
        harness.wait_gone("acme", timeout=10)
        time.sleep(1)
    assert {origin for origin, _ in reconciles} == {"timer"}  # never "create", never deleted
    assert {result for *_, result in reconciles.results} == {"skipped"}
    assert harness.rw_objects(tenant) == set()  # nothing leaked
    assert refusals.of(runner) == {CR_PATCH}


def test_without_status_patch_the_work_is_done_but_no_status_appears(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = cluster
    rbac.drop(STATUS_PATCH)
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator(all_namespaces=True) as runner:
        harness.create(body)
        refusals.wait(STATUS_PATCH)
        time.sleep(1)
    assert _finalizers(harness, "acme") == [c.FINALIZER]
    assert f"{tenant}.alerts" in harness.rw_objects(tenant)  # the pipeline was built...
    assert _status(harness, "acme") == {}  # ...but nobody can tell
    assert refusals.of(runner) == {STATUS_PATCH}


def _wait_stalled(harness: Harness, name: str, reason: str, secret: str) -> dict[str, Any]:
    """Wait for Stalled=True with ``reason``; its message names the Secret and the HTTP status."""
    harness.wait_condition(name, c.COND_STALLED, "True", reason=reason, timeout=15)
    stalled = harness.condition(name, c.COND_STALLED) or {}
    assert f"Secret {harness.ns}/{secret}: 403 Forbidden" in stalled["message"], stalled
    ready = harness.condition(name, c.COND_READY) or {}
    assert (ready.get("status"), ready.get("reason")) == ("False", reason), ready
    return stalled


def test_without_get_on_secrets_a_credentials_secret_is_unreadable(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    """``KubeApi.read_secret`` is refused: the resource shows Stalled/SecretUnreadable naming the
    Secret and the status (the operator's log no longer carries the apiserver's message; its
    client saw the 403 for a secrets get), and nothing is built."""
    harness, rbac = cluster
    rbac.drop(SECRET_GET)
    body = _pg_tenant(harness, "acme")
    with harness.operator(all_namespaces=True) as runner:
        harness.create(body)
        refusals.wait(SECRET_GET)
        stalled = _wait_stalled(harness, "acme", "SecretUnreadable", "acme-alerts-db")
        time.sleep(1)
    assert stalled["message"].startswith("spec.alerts.sinks.postgres.credentialsSecretRef: ")
    assert harness.rw_objects(body["spec"]["tenant"]) == set()
    assert refusals.of(runner) == {SECRET_GET}
    assert denials(runner.output) == set()  # the 403 is on the resource, not in a traceback


@pytest.mark.parametrize("verb", ["list", "watch"])
def test_without_list_or_watch_on_secrets_a_rotated_secret_reconciles_nothing(
    cluster: tuple[Harness, ChartRbac],
    reconciles: Reconciles,
    refusals: Refusals,
    verb: str,
) -> None:
    harness, rbac = cluster
    dropped = ("", "secrets", verb)
    rbac.drop(dropped)
    with harness.operator(all_namespaces=True) as runner:
        harness.create(_pg_tenant(harness, "acme"))
        harness.wait_ready("acme", timeout=30)  # reading the Secret (get) still works
        refusals.wait(dropped)
        _rotate(harness, "acme")
        time.sleep(GRACE)
    assert ("secret", "acme") not in reconciles
    assert refusals.of(runner) == {dropped}


def test_without_create_on_events_no_event_is_posted(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = cluster
    rbac.drop(EVENT_CREATE)
    with harness.operator(all_namespaces=True) as runner:
        harness.create(harness.tenant("acme"))
        harness.wait_ready("acme", timeout=30)  # events are auxiliary: the work is unaffected
        refusals.wait(EVENT_CREATE)
    assert harness.events() == []
    assert refusals.of(runner) == {EVENT_CREATE}


def test_without_create_on_secrets_the_read_only_users_secret_is_unwritable(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = cluster
    rbac.drop(SECRET_CREATE)
    with harness.operator(all_namespaces=True) as runner:
        harness.create(_pg_tenant(harness, "acme", reader=True))
        refusals.wait(SECRET_CREATE)
        _wait_stalled(harness, "acme", "SecretUnwritable", "acme-readonly")
        time.sleep(1)
    assert _reader_secret(harness, "acme") is None
    assert refusals.of(runner) == {SECRET_CREATE}
    assert denials(runner.output) == set()


def test_without_patch_on_secrets_a_stale_read_only_users_secret_is_unwritable(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    """The operator creates the Secret, and on 409 (it exists, with other credentials) patches it."""
    harness, rbac = cluster
    rbac.drop(SECRET_PATCH)
    harness.create(_pg_tenant(harness, "acme", reader=True))
    _tamper(harness, "acme")
    with harness.operator(all_namespaces=True) as runner:
        refusals.wait(SECRET_PATCH)
        _wait_stalled(harness, "acme", "SecretUnwritable", "acme-readonly")
        time.sleep(1)
    assert (_reader_secret(harness, "acme") or {}).get("username") == "intruder"
    assert refusals.of(runner) == {SECRET_PATCH}
    assert denials(runner.output) == set()


def test_without_secret_update_event_patch_or_events_k8s_io_the_lifecycle_has_no_403(
    cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """This proof once showed these grants unused and the chart dropped them: the authorizer now
    refuses them to the operator, and the whole lifecycle still runs without a single 403. The
    operator writes its Secret with create + patch (never update), Kopf only ever POSTs core/v1
    Events, and the operator posts its events through Kopf. (That they stay out of every
    rendering: ``test_the_grants_found_unused_are_no_longer_rendered``.)"""
    harness, rbac = cluster
    assert not rbac.granted & REMOVED
    rbac.wait_effective(rbac.granted, denied=REMOVED)
    with harness.operator(all_namespaces=True) as runner:
        _lifecycle(harness, reconciles)
    _assert_no_refusal(runner, refusals)


CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.PLURAL}.{c.GROUP}"


def _remove_crd(harness: Harness) -> None:
    """Delete the CRD on the private control plane (the ``cluster`` fixture re-installs it)."""
    harness.cp.rest.delete(CRD_PATH)
    wait_for(lambda: _absent(harness, CRD_PATH), 30, "the CRD to be deleted")


def _install_crd_and_create(harness: Harness) -> None:
    for path in crd_files():
        harness.cp.install_crd(path)  # returns once Established and served
    # Kopf re-reads API discovery on each CRD event; the last one (Established) may come before
    # discovery lists the resource, so change the CRD once more now that it does.
    harness.cp.rest.merge_patch(CRD_PATH, {"metadata": {"annotations": {"rbac-proof": uuid.uuid4().hex}}})
    harness.create(harness.tenant("acme"))


def test_with_crd_list_watch_a_crd_installed_after_startup_is_served(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals, caplog: pytest.LogCaptureFixture
) -> None:
    """Kopf watches CRDs to start serving its resource when the CRD appears (or changes): the
    positive half of the test below."""
    harness, _ = cluster
    _remove_crd(harness)
    with harness.operator(all_namespaces=True) as runner:
        wait_for(lambda: "Unresolved resources cannot be served" in caplog.text, 15, "Kopf's startup scan")
        _install_crd_and_create(harness)
        harness.wait_ready("acme", timeout=30)
    assert refusals.of(runner) == set()


@pytest.mark.parametrize("verb", ["list", "watch"])
def test_without_crd_list_or_watch_a_crd_installed_after_startup_is_never_served(
    cluster: tuple[Harness, ChartRbac], refusals: Refusals, verb: str
) -> None:
    harness, rbac = cluster
    dropped = ("apiextensions.k8s.io", "customresourcedefinitions", verb)
    rbac.drop(dropped)
    _remove_crd(harness)
    with harness.operator(all_namespaces=True) as runner:
        refusals.wait(dropped)
        _install_crd_and_create(harness)
        time.sleep(GRACE)
    assert _finalizers(harness, "acme") == []
    assert _status(harness, "acme") == {}
    assert refusals.of(runner) == {dropped}


def _absent(harness: Harness, path: str) -> bool:
    try:
        harness.cp.rest.get(path)
    except KubeApiError as err:
        return err.status == 404
    return False


def test_cluster_rbac_with_watch_namespaces_grants_no_namespace_or_crd_rule_and_needs_none(
    cluster_watching: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """rbac.scope=cluster with watchNamespaces, as the chart deploys it: the Deployment sets
    CHA_WATCH_NAMESPACES, so the operator turns Kopf's cluster scanning off, and Kopf neither
    lists/watches namespaces nor lists/watches CRDs. The chart grants neither rule here, and with
    exactly what it grants a watched namespace created after startup is
    served at once and the whole lifecycle runs without a single 403."""
    harness, rbac = cluster_watching
    unused = {NAMESPACES_LIST, NAMESPACES_WATCH, CRD_LIST, CRD_WATCH}
    assert not rbac.granted & unused, sorted(rbac.granted & unused)
    assert not any(rbac.can(p) for p in unused)
    assert rbac.can(CR_LIST)  # a ClusterRole: cluster-wide
    assert rbac.can(CR_WATCH)
    with harness.operator() as runner:
        time.sleep(1)
        harness.cp.create_namespace(harness.ns)
        _lifecycle(harness, reconciles, ready_timeout=15)
    assert not refusals.of(runner) & unused
    _assert_no_refusal(runner, refusals)


# --------------------------------------------------------------------------------------------
# Dashboards (rbac.dashboards): granted only with the switch, each rule needed, the full grant enough
# --------------------------------------------------------------------------------------------


def test_only_rbac_dashboards_renders_the_dashboard_rules(tmp_path: Path) -> None:
    """Without the switch (the default) no rendering grants a dashboard permission (the lifecycle
    tests above then run a tenant without dashboards with no 403); with it every scope grants
    all of them, on top of the same other rules."""
    peering = {"replicas": 2}
    for values in (*PLAIN_RENDERINGS, *({**v, **peering} for v in PLAIN_RENDERINGS)):
        assert not _granted(tmp_path, values) & dashboard_permissions(), values
        switched = {**values, "rbac": {**values.get("rbac", {}), "dashboards": True}}
        granted = _granted(tmp_path, switched)
        assert granted & dashboard_permissions() == dashboard_permissions(), switched
        assert granted - dashboard_permissions() == _granted(tmp_path, values), switched


@pytest.fixture(scope="module")
def grafana_crds(private_control_plane: ControlPlane) -> None:
    """The grafana-operator's kinds on the private control plane (other tests there ignore them)."""
    private_control_plane.install_crd(GRAFANA_CRDS)


@pytest.fixture
def dashboards_cluster(
    private_control_plane: ControlPlane,
    grafana_crds: None,
    kafka_broker: str,
    postgres_server: PostgresServer,
    risingwave: RisingWaveTarget,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Harness, ChartRbac]]:
    """As ``cluster``, rendered with rbac.dashboards=true, the grafana-operator CRDs installed."""
    ns = unique_name(f"t-{request.node.name}"[:40])
    private_control_plane.create_namespace(ns)
    services = (kafka_broker, postgres_server, risingwave)
    with _cluster_bed(private_control_plane, ns, DASHBOARD_VALUES, services, tmp_path, monkeypatch) as bed:
        assert bed[1].granted & dashboard_permissions() == dashboard_permissions()
        yield bed


#: The two tenants of the dashboard tests: one per provider, so one run covers the three kinds.
SIDECAR, GRAFANA_OP = "cm", "go"
OBJECTS = {
    SIDECAR: {"ConfigMap": "cm-dashboard"},
    GRAFANA_OP: {"GrafanaDatasource": "go-risingwave", "GrafanaDashboard": "go-dashboard"},
}
_PATHS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps/{name}",
    "GrafanaDatasource": f"/apis/{GRAFANA}/v1beta1/namespaces/{{ns}}/grafanadatasources/{{name}}",
    "GrafanaDashboard": f"/apis/{GRAFANA}/v1beta1/namespaces/{{ns}}/grafanadashboards/{{name}}",
}


def _object_path(harness: Harness, kind: str, name: str) -> str:
    return _PATHS[kind].format(ns=harness.ns, name=name)


def _object(harness: Harness, kind: str, name: str) -> dict[str, Any] | None:
    try:
        out: dict[str, Any] = harness.cp.rest.get(_object_path(harness, kind, name))
        return out
    except KubeApiError as err:
        if err.status == 404:
            return None
        raise


def _all_objects(harness: Harness) -> dict[str, dict[str, Any] | None]:
    return {
        f"{kind}/{name}": _object(harness, kind, name)
        for objects in OBJECTS.values()
        for kind, name in objects.items()
    }


def _dashboard_states(harness: Harness, cr: str) -> dict[str, str]:
    return {
        f"{o['kind']}/{o['name']}": o["state"]
        for o in _status(harness, cr).get("objects") or []
        if o["kind"] in ("ConfigMap", "GrafanaDatasource", "GrafanaDashboard")
    }


def _wait_states(harness: Harness, state: str) -> None:
    for cr, objects in OBJECTS.items():
        want = {f"{kind}/{name}": state for kind, name in objects.items()}
        wait_for(lambda cr=cr, want=want: _dashboard_states(harness, cr) == want, 60, f"{cr}: {want}")


def _create_dashboard_tenants(harness: Harness) -> None:
    for cr, provider in ((SIDECAR, "ConfigMap"), (GRAFANA_OP, "GrafanaOperator")):
        body = harness.tenant(
            cr,
            readOnlyUser={"enabled": True},
            dashboards={"enabled": True, "provider": provider},
            onDrift="Correct",
        )
        harness.create(body)


def _dashboard_failures(harness: Harness) -> str:
    return "\n".join(e["message"] for e in harness.events() if e["reason"] == "DashboardsFailed")


def _wait_failed(harness: Harness, verb: str, refs: list[str]) -> None:
    """Each object's refused call is named in a DashboardsFailed Event: verb, kind, object, 403."""
    for ref in refs:
        wait_for(
            lambda ref=ref: f"cannot {verb} {ref}: 403 Forbidden" in _dashboard_failures(harness),
            60,
            f"DashboardsFailed naming {verb} {ref}",
        )


def _refs(harness: Harness, *tenants: str) -> list[str]:
    return [f"{kind} {harness.ns}/{name}" for t in tenants for kind, name in OBJECTS[t].items()]


def _edit(harness: Harness) -> None:
    """Drift on both tenants: the sidecar's dashboard emptied, the data source pointed elsewhere."""
    cm = _object(harness, "ConfigMap", "cm-dashboard") or {}
    ((key, _),) = cm["data"].items()
    harness.cp.rest.merge_patch(_object_path(harness, "ConfigMap", "cm-dashboard"), {"data": {key: "{}"}})
    harness.cp.rest.merge_patch(
        _object_path(harness, "GrafanaDatasource", "go-risingwave"),
        {"spec": {"datasource": {"url": "elsewhere:5432"}}},
    )


def _edited(harness: Harness) -> bool:
    cm = _object(harness, "ConfigMap", "cm-dashboard") or {}
    ds = _object(harness, "GrafanaDatasource", "go-risingwave") or {}
    return (
        list((cm.get("data") or {}).values()) == ["{}"]
        and (ds.get("spec") or {}).get("datasource", {}).get("url") == "elsewhere:5432"
    )


def test_with_rbac_dashboards_grafana_objects_are_created_updated_and_deleted_without_a_403(
    dashboards_cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """With exactly the rules rbac.dashboards adds: both providers' objects are created, updated
    on a pipeline change, restored after drift, deleted when disabled and with the resource."""
    harness, _ = dashboards_cluster
    with harness.operator(all_namespaces=True) as runner:
        _create_dashboard_tenants(harness)
        _wait_states(harness, "Ready")
        before = _all_objects(harness)
        assert all(before.values()), before

        for cr in OBJECTS:
            harness.patch_spec(cr, {"analytics": {"tariffs": {"currency": "GBP"}}})
        wait_for(
            lambda: (
                "currencyGBP" in json.dumps(_object(harness, "ConfigMap", "cm-dashboard"))
                and "currencyGBP" in json.dumps(_object(harness, "GrafanaDashboard", "go-dashboard"))
            ),
            60,
            "both dashboards updated",
        )
        _edit(harness)
        wait_for(lambda: any(e["reason"] == "DriftCorrected" for e in harness.events()), 60, "restored")
        wait_for(
            lambda: not _edited(harness) and "elsewhere" not in json.dumps(_all_objects(harness)), 60, ""
        )

        harness.patch_spec(SIDECAR, {"dashboards": {"enabled": False}})
        wait_for(lambda: _object(harness, "ConfigMap", "cm-dashboard") is None, 60, "the ConfigMap deleted")
        reconciles.settle()
        harness.delete(GRAFANA_OP)
        harness.wait_gone(GRAFANA_OP)
        assert _object(harness, "GrafanaDatasource", "go-risingwave") is None
        assert _object(harness, "GrafanaDashboard", "go-dashboard") is None
    assert _dashboard_failures(harness) == ""
    _assert_no_refusal(runner, refusals)


def test_without_dashboard_get_each_grafana_object_is_failed(
    dashboards_cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    """The operator compares each object with the spec before anything else: without get none is
    made, each is Failed in status.objects and named in DashboardsFailed, the SQL pipeline is
    Ready all the same."""
    harness, rbac = dashboards_cluster
    dropped = dashboard_permissions("get")
    rbac.drop(*dropped)
    with harness.operator(all_namespaces=True) as runner:
        _create_dashboard_tenants(harness)
        _wait_states(harness, "Failed")
        _wait_failed(harness, "get", _refs(harness, SIDECAR, GRAFANA_OP))
        for cr in OBJECTS:
            assert harness.condition(cr, c.COND_READY)["status"] == "True"  # type: ignore[index]
    assert set(_all_objects(harness).values()) == {None}
    assert refusals.of(runner) == dropped


def test_without_dashboard_create_no_grafana_object_is_made(
    dashboards_cluster: tuple[Harness, ChartRbac], refusals: Refusals
) -> None:
    harness, rbac = dashboards_cluster
    dropped = dashboard_permissions("create")
    rbac.drop(*dropped)
    with harness.operator(all_namespaces=True) as runner:
        _create_dashboard_tenants(harness)
        _wait_states(harness, "Failed")
        _wait_failed(harness, "create", _refs(harness, SIDECAR, GRAFANA_OP))
    assert set(_all_objects(harness).values()) == {None}
    assert refusals.of(runner) == dropped


def test_without_dashboard_update_drift_is_reported_not_restored(
    dashboards_cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals
) -> None:
    """Drift is written back with a PUT: without update the edited objects stay edited, are
    Failed, named in DashboardsFailed, and the resource shows Drifted=True naming them."""
    harness, rbac = dashboards_cluster
    dropped = dashboard_permissions("update")
    with harness.operator(all_namespaces=True) as runner:
        _create_dashboard_tenants(harness)
        _wait_states(harness, "Ready")
        rbac.drop(*dropped)
        _edit(harness)
        _wait_failed(harness, "update", [f"ConfigMap {harness.ns}/cm-dashboard"])
        _wait_failed(harness, "update", [f"GrafanaDatasource {harness.ns}/go-risingwave"])
        for cr, (kind, name) in (
            (SIDECAR, ("ConfigMap", "cm-dashboard")),
            (GRAFANA_OP, ("GrafanaDatasource", "go-risingwave")),
        ):
            drifted = harness.wait_condition(cr, c.COND_DRIFTED, "True")
            message = next(
                x["message"] for x in drifted["status"]["conditions"] if x["type"] == c.COND_DRIFTED
            )
            assert f"{kind} {harness.ns}/{name} was edited outside the operator" in message
            assert _dashboard_states(harness, cr)[f"{kind}/{name}"] == "Failed"
        reconciles.wait_more(GRAFANA_OP)
        assert _edited(harness)
        for cr in OBJECTS:  # later reconciles still take it for drift, not for a spec change
            assert harness.condition(cr, c.COND_DRIFTED)["status"] == "True"  # type: ignore[index]
    assert refusals.of(runner) == {("", "configmaps", "update"), (GRAFANA, "grafanadatasources", "update")}


@pytest.mark.parametrize("verb", ["list", "delete"])
def test_without_dashboard_list_or_delete_disabled_dashboards_stay(
    dashboards_cluster: tuple[Harness, ChartRbac], reconciles: Reconciles, refusals: Refusals, verb: str
) -> None:
    """What the spec no longer wants is found by the owner label (list) and deleted: without
    either, disabled dashboards stay, listed Failed in status.objects, named in DashboardsFailed,
    and retried."""
    harness, rbac = dashboards_cluster
    dropped = dashboard_permissions(verb)
    with harness.operator(all_namespaces=True) as runner:
        _create_dashboard_tenants(harness)
        _wait_states(harness, "Ready")
        rbac.drop(*dropped)
        for cr in OBJECTS:
            harness.patch_spec(cr, {"dashboards": {"enabled": False}})
        if verb == "list":
            refs = [f"ConfigMaps in {harness.ns}", f"GrafanaDatasources in {harness.ns}"]
            refs.append(f"GrafanaDashboards in {harness.ns}")
        else:
            refs = _refs(harness, SIDECAR, GRAFANA_OP)
        _wait_failed(harness, verb, refs)
        _wait_states(harness, "Failed")
        reconciles.wait_more(GRAFANA_OP)
        assert None not in _all_objects(harness).values()
    assert refusals.of(runner) == dropped


# --------------------------------------------------------------------------------------------
# What the chart does not grant is refused
# --------------------------------------------------------------------------------------------


def _refused(call: Callable[[], Any]) -> KubeApiError:
    with pytest.raises(KubeApiError) as info:
        call()
    assert info.value.status == 403, info.value
    assert info.value.reason == "Forbidden"
    return info.value


def _refusals(harness: Harness, rbac: ChartRbac) -> None:
    ns, rest = harness.ns, rbac.rest
    harness.secret("victim", {"password": "x"})
    harness.cp.rest.post(harness.path(), harness.tenant("acme", create_topic_=False))
    _refused(lambda: rest.delete(f"/api/v1/namespaces/{ns}/secrets/victim"))
    _refused(lambda: rest.delete(harness.path("acme")))
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"escalate-{uuid.uuid4().hex[:6]}"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
    }
    _refused(lambda: rest.post("/apis/rbac.authorization.k8s.io/v1/clusterroles", role))
    acme = harness.cp.rest.get(harness.path("acme"))
    _refused(lambda: rest.put(harness.path("acme"), acme))  # update: never rewrite a user's spec
    _refused(lambda: rest.post(f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "p"}}))
    assert harness.get("acme") is not None
    assert harness.cp.rest.get(f"/api/v1/namespaces/{ns}/secrets/victim")


def test_the_namespaced_identity_is_refused_what_the_chart_does_not_grant(
    harness: Harness, namespaced: ChartRbac
) -> None:
    _refusals(harness, namespaced)
    elsewhere = _release_namespace(harness.cp)  # e.g. the operator's own namespace
    harness.cp.rest.post(
        f"/api/v1/namespaces/{elsewhere}/secrets",
        {"metadata": {"name": "other"}, "stringData": {"password": "x"}},
    )
    _refused(lambda: namespaced.rest.get(f"/api/v1/namespaces/{elsewhere}/secrets/other"))
    _refused(lambda: namespaced.rest.get(f"/api/v1/namespaces/{elsewhere}/secrets"))
    _refused(lambda: namespaced.rest.get(f"/apis/{G}/{c.VERSION}/{c.PLURAL}"))  # cluster-wide list


def test_the_cluster_identity_is_refused_what_the_chart_does_not_grant(
    cluster: tuple[Harness, ChartRbac],
) -> None:
    harness, rbac = cluster
    _refusals(harness, rbac)
    crd = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.PLURAL}.{c.GROUP}"
    _refused(lambda: rbac.rest.get(crd))  # list/watch only: Kopf never reads one by name
    _refused(lambda: rbac.rest.delete(crd))
