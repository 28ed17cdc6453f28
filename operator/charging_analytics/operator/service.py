"""The reconcile service: one level-triggered reconcile per resource, built once at startup.

Kopf handlers (``main.py``) only translate their arguments and call these methods. The service
orchestrates small collaborators: the RisingWave endpoints (:mod:`.endpoints`: pools, the shared
catalog snapshot, apply slots), the Secrets (:mod:`.credentials`), the Kafka and PostgreSQL checks
(:mod:`.checks`) and the Grafana objects (:mod:`.dashboards`). What a reconcile may do is decided
by :func:`charging_analytics.decide.decide` from the facts gathered here; this module carries the
decision out and reports it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import TypeAdapter, ValidationError

from .. import constants as c
from .. import ledger
from ..apply import ApplyError, ApplyResult, TargetRunner, apply_plan
from ..catalog import ObservedObject, TenantCatalog
from ..decide import Decision, Facts, decide
from ..pipeline import SecretStore
from ..plan import Plan, PlanOptions, build_plan, catalog_after, teardown_plan
from ..render import Credentials, DesiredObject, Digester, RenderOptions, render
from ..rw.capabilities import Capabilities, UnsupportedRisingWaveVersion
from ..rw.client import (
    Endpoint,
    RisingWaveClient,
    RisingWaveError,
    RisingWaveTlsFailed,
    RisingWaveUnavailable,
)
from ..spec import (
    ChargingAnalyticsSpec,
    ChargingAnalyticsStatus,
    PlanStatus,
    RisingWaveSpec,
    namespace_or_default,
    tenant_is_reserved,
)
from ..status import (
    Cond,
    Origin,
    Reason,
    Result,
    drifted,
    fingerprints_from,
    merge_conditions,
    objects_status,
    plan_status,
    published,
    read_status,
    ready,
    reconciling,
    stalled,
    waiting,
)
from ..tls import TlsMaterial
from ..validation import issues_from
from . import metrics
from .checks import CheckFailure, Prechecks, run_on_alerts_db
from .credentials import SecretResolver, credentials_status, remember_digests
from .dashboards import (
    DashboardProvisioner,
    DashboardsReport,
    Owner,
    dashboard_entries,
    owns_dashboards,
    recorded_hashes,
)
from .endpoints import Clock, EndpointPool, TenantView
from .kube import KubeApi, KubeClient, KubeError
from .quiet import PassInputs, QuietPasses, QuietReport, ValidatedSpecs, entries, entry_models, pass_inputs
from .settings import OperatorSettings

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
#: An identical Event (same resource, type, reason and message) is posted at most this often.
EVENT_REPEAT_SECONDS = 600.0
#: creationTimestamp has a resolution of one second: the resource arrived at most this much later.
_TIMESTAMP_RESOLUTION = 1.0


class _HasEndpoint(Protocol):
    @property
    def risingwave(self) -> RisingWaveSpec | None: ...


@dataclass(frozen=True)
class Resource:
    """What a reconcile needs from a ChargingAnalytics object."""

    namespace: str
    name: str
    generation: int | None
    uid: str | None
    spec: Mapping[str, Any]
    annotations: Mapping[str, str]
    finalizers: tuple[str, ...] = ()
    deleting: bool = False
    #: creationTimestamp as a POSIX time (None when the body has none)
    created: float | None = None
    #: the status exactly as the API server holds it: parsed into :attr:`status` when a reconcile
    #: reads it, and compared with a new status's published form, so that a status already saying
    #: exactly that is not written again
    stored_status: Mapping[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def status(self) -> ChargingAnalyticsStatus:
        """The status the resource holds, parsed (``status.read_status``) on first use."""
        return read_status(self.stored_status)

    @property
    def owner(self) -> str:
        return ledger.owner_id(self.namespace, self.name)

    @property
    def ref(self) -> Owner:
        return Owner(self.namespace, self.name, self.uid)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Resource:
        meta = body.get("metadata", {})
        return cls(
            namespace=namespace_or_default(meta.get("namespace")),
            name=meta["name"],
            generation=meta.get("generation"),
            uid=meta.get("uid"),
            spec=dict(body.get("spec") or {}),
            annotations=dict(meta.get("annotations") or {}),
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
            created=_posix(meta.get("creationTimestamp")),
            stored_status=dict(body.get("status") or {}),
        )


def _posix(stamp: Any) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Outcome:
    """The result of a reconcile: what to write to status, which events to post, when to retry."""

    conditions: list[Cond] = field(default_factory=list)
    #: the fields this reconcile writes (the others keep what the resource has); ``conditions``
    #: and ``observedGeneration`` are added from ``conditions`` when it is published
    status: ChargingAnalyticsStatus = field(default_factory=ChargingAnalyticsStatus)
    events: list[tuple[EventType, str, str]] = field(default_factory=list)
    retry_after: float | None = None
    result: Result = Result.OK
    #: why a retry is asked for when the conditions do not say (a failed Grafana object)
    retry_message: str | None = None
    #: a drift pass's inputs, when its report was remembered (see QuietPasses.settle)
    quiet: PassInputs | None = None
    #: the status is what the resource already has, and there is no Grafana work: nothing to
    #: publish (a drift pass that took a settled report)
    settled: bool = False


class RetryLater(Exception):
    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class _Target:
    """A resource's RisingWave side, once reached: what planning and applying need."""

    spec: ChargingAnalyticsSpec
    endpoint: Endpoint
    client: RisingWaveClient
    creds: Credentials
    capabilities: Capabilities
    store: SecretStore
    view: TenantView


