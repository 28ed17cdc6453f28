"""The reconcile service: one level-triggered reconcile per resource, built once at startup.

Kopf handlers (``main.py``) only translate their arguments and call these methods. The service
holds what must be shared: RisingWave connection pools and one catalog snapshot per endpoint
(refreshed at most once per ``catalog_cache_seconds``, so many tenants on one endpoint cost one
catalog read per interval), the secret-store probe, and a lock per resource.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import ValidationError

from .. import constants as c
from ..apply import ApplyError, TargetRunner, apply_plan
from ..catalog import CatalogSnapshot, TenantCatalog
from ..plan import PlanOptions, build_plan, teardown_plan
from ..render import (
    Credential,
    Credentials,
    RenderOptions,
    SecretStore,
    reader_name,
    referenced_secrets,
    render,
)
from ..rw.capabilities import UnsupportedRisingWaveVersion
from ..rw.client import Endpoint, RisingWaveClient, RisingWaveUnavailable
from ..spec import ChargingAnalyticsSpec, RisingWaveSpec
from ..status import (
    Cond,
    drifted,
    fingerprints_from,
    merge_conditions,
    objects_status,
    plan_status,
    ready,
    stalled,
    waiting,
)
from ..validation import issues_from
from . import metrics
from .checks import CheckFailure, check_kafka, ensure_postgres_table, run_on_alerts_db
from .dashboards import DashboardProvisioner, Owner, owns_dashboards, read_only_secret
from .kube import KubeApi, KubeError
from .settings import OperatorSettings

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Resource:
    """What a reconcile needs from a ChargingAnalytics object."""

    namespace: str
    name: str
    generation: int | None
    uid: str | None
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @property
    def owner(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Resource:
        meta = body.get("metadata", {})
        return cls(
            namespace=meta.get("namespace", "default"),
            name=meta["name"],
            generation=meta.get("generation"),
            uid=meta.get("uid"),
            spec=dict(body.get("spec") or {}),
            status=dict(body.get("status") or {}),
            annotations=dict(meta.get("annotations") or {}),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
        )


@dataclass
class Outcome:
    """The result of a reconcile: what to write to status, which events to post, when to retry."""

    conditions: list[Cond] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    events: list[tuple[EventType, str, str]] = field(default_factory=list)
    retry_after: float | None = None
    result: str = "ok"


class RetryLater(Exception):
    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class Service:
    def __init__(self, settings: OperatorSettings, kube: KubeApi | None = None) -> None:
        self.settings = settings
        self.kube = kube or KubeApi()
        self._clients: dict[tuple[str, str, str], RisingWaveClient] = {}
        self._clients_lock = asyncio.Lock()
        self._snapshots: dict[str, CatalogSnapshot] = {}
        self._snapshot_locks: dict[str, asyncio.Lock] = {}
        self._secret_store: dict[str, SecretStore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, int] = {}
        #: (namespace, secret name) -> resources that reference it
        self._secret_refs: dict[tuple[str, str], set[str]] = {}
        #: Resources being (or already) deleted: late reconciles must not rebuild them.
        self._deleting: set[str] = set()
        self._grafana: DashboardProvisioner | None = None  # made on first use (dashboards.py)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    # ------------------------------------------------------------------------------------------
    # RisingWave access
    # ------------------------------------------------------------------------------------------

    def _endpoint_spec(self, spec: ChargingAnalyticsSpec) -> RisingWaveSpec | None:
        if spec.risingwave is not None:
            return spec.risingwave
        if self.settings.default_rw_host:
            return RisingWaveSpec(
                host=self.settings.default_rw_host,
                port=self.settings.default_rw_port,
                database=self.settings.default_rw_database,
                sslmode=self.settings.default_rw_sslmode,
            )
        return None

    async def _endpoint(self, res: Resource, spec: ChargingAnalyticsSpec) -> Endpoint:
        rw = self._endpoint_spec(spec)
        if rw is None:
            raise CheckFailure(
                "NoRisingWaveEndpoint", "spec.risingwave is not set and the operator has no default"
            )
        if spec.risingwave is None:
            user, password = self.settings.default_rw_user, self.settings.default_rw_password or ""
        elif rw.credentials_secret_ref is not None:
            cred = await self._credential(res.namespace, rw.credentials_secret_ref, "spec.risingwave")
            user, password = cred.username, cred.password
        else:
            user, password = "root", ""
        return Endpoint(
            host=rw.host, port=rw.port, database=rw.database, user=user, password=password, sslmode=rw.sslmode
        )

    async def _client(self, endpoint: Endpoint) -> RisingWaveClient:
        async with self._clients_lock:  # concurrent reconciles must not open two pools for one key
            return await self._client_locked(endpoint)

    async def _client_locked(self, endpoint: Endpoint) -> RisingWaveClient:
        digest = hashlib.sha256(endpoint.password.encode()).hexdigest()
        key = (endpoint.key, endpoint.user, digest)
        client = self._clients.get(key)
        if client is None:
            for old in [k for k in self._clients if k[:2] == key[:2]]:  # rotated password
                await self._clients.pop(old).close()
            client = RisingWaveClient(
                endpoint,
                statement_timeout=self.settings.statement_timeout_seconds,
                connect_timeout=self.settings.connect_timeout_seconds,
                max_size=self.settings.pool_max_size,
            )
            await client.open()
            self._clients[key] = client
        return client

    async def snapshot(self, client: RisingWaveClient, endpoint: Endpoint, *, fresh: bool) -> CatalogSnapshot:
        """The endpoint's shared snapshot; re-read when older than the cache age (or ``fresh``)."""
        lock = self._snapshot_locks.setdefault(endpoint.key, asyncio.Lock())
        async with lock:
            cached = self._snapshots.get(endpoint.key)
            age = time.monotonic() - cached.taken_at if cached else None
            if cached is None or fresh or age is None or age > self.settings.catalog_cache_seconds:
                cached = await client.snapshot()
                metrics.CATALOG_READS.labels(endpoint.key).inc()
                self._snapshots[endpoint.key] = cached
            return cached

    async def _store_for(self, client: RisingWaveClient, endpoint: Endpoint) -> SecretStore:
        if self.settings.secret_store != "auto":
            return self.settings.secret_store
        store = self._secret_store.get(endpoint.key)
        if store is None:
            store = "risingwave" if await client.secrets_available() else "inline"
            self._secret_store[endpoint.key] = store
            log.info("secret store for %s: %s", endpoint.key, store)
        return store

    # ------------------------------------------------------------------------------------------
    # Secrets
    # ------------------------------------------------------------------------------------------

    async def _credential(self, namespace: str, ref: Any, field_path: str) -> Credential:
        self._secret_refs.setdefault((namespace, ref.name), set())
        try:
            data = await self.kube.read_secret(namespace, ref.name)
        except KubeError as err:
            raise CheckFailure(
                "SecretUnreadable", f"{field_path}: cannot read Secret {namespace}/{ref.name}: {err}"
            ) from err
        if data is None:
            raise CheckFailure("SecretMissing", f"{field_path}: Secret {namespace}/{ref.name} not found")
        for key in (ref.username_key, ref.password_key):
            if key not in data:
                raise CheckFailure(
                    "SecretKeyMissing", f"{field_path}: Secret {namespace}/{ref.name} has no key {key!r}"
                )
            if "\0" in data[key]:
                # no SQL string literal can carry NUL (the wire protocol ends the query there)
                raise CheckFailure(
                    "SecretValueInvalid",
                    f"{field_path}: Secret {namespace}/{ref.name} key {key!r} contains a NUL character",
                )
        return Credential(data[ref.username_key], data[ref.password_key])

    async def _credentials(self, res: Resource, spec: ChargingAnalyticsSpec) -> Credentials:
        found: dict[str, Credential] = {}
        paths = {
            "kafka": "spec.kafka.security.credentialsSecretRef",
            "alerts_db": "spec.alerts.sinks.postgres.credentialsSecretRef",
        }
        for role, ref in referenced_secrets(spec).items():
            self._secret_refs.setdefault((res.namespace, ref.name), set()).add(res.owner)
            found[role] = await self._credential(res.namespace, ref, paths[role])
        if spec.risingwave is not None and spec.risingwave.credentials_secret_ref is not None:
            self._secret_refs.setdefault(
                (res.namespace, spec.risingwave.credentials_secret_ref.name), set()
            ).add(res.owner)
        return Credentials(kafka=found.get("kafka"), alerts_db=found.get("alerts_db"))

    async def _reader(
        self, res: Resource, spec: ChargingAnalyticsSpec, endpoint: Endpoint
    ) -> Credential | None:
        """The read-only user's credentials, generated once and kept in a Secret of the namespace.

        Deleting that Secret rotates the password on the next reconcile. Plan mode writes nothing.
        """
        if not spec.read_only_user.enabled:
            return None
        secret = read_only_secret(_owner(res), spec)
        user = reader_name(spec.tenant)
        self._secret_refs.setdefault((res.namespace, secret), set()).add(res.owner)
        try:
            data = await self.kube.read_secret(res.namespace, secret)
        except KubeError as err:
            raise CheckFailure(
                "SecretUnreadable", f"cannot read Secret {res.namespace}/{secret}: {err}"
            ) from err
        if data and data.get("username") == user and data.get("password"):
            return Credential(user, data["password"])
        if spec.mode != "Apply":
            return None
        password = secrets.token_urlsafe(24)
        owner = None
        if res.uid:
            owner = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": res.name, "uid": res.uid}
        write = self.kube.write_secret(
            res.namespace,
            secret,
            {
                "username": user,
                "password": password,
                "host": endpoint.host,
                "port": str(endpoint.port),
                "database": endpoint.database,
                "schema": spec.tenant,
            },
            owner=owner,
        )
        try:
            await write
        except KubeError as err:
            raise CheckFailure(
                "SecretUnwritable", f"cannot write Secret {res.namespace}/{secret}: {err}"
            ) from err
        return Credential(user, password)

    def resources_using_secret(self, namespace: str, name: str) -> set[str]:
        return set(self._secret_refs.get((namespace, name), set()))

    # ------------------------------------------------------------------------------------------
    # Reconcile
    # ------------------------------------------------------------------------------------------

    def _lock(self, res: Resource) -> asyncio.Lock:
        return self._locks.setdefault(res.owner, asyncio.Lock())

    def _backoff(self, res: Resource) -> float:
        n = self._failures.get(res.owner, 0)
        self._failures[res.owner] = n + 1
        return float(min(self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2**n))

    def skip_reason(self, res: Resource, origin: str) -> str | None:
        """Why a reconcile must not run now (None: it may)."""
        if origin == "create":
            self._deleting.discard(res.owner)  # a new resource under a reused name
        if res.deleting or res.owner in self._deleting:
            return "being deleted"
        if origin in ("timer", "secret") and c.FINALIZER not in res.finalizers:
            return "not yet adopted (no finalizer): the create handler has not run"
        return None

    async def reconcile(self, res: Resource, *, origin: str) -> Outcome:
        """Read Secrets, check preconditions, snapshot, plan, apply, write status."""
        skip = self.skip_reason(res, origin)
        if skip is not None:
            log.debug("not reconciling %s (%s): %s", res.owner, origin, skip)
            return Outcome(result="skipped")
        async with self._lock(res):
            if res.owner in self._deleting:  # deleted while this reconcile waited for the lock
                return Outcome(result="skipped")
            started = time.monotonic()
            outcome = await self._reconcile(res, origin=origin)
            await self._dashboards(res, outcome)
            if outcome.retry_after is None:
                self._failures.pop(res.owner, None)
            await self._publish(res, outcome)
            metrics.RECONCILE_SECONDS.labels(outcome.result).observe(time.monotonic() - started)
            return outcome

    @property
    def grafana(self) -> DashboardProvisioner:
        if self._grafana is None:
            self._grafana = DashboardProvisioner(
                self.kube.api, discovery_seconds=self.settings.catalog_cache_seconds
            )
        return self._grafana

    async def _dashboards(self, res: Resource, out: Outcome) -> None:
        """The tenant's Grafana objects, once its SQL objects were reconciled (dashboards.py)."""
        if "objects" not in out.status:
            return  # stalled before planning: nothing to show yet
        spec = ChargingAnalyticsSpec.model_validate(res.spec)
        if not spec.dashboards.enabled and not owns_dashboards(res.status):
            return
        try:
            endpoint = await self._endpoint(res, spec)
            results = await self.grafana.reconcile(
                _owner(res),
                spec,
                endpoint,
                apply=spec.mode == "Apply",
                correct_drift=spec.on_drift == "Correct",
            )
        except (KubeError, CheckFailure) as err:
            out.events.append(("Warning", "DashboardsFailed", f"Grafana objects: {err}"))
            out.retry_after = out.retry_after or self._backoff(res)
            return
        out.status["objects"] = [*out.status["objects"], *(r.status() for r in results)]
        for r in results:
            if r.change in ("created", "updated"):
                out.events.append(("Normal", f"Dashboard{r.change.title()}", f"{r.kind} {r.name} {r.change}"))

    async def _reconcile(self, res: Resource, *, origin: str) -> Outcome:
        out = Outcome()
        try:
            spec = ChargingAnalyticsSpec.model_validate(res.spec)
        except ValidationError as err:
            msg = "; ".join(f"{i.path}: {i.message}" for i in issues_from(err, res.owner, "spec"))
            return self._stalled(res, out, "InvalidSpec", msg, retry=False)
        if spec.suspend:
            out.conditions = waiting("Suspended", "reconciliation is paused (spec.suspend)")
            out.result = "suspended"
            return out
        try:
            endpoint = await self._endpoint(res, spec)
            creds = await self._credentials(res, spec)
            reader = await self._reader(res, spec, endpoint)
            if reader is not None:
                creds = replace(creds, reader=reader)
            applying = spec.mode == "Apply"  # Plan mode changes nothing anywhere
            # the server's version decides what may be sent; below the floor nothing is
            client = await self._client(endpoint)
            capabilities = await client.capabilities()
            capabilities.require_supported(endpoint.key)
            if self.settings.check_kafka:
                created = await check_kafka(
                    spec, creds.kafka, self.settings.kafka_timeout_seconds, create=applying
                )
                for topic in created:
                    out.events.append(("Normal", "TopicCreated", f"created alerts topic {topic}"))
            if applying and spec.alerts.sinks.postgres is not None and self.settings.manage_postgres_table:
                assert creds.alerts_db is not None
                await ensure_postgres_table(spec, creds.alerts_db, self.settings.kafka_timeout_seconds)
            store = await self._store_for(client, endpoint)
            snapshot = await self.snapshot(client, endpoint, fresh=origin != "timer")
        except CheckFailure as err:
            return self._stalled(res, out, err.reason, err.message)
        except UnsupportedRisingWaveVersion as err:
            return self._stalled(res, out, "UnsupportedRisingWaveVersion", str(err))
        except RisingWaveUnavailable as err:
            return self._unavailable(res, out, err)
        out.status["endpoint"] = endpoint.key

        owner = snapshot.owners.get(spec.tenant)
        if owner is not None and owner != res.owner:
            return self._stalled(
                res,
                out,
                "TenantConflict",
                f"tenant {spec.tenant!r} on {endpoint.key} is already owned by {owner}; nothing was changed",
                retry=False,
            )

        catalog = snapshot.tenant(spec.tenant)
        # off the event loop: a new or rotated credential costs a deliberately slow digest
        desired = await asyncio.to_thread(
            render, spec, RenderOptions(secret_store=store, credentials=creds, capabilities=capabilities)
        )
        options = PlanOptions(
            zero_downtime=self.settings.zero_downtime,
            owner=res.owner,
            expected_fingerprints=fingerprints_from(res.status),
            ledger_exists=snapshot.ledger_exists,
            correct_drift=spec.on_drift == "Correct",
        )
        plan = build_plan(desired, catalog, options)
        out.status["planHash"] = plan.hash
        drift_cond = drifted(plan)

        if origin == "timer" and plan.empty:
            out.conditions = [*ready("UpToDate", self._ready_message(desired)), drift_cond]
            out.status["objects"] = objects_status(desired, catalog)
            out.status["plan"] = None
            return out

        unresolved = sorted({role for o in desired for role in o.unresolved})
        if unresolved and spec.mode == "Apply":  # never send a placeholder credential
            return self._stalled(
                res, out, "CredentialsUnresolved", f"no credentials for {', '.join(unresolved)}"
            )

        if spec.mode == "Plan":
            if not plan.empty and plan.hash != res.status.get("planHash"):
                out.events.append(("Normal", "PlanReady", f"plan {plan.hash}: {plan.summary()}"))
            out.status["plan"] = plan_status(plan)
            out.status["objects"] = objects_status(desired, catalog)
            if plan.empty:
                out.conditions = [*ready("UpToDate", "plan mode: nothing to change"), drift_cond]
            else:
                out.conditions = [
                    *waiting("PlanReady", f"plan mode: {plan.summary()} (plan {plan.hash})"),
                    drift_cond,
                ]
            out.result = "plan"
            return out

        if plan.drift and not options.correct_drift:
            out.events.append(("Warning", "DriftDetected", drift_cond.message))
        approved = res.annotations.get(c.ANNOTATION_APPROVED_PLAN)
        ns, name = res.namespace, res.name
        if plan.destructive and approved != plan.hash:
            stale = f"; approval {approved} is stale" if approved else ""
            out.status["plan"] = plan_status(plan)
            out.status["objects"] = objects_status(desired, catalog)
            out.conditions = [
                *waiting(
                    "ApprovalPending",
                    f"destructive plan {plan.hash} ({plan.summary()}) waits for approval: annotate "
                    f"{c.ANNOTATION_APPROVED_PLAN}={plan.hash}{stale}",
                ),
                drift_cond,
            ]
            out.events.append(("Warning", "ApprovalRequired", f"destructive plan {plan.hash}{stale}"))
            metrics.PENDING_APPROVALS.labels(ns, name).set(1)
            out.result = "approval"
            return out
        metrics.PENDING_APPROVALS.labels(ns, name).set(0)

        if not plan.empty:
            stop = asyncio.Event()
            reporter = asyncio.create_task(self._report_progress(res, client, desired, catalog, stop))
            try:
                result = await apply_plan(client, plan, target=self._alerts_target(spec, creds))
            except ApplyError as err:
                self._snapshots.pop(endpoint.key, None)
                if isinstance(err.cause, RisingWaveUnavailable):
                    return self._unavailable(res, out, err.cause)
                return self._stalled(
                    res, out, "ApplyFailed", f"{err.action.type} {err.action.name}: {err.cause}"
                )
            finally:
                stop.set()
                await reporter
            for a in result.applied:
                metrics.APPLIED_ACTIONS.labels(a.type).inc()
            if plan.drift and options.correct_drift:
                metrics.DRIFT_CORRECTIONS.labels(ns, name).inc()
                out.events.append(("Normal", "DriftCorrected", drifted(plan).message))
            out.events.append(("Normal", "Applied", f"plan {plan.hash}: {plan.summary()}"))
            try:
                snapshot = await self.snapshot(client, endpoint, fresh=True)
            except RisingWaveUnavailable as err:
                return self._unavailable(res, out, err)
            catalog = snapshot.tenant(spec.tenant)
            after = build_plan(desired, catalog, PlanOptions(owner=res.owner, ledger_exists=True))
            drift_cond = drifted(after) if options.correct_drift else drift_cond
        objects = objects_status(desired, catalog)
        out.status["objects"] = objects
        out.status["plan"] = None
        out.status["appliedHash"] = _desired_hash(desired)
        building = [o["name"] for o in objects if o["state"] == "Creating"]
        metrics.MANAGED_OBJECTS.labels(ns, name).set(len(objects))
        metrics.DRIFT_DETECTED.labels(ns, name).set(1 if drift_cond.status == "True" else 0)
        if building:
            out.conditions = [
                Cond(c.COND_READY, "False", "Backfilling", f"building {', '.join(building)}"),
                Cond(c.COND_RECONCILING, "True", "Backfilling", f"building {', '.join(building)}"),
                Cond(c.COND_STALLED, "False", "Backfilling", ""),
                drift_cond,
            ]
            out.retry_after = self.settings.backoff_base_seconds
            out.result = "backfilling"
            return out
        out.conditions = [
            *ready("Applied" if not plan.empty else "UpToDate", self._ready_message(desired)),
            drift_cond,
        ]
        return out

    async def _report_progress(
        self,
        res: Resource,
        client: RisingWaveClient,
        desired: list[Any],
        before: TenantCatalog,
        stop: asyncio.Event,
    ) -> None:
        """While a (foreground) apply waits for backfills, publish their progress every interval
        (one small read of the DDL progress, not a catalog snapshot)."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.progress_interval_seconds)
                return
            except TimeoutError:
                pass
            try:
                prefix = before.tenant + "."
                progress = {
                    q.removeprefix(prefix): p
                    for q, p in (await client.ddl_progress()).items()
                    if q.startswith(prefix)
                }
                if not progress:
                    continue
                catalog = replace(before, ddl_progress=progress)
                objects = objects_status(desired, catalog)
                building = ", ".join(
                    f"{o['name']} {o['backfillProgress']}" for o in objects if o.get("backfillProgress")
                )
                conditions = merge_conditions(
                    res.status.get("conditions"),
                    [
                        Cond(c.COND_READY, "False", "Backfilling", f"building {building}"),
                        Cond(c.COND_RECONCILING, "True", "Backfilling", f"building {building}"),
                        Cond(c.COND_STALLED, "False", "Backfilling", ""),
                    ],
                    res.generation,
                )
                await self.kube.patch_status(
                    res.namespace, res.name, {"objects": objects, "conditions": conditions}
                )
            except Exception:  # progress is best effort; the apply itself reports failures
                log.debug("progress report failed", exc_info=True)

    def _alerts_target(self, spec: ChargingAnalyticsSpec, creds: Credentials) -> TargetRunner | None:
        """Runs statements on the alert database when the operator manages the alert table."""
        cred = creds.alerts_db
        if spec.alerts.sinks.postgres is None or cred is None or not self.settings.manage_postgres_table:
            return None
        return functools.partial(run_on_alerts_db, spec, cred, self.settings.kafka_timeout_seconds)

    @staticmethod
    def _ready_message(desired: list[Any]) -> str:
        return f"{len(desired)} objects in RisingWave match the spec"

    def _stalled(
        self, res: Resource, out: Outcome, reason: str, message: str, *, retry: bool = True
    ) -> Outcome:
        """Stalled: Ready=False, an event, and (unless only a spec change can help) a retry with
        exponential backoff; the drift timer retries too, so nothing waits forever."""
        if retry:
            out.retry_after = self._backoff(res)
            message = f"{message} (retrying in {out.retry_after:.0f}s)"
        out.conditions = stalled(reason, message)
        out.events.append(("Warning", reason, message))
        out.result = "stalled"
        metrics.RECONCILE_ERRORS.labels(reason).inc()
        return out

    def _unavailable(self, res: Resource, out: Outcome, err: Exception) -> Outcome:
        return self._stalled(res, out, "RisingWaveUnavailable", str(err))

    async def _publish(self, res: Resource, out: Outcome) -> None:
        status: dict[str, Any] = dict(out.status)
        status["conditions"] = merge_conditions(res.status.get("conditions"), out.conditions, res.generation)
        if res.generation is not None:
            status["observedGeneration"] = res.generation
        await self.kube.patch_status(res.namespace, res.name, status)

    # ------------------------------------------------------------------------------------------
    # Deletion
    # ------------------------------------------------------------------------------------------

    async def delete(self, res: Resource) -> Outcome:
        """Drop (Delete) or release (Orphan) the tenant; raise RetryLater while RisingWave is down."""
        self._deleting.add(res.owner)
        out = Outcome()
        if res.annotations.get(c.ANNOTATION_FORCE_DELETE, "").lower() == "true":
            out.events.append(
                ("Warning", "FinalizerReleased", "force-released: RisingWave objects were not dropped")
            )
            return out
        try:
            spec = ChargingAnalyticsSpec.model_validate(res.spec)
        except ValidationError:
            out.events.append(("Warning", "InvalidSpec", "spec invalid; nothing to clean up"))
            return out
        async with self._lock(res):
            try:
                endpoint = await self._endpoint(res, spec)
                client = await self._client(endpoint)
                snapshot = await self.snapshot(client, endpoint, fresh=True)
            except CheckFailure as err:
                raise RetryLater(f"{err.reason}: {err.message}", self._backoff(res)) from err
            except RisingWaveUnavailable as err:
                raise RetryLater(f"RisingWave unavailable: {err}", self._backoff(res)) from err
            owner = snapshot.owners.get(spec.tenant)
            if owner is not None and owner != res.owner:
                out.events.append(("Normal", "NotOwner", f"tenant owned by {owner}; nothing dropped"))
                return out
            catalog = snapshot.tenant(spec.tenant)
            plan = teardown_plan(catalog, orphan_ledger_only=spec.deletion_policy == "Orphan")
            try:
                await apply_plan(client, plan)
            except ApplyError as err:
                self._snapshots.pop(endpoint.key, None)
                raise RetryLater(f"{err}", self._backoff(res)) from err
            self._snapshots.pop(endpoint.key, None)
            if spec.dashboards.enabled or owns_dashboards(res.status):
                try:
                    await self.grafana.delete_all(_owner(res))
                except KubeError as err:
                    raise RetryLater(f"Grafana objects: {err}", self._backoff(res)) from err
            verb = "dropped" if spec.deletion_policy == "Delete" else "orphaned"
            out.events.append(("Normal", "Deleted", f"tenant {spec.tenant} {verb} ({plan.summary()})"))
            for refs in self._secret_refs.values():
                refs.discard(res.owner)
            return out


def _owner(res: Resource) -> Owner:
    return Owner(res.namespace, res.name, res.uid)


def _desired_hash(desired: list[Any]) -> str:
    h = hashlib.sha256()
    for o in desired:
        h.update(f"{o.key}={o.hash}\n".encode())
    return "sha256:" + h.hexdigest()[:24]