@dataclass(frozen=True)
class _Planned:
    desired: list[DesiredObject]
    plan: Plan
    drift: Cond


class Service:
    def __init__(
        self, settings: OperatorSettings, kube: KubeApi | None = None, *, clock: Clock = time.monotonic
    ) -> None:
        self.settings = settings
        self.kube: KubeApi = kube or KubeClient()
        self.clock = clock
        self.endpoints = EndpointPool(settings, clock)
        self.secrets = SecretResolver(self.kube)
        #: the credential digests of this process (status records them for the next one)
        self.digester = Digester()
        self.checks = Prechecks(
            kafka=settings.check_kafka,
            postgres=settings.manage_postgres_table,
            timeout=settings.kafka_timeout_seconds,
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, int] = {}
        #: Resources being (or already) deleted: late reconciles must not rebuild them.
        self._deleting: set[str] = set()
        #: (resource, type, reason, message) -> when that Event was last posted
        self._posted: dict[tuple[str, str, str, str], float] = {}
        self._grafana: DashboardProvisioner | None = None  # made on first use (dashboards.py)
        #: resource uid -> the Grafana objects its last reconcile made match (kind, name, hash). A
        #: reconcile's body can predate the previous reconcile's status (it waited on the lock),
        #: and a stale record would take drift for a spec change; the status is the fallback.
        self._dashboards_recorded: dict[str, set[tuple[str, str, str]]] = {}
        self._timed: set[str] = set()  # resources whose drift passes have begun in this process
        #: each resource's last up-to-date drift pass, reused while its inputs are unchanged
        self.quiet = QuietPasses()
        self.specs = ValidatedSpecs()

    async def close(self) -> None:
        await self.endpoints.close()
        await self.kube.close()

    # ------------------------------------------------------------------------------------------
    # RisingWave endpoint of a spec
    # ------------------------------------------------------------------------------------------

    def _endpoint_spec(self, spec: _HasEndpoint) -> RisingWaveSpec | None:
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

    async def _endpoint(self, res: Resource, spec: _HasEndpoint) -> Endpoint:
        rw = self._endpoint_spec(spec)
        if rw is None:
            raise CheckFailure(
                Reason.NO_RISINGWAVE_ENDPOINT, "spec.risingwave is not set and the operator has no default"
            )
        tls: TlsMaterial | None = None
        files: dict[str, str] = {}
        if spec.risingwave is None:
            user, password = self.settings.default_rw_user, self.settings.default_rw_password or ""
            files = self.settings.default_rw_tls_files()
        elif rw.credentials_secret_ref is not None:
            cred = await self.secrets.credential(res.namespace, rw.credentials_secret_ref, "spec.risingwave")
            user, password = cred.username, cred.password
        else:
            user, password = "root", ""
        if rw.tls_secret_ref is not None:
            tls = await self.secrets.tls(res.namespace, rw.tls_secret_ref, "spec.risingwave.tlsSecretRef")
        return Endpoint(
            host=rw.host,
            port=rw.port,
            database=rw.database,
            user=user,
            password=password,
            sslmode=rw.sslmode,
            tls=tls,
            tls_files=tuple(sorted(files.items())),
        )

    # ------------------------------------------------------------------------------------------
    # Events, drift passes, Secrets
    # ------------------------------------------------------------------------------------------

    def unrepeated(
        self, owner: str, events: list[tuple[EventType, str, str]]
    ) -> list[tuple[EventType, str, str]]:
        """Drop Warnings identical to one posted for the same resource within EVENT_REPEAT_SECONDS:
        Kopf posts every Event as a new object (no client-side aggregation), so a failure retried
        every few seconds would otherwise flood the namespace's Events. Normal Events (each a
        completed action) are all posted."""
        now = self.clock()
        out = []
        for type_, reason, message in events:
            key = (owner, type_, reason, message)
            if type_ == "Warning" and now - self._posted.get(key, float("-inf")) < EVENT_REPEAT_SECONDS:
                continue
            self._posted[key] = now
            out.append((type_, reason, message))
        return out

    def first_drift_delay(self, owner: str) -> float:
        """A random share of the drift interval before a resource's first drift pass in this
        process (0 when its passes begin again, after peering paused them), so a restarted
        operator's passes do not all come at once."""
        if owner in self._timed:
            return 0.0
        self._timed.add(owner)
        return random.uniform(0.0, self.settings.drift_interval_seconds)  # noqa: S311 (not security)

    # ------------------------------------------------------------------------------------------
    # Reconcile
    # ------------------------------------------------------------------------------------------

    def _lock(self, res: Resource) -> asyncio.Lock:
        lock = self._locks.get(res.owner)
        if lock is None:  # not setdefault: that would make a new lock on every pass, to drop it
            lock = self._locks[res.owner] = asyncio.Lock()
        return lock

    def _backoff(self, res: Resource) -> float:
        n = self._failures.get(res.owner, 0)
        self._failures[res.owner] = n + 1
        return float(min(self.settings.backoff_max_seconds, self.settings.backoff_base_seconds * 2**n))

    def skip_reason(self, res: Resource, origin: str) -> str | None:
        """Why a reconcile must not run now (None: it may)."""
        if origin == Origin.CREATE:
            self._deleting.discard(res.owner)  # a new resource under a reused name
        if res.deleting or res.owner in self._deleting:
            return "being deleted"
        if origin in (Origin.TIMER, Origin.SECRET) and c.FINALIZER not in res.finalizers:
            return "not yet adopted (no finalizer): the create handler has not run"
        return None

    async def reconcile(self, res: Resource, *, origin: str) -> Outcome:
        """Read Secrets, check preconditions, read the catalog, plan, decide, apply, write status."""
        skip = self.skip_reason(res, origin)
        if skip is not None:
            log.debug("not reconciling %s (%s): %s", res.owner, origin, skip)
            return Outcome(result=Result.SKIPPED)
        async with self._lock(res):
            if res.owner in self._deleting:  # deleted while this reconcile waited for the lock
                return Outcome(result=Result.SKIPPED)
            started = time.monotonic()
            outcome = await self._reconcile(res, Origin(origin))
            # a settled drift pass has nothing to publish and no Grafana work (QuietReport.settled)
            idle = outcome.settled or await self._dashboards(res, outcome)
            if outcome.retry_after is None:
                self._failures.pop(res.owner, None)
            if not outcome.settled:
                wrote = await self._publish(res, outcome)
                if outcome.quiet is not None and idle and not wrote and outcome.retry_after is None:
                    self.quiet.settle(res.owner, outcome.quiet)
            outcome.events = self.unrepeated(res.owner, outcome.events)
            metrics.reconcile_seconds(outcome.result).observe(time.monotonic() - started)
            return outcome

    async def _reconcile(self, res: Resource, origin: Origin) -> Outcome:
        out = Outcome()
        try:
            spec = self.specs.model(res.owner, res.spec)
        except ValidationError as err:
            msg = "; ".join(f"{i.path}: {i.message}" for i in issues_from(err, res.owner, "spec"))
            return self._stalled(res, out, Reason.INVALID_SPEC, msg, retry=False)
        if decide(Facts(me=res.owner, suspended=spec.suspend)) is Decision.SUSPENDED:
            out.conditions = waiting(Reason.SUSPENDED, "reconciliation is paused (spec.suspend)")
            out.result = Result.SUSPENDED
            return out
        try:
            target = await self._reach(res, spec, origin, out)
        except CheckFailure as err:
            return self._stalled(res, out, err.reason, err.message)
        except UnsupportedRisingWaveVersion as err:
            return self._stalled(res, out, Reason.UNSUPPORTED_RISINGWAVE_VERSION, str(err))
        except RisingWaveUnavailable as err:
            return self._unavailable(res, out, err)
        out.status.endpoint = target.endpoint.key
        return await self._converge(res, origin, target, out)

    async def _reach(
        self, res: Resource, spec: ChargingAnalyticsSpec, origin: Origin, out: Outcome
    ) -> _Target:
        """Everything the plan needs from outside: endpoint, credentials, checks, the catalog."""
        endpoint = await self._endpoint(res, spec)
        creds = await self.secrets.credentials(res.namespace, spec)
        target = {"host": endpoint.host, "port": str(endpoint.port), "database": endpoint.database}
        reader = await self.secrets.reader(res.ref, spec, target)
        if reader is not None:
            creds = replace(creds, reader=reader)
        client = await self.endpoints.client(endpoint)
        # the server's version decides what may be sent; below the floor nothing is
        capabilities = await client.capabilities()
        capabilities.require_supported(endpoint.key)
        # Plan mode changes nothing anywhere (no alerts topic or table either)
        created = await self.checks.run(res.owner, spec, creds, applying=spec.mode == "Apply")
        out.events += [("Normal", Reason.TOPIC_CREATED, f"created alerts topic {t}") for t in created]
        store = await self.endpoints.secret_store(client, endpoint)
        view = await self.endpoints.view(client, spec.tenant, fresh_since=self._fresh_since(res, origin))
        return _Target(spec, endpoint, client, creds, capabilities, store, view)

    def _fresh_since(self, res: Resource, origin: Origin) -> float | None:
        """When the read a reconcile plans against must have begun (None: the shared one will do).

        A new or changed spec plans against a read that began once it existed: for a create, its
        creation (so a burst of creates shares the reads that began after it), and no longer ago
        than the snapshot's age (a create retried long after it came reads anew); for an update,
        its arrival. A drift pass, a restart's resume pass or a Secret change share the interval's read.
        """
        if origin not in (Origin.CREATE, Origin.UPDATE):
            return None
        now = self.clock()
        if origin == Origin.UPDATE or res.created is None:
            return now
        age = max(0.0, time.time() - res.created - _TIMESTAMP_RESOLUTION)
        return now - min(age, self.settings.catalog_cache_seconds)

    async def _converge(self, res: Resource, origin: Origin, target: _Target, out: Outcome) -> Outcome:
        spec, view = target.spec, target.view
        if decide(Facts(me=res.owner, owner=view.owner)) is Decision.NOT_OWNER:
            where = target.endpoint.key
            return self._stalled(
                res,
                out,
                Reason.TENANT_CONFLICT,
                f"tenant {spec.tenant!r} on {where} is already owned by {view.owner}; nothing was changed",
                retry=False,
            )
        if origin == Origin.TIMER:
            inputs = self._pass_inputs(res, target)
            known = self.quiet.find(res.owner, inputs, view.catalog)
            if known is not None:
                return self._quiet_pass(res, known, view.catalog, out)
            return await self._plan_and_apply(res, origin, target, out, inputs)
        # a burst of creates (or a restart's resume pass) waits here, holding no rendered plan
        async with self.endpoints.plan_slots(target.endpoint):
            return await self._plan_and_apply(res, origin, target, out, None)

    async def _plan_and_apply(
        self, res: Resource, origin: Origin, target: _Target, out: Outcome, inputs: PassInputs | None
    ) -> Outcome:
        """Render, plan, decide and carry the decision out; ``inputs``: a drift pass's, kept with its
        report when it finds the tenant up to date."""
        spec, view = target.spec, target.view
        planned = await self._plan(res, target, out)
        unresolved = sorted({role for o in planned.desired for role in o.unresolved})
        decision = decide(
            Facts(
                me=res.owner,
                owner=view.owner,
                mode=spec.mode,
                plan=planned.plan,
                unresolved=unresolved,
                approved=res.annotations.get(c.ANNOTATION_APPROVED_PLAN),
            )
        )
        if decision is Decision.PLAN_ONLY:
            return self._plan_only(res, target, planned, out)
        if decision is Decision.UP_TO_DATE and origin == Origin.TIMER:
            # a drift pass's common case: the status already says the rest
            out.conditions = [*ready(Reason.UP_TO_DATE, _ready_message(len(planned.desired))), planned.drift]
            out.status.objects = objects_status(planned.desired, view.catalog)
            out.status.plan = None
            if inputs is not None:
                report = QuietReport(
                    inputs=inputs,
                    catalog=view.catalog,
                    objects=entries(out.status.objects),
                    count=len(planned.desired),
                    drift=planned.drift,
                    plan_hash=out.status.plan_hash,
                    credentials=out.status.credentials,
                )
                self.quiet.remember(res.owner, report)
                out.quiet = inputs
            return out
        if decision is Decision.CREDENTIALS_MISSING:
            message = f"no credentials for {', '.join(unresolved)}"
            return self._stalled(res, out, Reason.CREDENTIALS_UNRESOLVED, message)
        if planned.plan.drift and spec.on_drift != "Correct":
            out.events.append(("Warning", Reason.DRIFT_DETECTED, planned.drift.message))
        metrics.PENDING_APPROVALS.labels(res.namespace, res.name).set(
            1 if decision is Decision.AWAITING_APPROVAL else 0
        )
        if decision is Decision.AWAITING_APPROVAL:
            return self._awaiting_approval(res, target, planned, out)
        return await self._apply(res, target, planned, out)

    def _pass_inputs(self, res: Resource, target: _Target) -> PassInputs:
        return pass_inputs(
            res.spec,
            endpoint=target.endpoint.key,
            store=target.store,
            capabilities=target.capabilities,
            creds=target.creds,
            owner=target.view.owner,
            ledger_exists=target.view.ledger_exists,
            status=res.stored_status,
            generation=res.generation,
            approved=res.annotations.get(c.ANNOTATION_APPROVED_PLAN),
        )

    def _quiet_pass(self, res: Resource, known: QuietReport, catalog: TenantCatalog, out: Outcome) -> Outcome:
        """A drift pass whose inputs equal those of the resource's last up-to-date pass: that
        pass's report, without rendering or planning (both would give the same result)."""
        # the newer read's slice is kept, so the older snapshot it equals can be freed
        self.quiet.remember(res.owner, replace(known, catalog=catalog))
        out.quiet, out.settled = known.inputs, known.settled
        out.conditions = [*ready(Reason.UP_TO_DATE, _ready_message(known.count)), known.drift]
        if known.settled:
            return out  # nothing is published: the status fields are not built
        # the report's parts were validated when that pass made them: no validation again
        out.status = out.status.model_copy(
            update={
                "credentials": known.credentials,
                "plan_hash": known.plan_hash,
                "objects": entry_models(known.objects),
                "plan": None,
            }
        )
        return out

    async def _plan(self, res: Resource, target: _Target, out: Outcome) -> _Planned:
        spec, view = target.spec, target.view
        versions = self.secrets.versions(res.namespace, res.ref, spec, target.creds)
        remember_digests(self.digester, spec, res.status.credentials, versions)
        options = RenderOptions(
            secret_store=target.store,
            credentials=target.creds,
            capabilities=target.capabilities,
            digester=self.digester,
        )
        # off the event loop: a new or rotated credential costs a deliberately slow digest
        desired = await asyncio.to_thread(render, spec, options)
        out.status.credentials = credentials_status(self.digester, spec, versions)
        plan = build_plan(
            desired,
            view.catalog,
            PlanOptions(
                zero_downtime=self.settings.zero_downtime,
                owner=res.owner,
                expected_fingerprints=fingerprints_from(res.status),
                ledger_exists=view.ledger_exists,
                correct_drift=spec.on_drift == "Correct",
            ),
        )
        out.status.plan_hash = plan.hash
        return _Planned(desired, plan, drifted(plan))

    def _plan_only(self, res: Resource, target: _Target, planned: _Planned, out: Outcome) -> Outcome:
        """Plan mode's job is to publish the plan: done, it is Ready. An object the plan would
        create is Pending, not Missing (nothing was lost; nothing was meant to exist yet)."""
        plan = planned.plan
        if not plan.empty and plan.hash != res.status.plan_hash:
            out.events.append(("Normal", Reason.PLAN_READY, f"plan {plan.hash}: {plan.summary()}"))
        out.status.plan = plan_status(plan)
        out.status.objects = [
            o.model_copy(update={"state": "Pending"}) if o.state == "Missing" else o
            for o in objects_status(planned.desired, target.view.catalog)
        ]
        if plan.empty:
            summary = ready(Reason.UP_TO_DATE, "plan mode: nothing to change")
        else:
            summary = ready(
                Reason.PLAN_READY,
                f"plan mode: {plan.summary()} would be applied (plan {plan.hash}); nothing was applied",
            )
        out.conditions = [*summary, planned.drift]
        out.result = Result.PLAN
        return out

    def _awaiting_approval(self, res: Resource, target: _Target, planned: _Planned, out: Outcome) -> Outcome:
        plan = planned.plan
        approved = res.annotations.get(c.ANNOTATION_APPROVED_PLAN)
        stale = f"; approval {approved} is stale" if approved else ""
        out.status.plan = plan_status(plan)
        out.status.objects = objects_status(planned.desired, target.view.catalog)
        message = (
            f"destructive plan {plan.hash} ({plan.summary()}) waits for approval: annotate "
            f"{c.ANNOTATION_APPROVED_PLAN}={plan.hash}{stale}"
        )
        out.conditions = [*waiting(Reason.APPROVAL_PENDING, message), planned.drift]
        out.events.append(("Warning", Reason.APPROVAL_REQUIRED, f"destructive plan {plan.hash}{stale}"))
        out.result = Result.APPROVAL
        return out

    async def _apply(self, res: Resource, target: _Target, planned: _Planned, out: Outcome) -> Outcome:
        """Apply a non-empty plan, then report what the tenant has (an empty plan: report only)."""
        catalog, drift, plan = target.view.catalog, planned.drift, planned.plan
        if not plan.empty:
            try:
                result, built = await self._run_plan(res, target, planned)
            except ApplyError as failure:
                self.endpoints.wrote(target.endpoint, target.spec.tenant, None)
                if isinstance(failure.cause, RisingWaveUnavailable):
                    return self._unavailable(res, out, failure.cause)
                what = f"{failure.action.type} {failure.action.name}: {failure.cause}"
                return self._stalled(res, out, Reason.APPLY_FAILED, what)
            catalog = catalog_after(catalog, plan, built)
            # the tenant's next reconcile plans against what this apply left, not an older read
            known = catalog if built is not None else None
            self.endpoints.wrote(target.endpoint, target.spec.tenant, known, ledger=True)
            drift = self._applied(res, target, planned, result, catalog, out)
        return self._report(res, planned, catalog, drift, out)

    async def _run_plan(
        self, res: Resource, target: _Target, planned: _Planned
    ) -> tuple[ApplyResult, list[ObservedObject] | None]:
        """Run the plan in one of the endpoint's apply slots, publishing backfill progress."""
        client, tenant = target.client, target.spec.tenant
        async with self.endpoints.apply_slots(target.endpoint):
            stop = asyncio.Event()
            reporter = asyncio.create_task(
                self._report_progress(res, client, planned.desired, target.view.catalog, stop)
            )
            try:
                result = await apply_plan(
                    client, planned.plan, target=self._alerts_target(target.spec, target.creds)
                )
            finally:
                stop.set()
                await reporter
        # The apply's own results say what the tenant now has, except the ids and definitions
        # RisingWave gave what it built (the fingerprints that reveal a later change behind the
        # operator's back): one read of the tenant's schema, not a snapshot of the endpoint. It
        # changes nothing, so it waits outside the slot: the next plan's statements need not wait
        # for it, and the reads of applies finishing meanwhile are made together.
        try:
            return result, await client.schema_objects(tenant)
        except RisingWaveError as err:
            log.info("could not read %s after the apply: %s", tenant, err)
            return result, None

    def _applied(
        self,
        res: Resource,
        target: _Target,
        planned: _Planned,
        result: ApplyResult,
        catalog: TenantCatalog,
        out: Outcome,
    ) -> Cond:
        """Count and announce a successful apply; the Drifted condition it leaves."""
        plan, correct = planned.plan, target.spec.on_drift == "Correct"
        for a in result.applied:
            metrics.APPLIED_ACTIONS.labels(a.type).inc()
        if plan.drift and correct:
            metrics.DRIFT_CORRECTIONS.labels(res.namespace, res.name).inc()
            out.events.append(("Normal", Reason.DRIFT_CORRECTED, planned.drift.message))
        out.events.append(("Normal", Reason.APPLIED, f"plan {plan.hash}: {plan.summary()}"))
        after = build_plan(planned.desired, catalog, PlanOptions(owner=res.owner, ledger_exists=True))
        return drifted(after) if correct else planned.drift

    def _report(
        self, res: Resource, planned: _Planned, catalog: TenantCatalog, drift: Cond, out: Outcome
    ) -> Outcome:
        """The status of a tenant whose plan ran (or had nothing to run): Ready, or Backfilling."""
        objects = objects_status(planned.desired, catalog)
        out.status.objects = objects
        out.status.plan = None
        out.status.applied_hash = _desired_hash(planned.desired)
        building = [o.name for o in objects if o.state == "Creating"]
        metrics.MANAGED_OBJECTS.labels(res.namespace, res.name).set(len(objects))
        metrics.DRIFT_DETECTED.labels(res.namespace, res.name).set(1 if drift.status == "True" else 0)
        if building:
            out.conditions = [*reconciling(Reason.BACKFILLING, f"building {', '.join(building)}"), drift]
            out.retry_after = self.settings.backoff_base_seconds
            out.result = Result.BACKFILLING
            return out
        reason = Reason.APPLIED if not planned.plan.empty else Reason.UP_TO_DATE
        out.conditions = [*ready(reason, _ready_message(len(planned.desired))), drift]
        return out

    async def _report_progress(
        self,
        res: Resource,
        client: RisingWaveClient,
        desired: list[DesiredObject],
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
                await self._publish_progress(res, client, desired, before)
            except Exception:  # progress is best effort; the apply itself reports failures
                log.debug("progress report failed", exc_info=True)

    async def _publish_progress(
        self, res: Resource, client: RisingWaveClient, desired: list[DesiredObject], before: TenantCatalog
    ) -> None:
        prefix = before.tenant + "."
        progress = {
            q.removeprefix(prefix): p
            for q, p in (await client.ddl_progress()).items()
            if q.startswith(prefix)
        }
        if not progress:
            return
        objects = objects_status(desired, replace(before, ddl_progress=progress))
        building = ", ".join(f"{o.name} {o.backfill_progress}" for o in objects if o.backfill_progress)
        conditions = merge_conditions(
            res.status.conditions, reconciling(Reason.BACKFILLING, f"building {building}"), res.generation
        )
        status = ChargingAnalyticsStatus(objects=objects, conditions=conditions)
        await self.kube.patch_status(res.namespace, res.name, published(status))

    def _alerts_target(self, spec: ChargingAnalyticsSpec, creds: Credentials) -> TargetRunner | None:
        """Runs statements on the alert database when the operator manages the alert table."""
        cred = creds.alerts_db
        if spec.alerts.sinks.postgres is None or cred is None or not self.settings.manage_postgres_table:
            return None
        return functools.partial(
            run_on_alerts_db, spec, cred, self.settings.kafka_timeout_seconds, tls=creds.alerts_db_tls
        )

    def _stalled(
        self, res: Resource, out: Outcome, reason: Reason, message: str, *, retry: bool = True
    ) -> Outcome:
        """Stalled: Ready=False, an event, and (unless only a spec change can help) a retry with
        exponential backoff; the drift pass retries too, so nothing waits forever."""
        shown = message
        self.checks.forget(res.owner)  # the next attempt checks Kafka and PostgreSQL again
        if retry:
            out.retry_after = self._backoff(res)
            # the drift pass retries too: the next attempt comes within the shorter of the two
            within = min(out.retry_after, self.settings.drift_interval_seconds)
            shown = f"{message} (next attempt within {within:.0f}s)"
        out.conditions = stalled(reason, shown)
        # no delay or time in an Event's message: identical Events are aggregated by Kubernetes
        out.events.append(("Warning", reason, message))
        out.result = Result.STALLED
        metrics.RECONCILE_ERRORS.labels(reason).inc()
        return out

    def _unavailable(self, res: Resource, out: Outcome, err: Exception) -> Outcome:
        tls = isinstance(err, RisingWaveTlsFailed)
        reason = Reason.RISINGWAVE_TLS_FAILED if tls else Reason.RISINGWAVE_UNAVAILABLE
        return self._stalled(res, out, reason, str(err))

    async def _publish(self, res: Resource, out: Outcome) -> bool:
        """Patch the status, unless it already says exactly this (a quiet steady state: a pass
        that finds nothing changed writes nothing to the API server). True if it patched."""
        out.status.conditions = merge_conditions(res.status.conditions, out.conditions, res.generation)
        if res.generation is not None:
            out.status.observed_generation = res.generation
        patch = published(out.status)
        if all(res.stored_status.get(key) == value for key, value in patch.items()):
            return False
        await self.kube.patch_status(res.namespace, res.name, patch)
        return True

    # ------------------------------------------------------------------------------------------
    # Grafana objects
    # ------------------------------------------------------------------------------------------

    @property
    def grafana(self) -> DashboardProvisioner:
        if self._grafana is None:
            self._grafana = DashboardProvisioner(
                self.kube.api, discovery_seconds=self.settings.catalog_cache_seconds
            )
        return self._grafana

    async def _dashboards(self, res: Resource, out: Outcome) -> bool:
        """The tenant's Grafana objects, once its SQL objects were reconciled (dashboards.py).
        True when there was nothing to do (no dashboards wanted or listed, or nothing planned).

        They follow the same rules as the SQL objects: Plan mode changes none of them and lists
        what an apply would change in ``status.plan.objects``; drift (an object edited or deleted
        after the operator made it match) is restored under ``onDrift: Correct`` and only
        reported under ``Report`` (condition Drifted, Event DriftDetected); a refused call marks
        its object Failed and posts DashboardsFailed, naming the verb and the object.
        """
        if "objects" not in out.status.model_fields_set:
            return True  # stalled before planning: nothing to show yet
        spec = self.specs.model(res.owner, res.spec)
        if not spec.dashboards.enabled and not owns_dashboards(res.status):
            return True
        key = res.uid or res.owner
        recorded = self._dashboards_recorded.get(key, recorded_hashes(res.status.objects))
        try:
            endpoint = await self._endpoint(res, spec)
            report = await self.grafana.reconcile(
                res.ref,
                spec,
                endpoint,
                apply=spec.mode == "Apply",
                correct_drift=spec.on_drift == "Correct",
                recorded=recorded,
            )
        except (KubeError, CheckFailure) as err:
            out.events.append(("Warning", Reason.DASHBOARDS_FAILED, f"Grafana objects: {err}"))
            out.retry_after = out.retry_after or self._backoff(res)
            out.retry_message = out.retry_message or f"Grafana objects: {err}"
            # what the last look found stays recorded: it tells later drift from spec changes
            out.status.objects = [*out.status.objects, *dashboard_entries(res.status.objects)]
            return False
        self._record_dashboards(res, out, report, recorded)
        fold_dashboards(out, report, previous_plan=res.status.plan)
        if report.failures:
            out.retry_after = out.retry_after or self._backoff(res)
            out.retry_message = out.retry_message or "; ".join(report.failures)
        if any(o.action == "restore" and o.applied for o in report.objects):
            metrics.DRIFT_CORRECTIONS.labels(res.namespace, res.name).inc()
        return False

    def _record_dashboards(
        self, res: Resource, out: Outcome, report: DashboardsReport, recorded: set[tuple[str, str, str]]
    ) -> None:
        """List the Grafana objects in status and remember what they were made to match."""
        entries = [r.status() for r in report.objects]
        if report.errors:
            # objects the spec no longer wants could not be listed or deleted: they stay listed
            # (Failed), so the resource shows them and the next reconcile tries again
            wanted = {(e.kind, e.name) for e in entries}
            entries += [
                e.model_copy(update={"state": "Failed"})
                for e in dashboard_entries(res.status.objects)
                if (e.kind, e.name) not in wanted
            ]
        out.status.objects = [*out.status.objects, *entries]
        # a Failed object was not changed by this reconcile: what was recorded for it still holds
        failed = {(r.kind, r.name) for r in report.objects if r.state == "Failed"}
        self._dashboards_recorded[res.uid or res.owner] = recorded_hashes(entries) | {
            r for r in recorded if (r[0], r[1]) in failed
        }

    # ------------------------------------------------------------------------------------------
    # Deletion
    # ------------------------------------------------------------------------------------------

    async def delete(self, res: Resource) -> Outcome:
        """Drop (Delete) or release (Orphan) the tenant; raise RetryLater while RisingWave is down.

        While deletion waits, status says so (Ready=False, Stalled=True ``DeletionBlocked``): a
        blocked deletion is never shown as Ready. Force-release lets the finalizer go without
        dropping anything, but still releases the tenant's claim when RisingWave can be reached,
        so another resource may take the tenant over.
        """
        self._deleting.add(res.owner)
        self.checks.forget(res.owner)
        self._timed.discard(res.owner)
        self.quiet.forget(res.owner)
        self.specs.forget(res.owner)
        out = Outcome()
        force = res.annotations.get(c.ANNOTATION_FORCE_DELETE, "").lower() == "true"
        target = teardown_target(res.spec)
        if target is None:
            # The tenant was never valid (it is immutable once admitted): nothing can exist.
            message = "spec.tenant is invalid; nothing was created"
            out.events.append(("Warning", Reason.NOTHING_TO_DELETE, message))
            return out
        try:
            async with self._lock(res):
                summary = await self._teardown(res, target, force, out)
        except RetryLater as err:
            if not force:
                await self._publish_deletion_blocked(res, str(err))
                raise
            message = f"force-released without reaching RisingWave: {err}; the tenant's objects and its "
            message += "claim remain"
            out.events.append(("Warning", Reason.FINALIZER_RELEASED, message))
            return out
        if summary is None:
            return out  # another resource owns the tenant
        if force:
            message = (
                f"force-released: tenant {target.tenant} claim released, RisingWave objects were not dropped"
            )
            out.events.append(("Warning", Reason.FINALIZER_RELEASED, message))
        else:
            verb = "dropped" if target.deletion_policy == "Delete" else "orphaned"
            out.events.append(("Normal", Reason.DELETED, f"tenant {target.tenant} {verb} ({summary})"))
        return out

    async def _teardown(self, res: Resource, target: TeardownTarget, force: bool, out: Outcome) -> str | None:
        """Drop or release the tenant's objects and its Grafana objects; the plan's summary, or
        None when the tenant belongs to another resource (nothing is dropped then)."""
        tenant = target.tenant
        try:
            endpoint = await self._endpoint(res, target)
            client = await self.endpoints.client(endpoint)
            view = await self.endpoints.view(client, tenant, fresh_since=self.clock())
        except CheckFailure as err:
            raise RetryLater(f"{err.reason}: {err.message}", self._deletion_delay(res)) from err
        except RisingWaveUnavailable as err:
            raise RetryLater(f"RisingWave unavailable: {err}", self._deletion_delay(res)) from err
        if decide(Facts(me=res.owner, owner=view.owner)) is Decision.NOT_OWNER:
            out.events.append(("Normal", Reason.NOT_OWNER, f"tenant owned by {view.owner}; nothing dropped"))
            return None
        plan = teardown_plan(view.catalog, orphan_ledger_only=target.deletion_policy == "Orphan" or force)
        try:
            await apply_plan(client, plan)
        except ApplyError as err:
            raise RetryLater(f"{err}", self._deletion_delay(res)) from err
        finally:
            self.endpoints.wrote(endpoint, tenant, None)
        dashboards = res.spec.get("dashboards") or {}
        if dashboards.get("enabled") or owns_dashboards(res.status):
            try:
                await self.grafana.delete_all(res.ref)
                self._dashboards_recorded.pop(res.uid or res.owner, None)
            except KubeError as err:
                raise RetryLater(f"Grafana objects: {err}", self._deletion_delay(res)) from err
        return plan.summary()

    def _deletion_delay(self, res: Resource) -> float:
        """Backoff for deletion retries, capped so a force-release annotation is seen promptly."""
        return min(self._backoff(res), self.settings.deletion_retry_seconds)

    async def _publish_deletion_blocked(self, res: Resource, message: str) -> None:
        hint = f"; annotate {c.ANNOTATION_FORCE_DELETE}=true to release without dropping"
        conditions = [
            Cond(c.COND_READY, "False", Reason.DELETION_BLOCKED, message + hint),
            Cond(c.COND_RECONCILING, "True", Reason.DELETING, "waiting to drop the tenant's objects"),
            Cond(c.COND_STALLED, "True", Reason.DELETION_BLOCKED, message + hint),
        ]
        try:
            await self._publish(res, Outcome(conditions=conditions))
        except Exception:  # status is informative; the deletion retry is what matters
            log.debug("cannot publish DeletionBlocked for %s", res.owner, exc_info=True)


@dataclass(frozen=True)
class TeardownTarget:
    """What deletion needs of a spec: the parts that locate the tenant's objects."""

    tenant: str
    deletion_policy: str
    risingwave: RisingWaveSpec | None


def teardown_target(raw: Mapping[str, Any]) -> TeardownTarget | None:
    """The tenant, endpoint and policy of a spec, even when another part of it has become invalid
    (a spec the operator marks invalid must still be torn down). None when the tenant itself is
    not a valid, non-reserved tenant: then nothing was ever created for it."""
    try:
        spec = ChargingAnalyticsSpec.model_validate(raw)
        return TeardownTarget(spec.tenant, spec.deletion_policy, spec.risingwave)
    except ValidationError:
        pass
    tenant = raw.get("tenant")
    tenant_field = ChargingAnalyticsSpec.model_fields["tenant"]
    try:
        tenant = TypeAdapter(Annotated[str, *tenant_field.metadata]).validate_python(tenant)
        rw = raw.get("risingwave")
        risingwave = RisingWaveSpec.model_validate(rw) if rw is not None else None
    except ValidationError:
        return None
    if tenant_is_reserved(tenant):
        return None
    policy = raw.get("deletionPolicy") if raw.get("deletionPolicy") in ("Delete", "Orphan") else "Delete"
    return TeardownTarget(tenant, str(policy), risingwave)


def fold_dashboards(out: Outcome, report: DashboardsReport, *, previous_plan: PlanStatus | None) -> None:
    """Add what the Grafana objects' reconcile found to the conditions and events (pure)."""
    for o in report.objects:
        if o.applied and o.action == "restore":
            out.events.append(("Normal", Reason.DRIFT_CORRECTED, f"{o.describe_drift()}; restored"))
        elif o.applied:
            verb = "created" if o.action == "create" else "updated"
            reason = Reason.DASHBOARD_CREATED if o.action == "create" else Reason.DASHBOARD_UPDATED
            out.events.append(("Normal", reason, f"{o.ref} {verb}"))
    for r in report.removals:
        if r.applied:
            out.events.append(("Normal", Reason.DASHBOARD_DELETED, f"{r.ref} deleted"))
    if report.failures:
        out.events.append(("Warning", Reason.DASHBOARDS_FAILED, "; ".join(report.failures)))
    drift = report.drift()
    if drift:
        text = "; ".join(drift)
        if out.result != Result.PLAN:
            out.events.append(("Warning", Reason.DRIFT_DETECTED, text))
        found = next((i for i, cond in enumerate(out.conditions) if cond.type == c.COND_DRIFTED), None)
        if found is None or out.conditions[found].status != "True":
            cond = Cond(c.COND_DRIFTED, "True", Reason.DRIFT_DETECTED, text)
        else:
            old = out.conditions[found]
            cond = replace(old, message=f"{old.message}; {text}")
        if found is None:
            out.conditions.append(cond)
        else:
            out.conditions[found] = cond
    if out.result == Result.PLAN and out.status.plan is not None:
        planned = report.planned()[:16]  # the status schema's bound
        out.status.plan = out.status.plan.model_copy(update={"objects": planned})
        before = previous_plan.objects if previous_plan is not None else None
        if planned and planned != before:
            out.events.append(("Normal", Reason.PLAN_READY, f"Grafana objects: {', '.join(planned)}"))
        if planned:
            for i, cond in enumerate(out.conditions):
                if cond.type == c.COND_READY and cond.reason == Reason.UP_TO_DATE:
                    out.conditions[i] = Cond(
                        c.COND_READY,
                        "True",
                        Reason.PLAN_READY,
                        f"plan mode: {', '.join(planned)} would be applied; nothing was applied",
                    )
                elif cond.type == c.COND_READY:
                    out.conditions[i] = replace(cond, message=f"{cond.message}; and {', '.join(planned)}")
                elif cond.type in (c.COND_RECONCILING, c.COND_STALLED) and cond.reason == Reason.UP_TO_DATE:
                    out.conditions[i] = replace(cond, reason=Reason.PLAN_READY)


def _ready_message(count: int) -> str:
    return f"{count} objects in RisingWave match the spec"


def _desired_hash(desired: list[DesiredObject]) -> str:
    h = hashlib.sha256()
    for o in desired:
        h.update(f"{o.key}={o.hash}\n".encode())
    return "sha256:" + h.hexdigest()[:24]
