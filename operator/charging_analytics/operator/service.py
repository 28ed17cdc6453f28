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
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal, Protocol

from pydantic import TypeAdapter, ValidationError

from .. import constants as c
from .. import ledger
from ..apply import ApplyError, TargetRunner, apply_plan
from ..catalog import CatalogSnapshot, ObservedObject, TenantCatalog
from ..pipeline import SecretStore, reader_name
from ..plan import PlanOptions, build_plan, catalog_after, teardown_plan
from ..render import (
    TLS_PATHS,
    Credential,
    Credentials,
    RenderOptions,
    all_secret_names,
    digest_salt,
    known_digest,
    referenced_secrets,
    referenced_tls,
    remember_digest,
    render,
)
from ..rw.capabilities import UnsupportedRisingWaveVersion
from ..rw.client import (
    Endpoint,
    RisingWaveClient,
    RisingWaveError,
    RisingWaveTlsFailed,
    RisingWaveUnavailable,
)
from ..spec import (
    ChargingAnalyticsSpec,
    CredentialsSecretRef,
    RisingWaveSpec,
    SecretRef,
    TlsSecretRef,
    tenant_is_reserved,
)
from ..status import (
    Cond,
    drifted,
    fingerprints_from,
    merge_conditions,
    objects_status,
    plan_status,
    ready,
    reconciling,
    stalled,
    waiting,
)
from ..tls import TlsMaterial, tls_keys
from ..validation import issues_from
from . import metrics
from .checks import CheckFailure, KafkaAdmins, check_kafka, ensure_postgres_table, run_on_alerts_db
from .dashboards import (
    DashboardProvisioner,
    DashboardsReport,
    Owner,
    dashboard_entries,
    owns_dashboards,
    read_only_secret,
    recorded_hashes,
)
from .kube import KubeApi, KubeError, SecretNotOwned
from .settings import OperatorSettings

log = logging.getLogger(__name__)

EventType = Literal["Normal", "Warning"]
#: An identical Event (same resource, type, reason and message) is posted at most this often.
EVENT_REPEAT_SECONDS = 600.0


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
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    finalizers: tuple[str, ...] = ()
    deleting: bool = False

    @property
    def owner(self) -> str:
        return ledger.owner_id(self.namespace, self.name)

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
    #: why a retry is asked for when the conditions do not say (a failed Grafana object)
    retry_message: str | None = None


class RetryLater(Exception):
    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class Service:
    def __init__(self, settings: OperatorSettings, kube: KubeApi | None = None) -> None:
        self.settings = settings
        self.kube = kube or KubeApi()
        #: (endpoint key, user, TLS identity, password digest) -> its pool
        self._clients: dict[tuple[Any, ...], RisingWaveClient] = {}
        self._clients_lock = asyncio.Lock()
        self._closed = False  # set by close(): no pool is opened after it
        #: endpoint key -> (monotonic time its read started, snapshot)
        self._snapshots: dict[str, tuple[float, CatalogSnapshot]] = {}
        self._snapshot_locks: dict[str, asyncio.Lock] = {}
        #: Applies running at once per endpoint: fewer than the pool's connections, so a burst of
        #: tenants queues here (as long as it takes) instead of for a pooled connection, where a
        #: wait longer than the connect timeout reads as "RisingWave unavailable" and backs off.
        self._apply_slots: dict[str, asyncio.Semaphore] = {}
        #: (endpoint key, tenant) -> when its last apply ended: older snapshots predate it.
        self._applied: dict[tuple[str, str], float] = {}
        self._secret_store: dict[str, SecretStore] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, int] = {}
        #: (namespace, secret name) -> resources that reference it
        self._secret_refs: dict[tuple[str, str], set[str]] = {}
        #: Resources being (or already) deleted: late reconciles must not rebuild them.
        self._deleting: set[str] = set()
        #: (resource, type, reason, message) -> when that Event was last posted
        self._posted: dict[tuple[str, str, str, str], float] = {}
        self._grafana: DashboardProvisioner | None = None  # made on first use (dashboards.py)
        #: resource uid -> the Grafana objects its last reconcile made match (kind, name, hash). A
        #: reconcile's body can predate the previous reconcile's status (it waited on the lock),
        #: and a stale record would take drift for a spec change; the status is the fallback.
        self._dashboards_recorded: dict[str, set[tuple[str, str, str]]] = {}
        self._kafka_admins = KafkaAdmins()
        #: resource -> fingerprint of the inputs its Kafka and PostgreSQL checks last passed with
        self._prechecked: dict[str, str] = {}
        self._timed: set[str] = set()  # resources whose drift timer has run in this process
        #: (namespace, Secret) -> its resourceVersion when last read
        self._secret_versions: dict[tuple[str, str], str | None] = {}

    async def close(self) -> None:
        async with self._clients_lock:  # a pool being opened now is stored (then closed) first
            self._closed = True
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            await client.close()

    # ------------------------------------------------------------------------------------------
    # RisingWave access
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
                "NoRisingWaveEndpoint", "spec.risingwave is not set and the operator has no default"
            )
        tls: TlsMaterial | None = None
        files: dict[str, str] = {}
        if spec.risingwave is None:
            user, password = self.settings.default_rw_user, self.settings.default_rw_password or ""
            files = self.settings.default_rw_tls_files()
        elif rw.credentials_secret_ref is not None:
            cred = await self._credential(res.namespace, rw.credentials_secret_ref, "spec.risingwave")
            user, password = cred.username, cred.password
        else:
            user, password = "root", ""
        if rw.tls_secret_ref is not None:
            tls = await self._tls(res.namespace, rw.tls_secret_ref, "spec.risingwave.tlsSecretRef")
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

    async def _client(self, endpoint: Endpoint) -> RisingWaveClient:
        async with self._clients_lock:  # concurrent reconciles must not open two pools for one key
            return await self._client_locked(endpoint)

    async def _client_locked(self, endpoint: Endpoint) -> RisingWaveClient:
        digest = hashlib.sha256(endpoint.password.encode()).hexdigest()
        # Resources may reach one endpoint with different TLS material (or files): a pool each.
        tls = (endpoint.tls.digest() if endpoint.tls else "", endpoint.tls_files)
        key = (endpoint.key, endpoint.user, tls, digest)
        client = self._clients.get(key)
        if client is None and self._closed:
            # a reconcile still running while the operator shuts down opens no pool (its PEM
            # files would outlive the process's cleanup)
            raise RisingWaveUnavailable(f"{endpoint.key}: the operator is shutting down")
        if client is None:
            for old in [k for k in self._clients if k[:3] == key[:3]]:  # rotated password
                await self._clients.pop(old).close()
            client = RisingWaveClient(
                endpoint,
                statement_timeout=self.settings.statement_timeout_seconds,
                connect_timeout=self.settings.connect_timeout_seconds,
                max_size=self.settings.pool_size,
            )
            try:
                await client.open()
            except BaseException:
                await client.close()
                raise
            self._clients[key] = client
        return client

    async def snapshot(
        self, client: RisingWaveClient, endpoint: Endpoint, *, fresh: bool, not_before: float = 0.0
    ) -> CatalogSnapshot:
        """The endpoint's shared snapshot; re-read when older than the cache age.

        ``fresh``: a read that started after this call. Callers queue on one lock per endpoint, so
        every fresh request that arrived while a read was running shares the next read: a burst
        of new tenants costs a few reads, not one each. ``not_before``: the read must also have
        started after that time (the end of the caller's tenant's last apply).
        """
        asked = time.monotonic()
        lock = self._snapshot_locks.setdefault(endpoint.key, asyncio.Lock())
        async with lock:
            cached = self._snapshots.get(endpoint.key)
            if cached is not None:
                started, snapshot = cached
                young = asked - started <= self.settings.catalog_cache_seconds
                if started >= not_before and ((started >= asked) if fresh else young):
                    return snapshot
            started = time.monotonic()
            snapshot = await client.snapshot()
            metrics.CATALOG_READS.labels(endpoint.key).inc()
            self._snapshots[endpoint.key] = (started, snapshot)
            return snapshot

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

    async def _secret_values(
        self, namespace: str, ref: SecretRef, field_path: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The text of ``keys`` in the referenced Secret (Stalled reasons name the field and key).

        Only the keys used must be text: other keys (a truststore, a keystore) may be binary."""
        self._secret_refs.setdefault((namespace, ref.name), set())
        where = f"{field_path}: Secret {namespace}/{ref.name}"
        try:
            stored = await self.kube.read_secret(namespace, ref.name)
        except KubeError as err:
            raise CheckFailure(
                "SecretUnreadable", f"{field_path}: cannot read Secret {namespace}/{ref.name}: {err}"
            ) from err
        if stored is None:
            raise CheckFailure("SecretMissing", f"{where} not found")
        self._secret_versions[(namespace, ref.name)] = stored.resource_version
        for key in keys:
            if key not in stored.data:
                raise CheckFailure("SecretKeyMissing", f"{where} has no key {key!r}")
        values = {key: _text(stored.data[key], where, key) for key in keys}
        for key, value in values.items():
            if "\0" in value:
                # no SQL string literal can carry NUL (the wire protocol ends the query there)
                raise CheckFailure("SecretValueInvalid", f"{where} key {key!r} contains a NUL character")
        return values

    async def _credential(self, namespace: str, ref: CredentialsSecretRef, field_path: str) -> Credential:
        values = await self._secret_values(namespace, ref, field_path, (ref.username_key, ref.password_key))
        return Credential(values[ref.username_key], values[ref.password_key])

    async def _tls(self, namespace: str, ref: TlsSecretRef, field_path: str) -> TlsMaterial:
        """The PEM material a ``tlsSecretRef`` names; each key must hold PEM text."""
        named = tls_keys(ref)
        values = await self._secret_values(namespace, ref, field_path, tuple(named.values()))
        for key in named.values():
            if "-----BEGIN " not in values[key]:
                raise CheckFailure(
                    "SecretValueInvalid",
                    f"{field_path}: Secret {namespace}/{ref.name} key {key!r} is not PEM text "
                    "(expected a -----BEGIN ...----- block)",
                )
        return TlsMaterial(**{part: values[key] for part, key in named.items()})

    async def _credentials(self, res: Resource, spec: ChargingAnalyticsSpec) -> Credentials:
        found: dict[str, Credential] = {}
        paths = {
            "kafka": "spec.kafka.security.credentialsSecretRef",
            "alerts_db": "spec.alerts.sinks.postgres.credentialsSecretRef",
        }
        for role, ref in referenced_secrets(spec).items():
            found[role] = await self._credential(res.namespace, ref, paths[role])
        tls: dict[str, TlsMaterial] = {}
        for role, tls_ref in referenced_tls(spec).items():
            tls[role] = await self._tls(res.namespace, tls_ref, TLS_PATHS[role])
        return Credentials(
            kafka=found.get("kafka"),
            alerts_db=found.get("alerts_db"),
            kafka_tls=tls.get("kafka_tls"),
            alerts_db_tls=tls.get("alerts_db_tls"),
        )

    def _credential_versions(
        self, res: Resource, spec: ChargingAnalyticsSpec, creds: Credentials
    ) -> list[_Versioned]:
        """Each resolved credential with the Secret and resourceVersion it was read from."""
        secrets_by_role = {role: ref.name for role, ref in referenced_secrets(spec).items()}
        if creds.reader is not None:
            secrets_by_role["reader"] = read_only_secret(_owner(res), spec)
        out = []
        for role, secret in secrets_by_role.items():
            cred: Credential | None = getattr(creds, role)
            version = self._secret_versions.get((res.namespace, secret))
            if cred is not None and version:
                out.append(_Versioned(role, secret, version, cred))
        return out

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
        where = f"spec.readOnlyUser.secretName: Secret {res.namespace}/{secret}"
        try:
            stored = await self.kube.read_secret(res.namespace, secret)
        except KubeError as err:
            raise CheckFailure(
                "SecretUnreadable", f"cannot read Secret {res.namespace}/{secret}: {err}"
            ) from err
        if stored is not None and (res.uid is None or res.uid not in stored.owner_uids):
            # Someone else's Secret (another application's, or another resource's reader):
            # writing would destroy its credentials, or two resources would rotate each other.
            raise CheckFailure(
                "SecretNotOwned",
                f"{where} exists and is not owned by this resource; the operator only writes "
                "Secrets it created: name a Secret that does not exist, or delete this one",
            )
        if stored is not None and stored.data.get("username") == user.encode():
            try:
                password = stored.data.get("password", b"").decode()
            except UnicodeDecodeError:  # the operator's own Secret, damaged: regenerate it
                password = ""
            if password:
                self._secret_versions[(res.namespace, secret)] = stored.resource_version
                return Credential(user, password)
        if spec.mode != "Apply":
            return None
        self._secret_versions.pop((res.namespace, secret), None)  # known after the next read
        password = secrets.token_urlsafe(24)
        owner = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": res.name, "uid": res.uid or ""}
        data = {
            "username": user,
            "password": password,
            "host": endpoint.host,
            "port": str(endpoint.port),
            "database": endpoint.database,
            "schema": spec.tenant,
        }
        try:
            await self.kube.write_secret(res.namespace, secret, data, owner=owner, existing=stored)
        except SecretNotOwned as err:
            raise CheckFailure("SecretNotOwned", f"{where}: {err}") from err
        except KubeError as err:
            raise CheckFailure(
                "SecretUnwritable", f"cannot write Secret {res.namespace}/{secret}: {err}"
            ) from err
        return Credential(user, password)

    def unrepeated(
        self, owner: str, events: list[tuple[EventType, str, str]]
    ) -> list[tuple[EventType, str, str]]:
        """Drop Warnings identical to one posted for the same resource within EVENT_REPEAT_SECONDS:
        Kopf posts every Event as a new object (no client-side aggregation), so a failure retried
        every few seconds would otherwise flood the namespace's Events. Normal Events (each a
        completed action) are all posted."""
        now = time.monotonic()
        out = []
        for type_, reason, message in events:
            key = (owner, type_, reason, message)
            if type_ == "Warning" and now - self._posted.get(key, float("-inf")) < EVENT_REPEAT_SECONDS:
                continue
            self._posted[key] = now
            out.append((type_, reason, message))
        return out

    def first_timer_delay(self, owner: str) -> float:
        """A random share of the drift interval before a resource's first timer pass in this
        process (0 before later ones), so a restarted operator's timers do not all fire at once."""
        if owner in self._timed:
            return 0.0
        self._timed.add(owner)
        return random.uniform(0.0, self.settings.drift_interval_seconds)  # noqa: S311 (not security)

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
            outcome.events = self.unrepeated(res.owner, outcome.events)
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
        """The tenant's Grafana objects, once its SQL objects were reconciled (dashboards.py).

        They follow the same rules as the SQL objects: Plan mode changes none of them and lists
        what an apply would change in ``status.plan.objects``; drift (an object edited or deleted
        after the operator made it match) is restored under ``onDrift: Correct`` and only
        reported under ``Report`` (condition Drifted, Event DriftDetected); a refused call marks
        its object Failed and posts DashboardsFailed, naming the verb and the object.
        """
        if "objects" not in out.status:
            return  # stalled before planning: nothing to show yet
        spec = ChargingAnalyticsSpec.model_validate(res.spec)
        if not spec.dashboards.enabled and not owns_dashboards(res.status):
            return
        key = res.uid or res.owner
        recorded = self._dashboards_recorded.get(key, recorded_hashes(res.status))
        try:
            endpoint = await self._endpoint(res, spec)
            report = await self.grafana.reconcile(
                _owner(res),
                spec,
                endpoint,
                apply=spec.mode == "Apply",
                correct_drift=spec.on_drift == "Correct",
                recorded=recorded,
            )
        except (KubeError, CheckFailure) as err:
            out.events.append(("Warning", "DashboardsFailed", f"Grafana objects: {err}"))
            out.retry_after = out.retry_after or self._backoff(res)
            out.retry_message = out.retry_message or f"Grafana objects: {err}"
            # what the last look found stays recorded: it tells later drift from spec changes
            out.status["objects"] = [*out.status["objects"], *dashboard_entries(res.status)]
            return
        entries = [r.status() for r in report.objects]
        if report.errors:
            # objects the spec no longer wants could not be listed or deleted: they stay listed
            # (Failed), so the resource shows them and the next reconcile tries again
            wanted = {(e["kind"], e["name"]) for e in entries}
            entries += [
                {**e, "state": "Failed"}
                for e in dashboard_entries(res.status)
                if (e["kind"], e["name"]) not in wanted
            ]
        out.status["objects"] = [*out.status["objects"], *entries]
        # a Failed object was not changed by this reconcile: what was recorded for it still holds
        failed = {(r.kind, r.name) for r in report.objects if r.state == "Failed"}
        self._dashboards_recorded[key] = recorded_hashes({"objects": entries}) | {
            r for r in recorded if (r[0], r[1]) in failed
        }
        fold_dashboards(out, report, previous_plan=res.status.get("plan"))
        if report.failures:
            out.retry_after = out.retry_after or self._backoff(res)
            out.retry_message = out.retry_message or "; ".join(report.failures)
        if any(o.action == "restore" and o.applied for o in report.objects):
            metrics.DRIFT_CORRECTIONS.labels(res.namespace, res.name).inc()

    async def _preconditions(
        self, res: Resource, spec: ChargingAnalyticsSpec, creds: Credentials, applying: bool, out: Outcome
    ) -> None:
        """The Kafka topics and the PostgreSQL alert table, checked when their inputs (the spec's
        parts they read, the credentials, the mode) differ from the last check that passed, or
        after the resource stalled (an error may mean the world changed): not on every pass, so
        a timer pass of a Ready tenant opens no Kafka or PostgreSQL connection."""
        kafka = self.settings.check_kafka
        postgres = applying and spec.alerts.sinks.postgres is not None and self.settings.manage_postgres_table
        if not kafka and not postgres:
            return
        material = [
            spec.kafka.model_dump_json(),
            spec.alerts.sinks.model_dump_json(),
            str((kafka, postgres, applying)),
            *(f"{cred.username}\0{cred.password}" for cred in (creds.kafka, creds.alerts_db) if cred),
            *(v for tls in (creds.kafka_tls, creds.alerts_db_tls) if tls is not None for v in tls.values()),
        ]
        fingerprint = hashlib.sha256("\0".join(material).encode()).hexdigest()
        if self._prechecked.get(res.owner) == fingerprint:
            return
        self._prechecked.pop(res.owner, None)
        if kafka:
            created = await check_kafka(
                spec,
                creds.kafka,
                self.settings.kafka_timeout_seconds,
                create=applying,
                tls=creds.kafka_tls,
                admins=self._kafka_admins,
            )
            for topic in created:
                out.events.append(("Normal", "TopicCreated", f"created alerts topic {topic}"))
        if postgres:
            assert creds.alerts_db is not None
            await ensure_postgres_table(
                spec, creds.alerts_db, self.settings.kafka_timeout_seconds, tls=creds.alerts_db_tls
            )
        self._prechecked[res.owner] = fingerprint

    async def _reconcile(self, res: Resource, *, origin: str) -> Outcome:
        out = Outcome()
        try:
            spec = ChargingAnalyticsSpec.model_validate(res.spec)
        except ValidationError as err:
            msg = "; ".join(f"{i.path}: {i.message}" for i in issues_from(err, res.owner, "spec"))
            return self._stalled(res, out, "InvalidSpec", msg, retry=False)
        # before any Secret is read: creating or fixing a missing one reconciles this resource
        for ref_name in all_secret_names(spec):
            self._secret_refs.setdefault((res.namespace, ref_name), set()).add(res.owner)
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
            await self._preconditions(res, spec, creds, applying, out)
            store = await self._store_for(client, endpoint)
            snapshot = await self.snapshot(
                client,
                endpoint,
                # a new or changed spec plans against a read that began after it arrived; a
                # timer, a restart's resume pass or a Secret change share the interval's read
                fresh=origin in ("create", "update"),
                not_before=self._applied.get((endpoint.key, spec.tenant), 0.0),
            )
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
        versions = self._credential_versions(res, spec, creds)
        _remember_digests(spec, res.status, versions)
        # off the event loop: a new or rotated credential costs a deliberately slow digest
        desired = await asyncio.to_thread(
            render, spec, RenderOptions(secret_store=store, credentials=creds, capabilities=capabilities)
        )
        out.status["credentials"] = _credentials_status(spec, versions)
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

        if origin == "timer" and plan.empty and spec.mode == "Apply":
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
            # Plan mode's job is to publish the plan: done, it is Ready. An object the plan would
            # create is Pending, not Missing (nothing was lost; nothing was meant to exist yet).
            out.status["objects"] = [
                {**o, "state": "Pending"} if o["state"] == "Missing" else o
                for o in objects_status(desired, catalog)
            ]
            if plan.empty:
                out.conditions = [*ready("UpToDate", "plan mode: nothing to change"), drift_cond]
            else:
                out.conditions = [
                    *ready(
                        "PlanReady",
                        f"plan mode: {plan.summary()} would be applied (plan {plan.hash}); "
                        "nothing was applied",
                    ),
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
            slots = self._apply_slots.setdefault(
                endpoint.key, asyncio.Semaphore(self.settings.max_concurrent_applies)
            )
            failure: ApplyError | None = None
            built: list[ObservedObject] | None = None
            async with slots:
                stop = asyncio.Event()
                reporter = asyncio.create_task(self._report_progress(res, client, desired, catalog, stop))
                try:
                    result = await apply_plan(client, plan, target=self._alerts_target(spec, creds))
                except ApplyError as err:
                    failure = err
                finally:
                    stop.set()
                    await reporter
                if failure is None:
                    # The apply's own results say what the tenant now has, except the ids and
                    # definitions RisingWave gave what it built (the fingerprints that reveal a
                    # later change behind the operator's back): one read of the tenant's schema,
                    # not a snapshot of the endpoint.
                    try:
                        built = await client.schema_objects(spec.tenant)
                    except RisingWaveError as err:
                        log.info("could not read %s after the apply: %s", spec.tenant, err)
            # the tenant's next reconcile must not plan against a snapshot read before this point
            self._applied[(endpoint.key, spec.tenant)] = time.monotonic()
            if failure is not None:
                if isinstance(failure.cause, RisingWaveUnavailable):
                    return self._unavailable(res, out, failure.cause)
                return self._stalled(
                    res, out, "ApplyFailed", f"{failure.action.type} {failure.action.name}: {failure.cause}"
                )
            for a in result.applied:
                metrics.APPLIED_ACTIONS.labels(a.type).inc()
            if plan.drift and options.correct_drift:
                metrics.DRIFT_CORRECTIONS.labels(ns, name).inc()
                out.events.append(("Normal", "DriftCorrected", drifted(plan).message))
            out.events.append(("Normal", "Applied", f"plan {plan.hash}: {plan.summary()}"))
            catalog = catalog_after(catalog, plan, built)
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
                *reconciling("Backfilling", f"building {', '.join(building)}"),
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
                        *reconciling("Backfilling", f"building {building}"),
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
        return functools.partial(
            run_on_alerts_db, spec, cred, self.settings.kafka_timeout_seconds, tls=creds.alerts_db_tls
        )

    @staticmethod
    def _ready_message(desired: list[Any]) -> str:
        return f"{len(desired)} objects in RisingWave match the spec"

    def _stalled(
        self, res: Resource, out: Outcome, reason: str, message: str, *, retry: bool = True
    ) -> Outcome:
        """Stalled: Ready=False, an event, and (unless only a spec change can help) a retry with
        exponential backoff; the drift timer retries too, so nothing waits forever."""
        shown = message
        self._prechecked.pop(res.owner, None)  # the next attempt checks Kafka and PostgreSQL again
        if retry:
            out.retry_after = self._backoff(res)
            # the drift timer retries too: the next attempt comes within the shorter of the two
            within = min(out.retry_after, self.settings.drift_interval_seconds)
            shown = f"{message} (next attempt within {within:.0f}s)"
        out.conditions = stalled(reason, shown)
        # no delay or time in an Event's message: identical Events are aggregated by Kubernetes
        out.events.append(("Warning", reason, message))
        out.result = "stalled"
        metrics.RECONCILE_ERRORS.labels(reason).inc()
        return out

    def _unavailable(self, res: Resource, out: Outcome, err: Exception) -> Outcome:
        reason = "RisingWaveTlsFailed" if isinstance(err, RisingWaveTlsFailed) else "RisingWaveUnavailable"
        return self._stalled(res, out, reason, str(err))

    async def _publish(self, res: Resource, out: Outcome) -> None:
        """Patch the status, unless it already says exactly this (a quiet steady state: a pass
        that finds nothing changed writes nothing to the API server)."""
        status: dict[str, Any] = dict(out.status)
        status["conditions"] = merge_conditions(res.status.get("conditions"), out.conditions, res.generation)
        if res.generation is not None:
            status["observedGeneration"] = res.generation
        if all(res.status.get(key) == value for key, value in status.items()):
            return
        await self.kube.patch_status(res.namespace, res.name, status)

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
        self._prechecked.pop(res.owner, None)
        self._timed.discard(res.owner)
        out = Outcome()
        force = res.annotations.get(c.ANNOTATION_FORCE_DELETE, "").lower() == "true"
        target = teardown_target(res.spec)
        if target is None:
            # The tenant was never valid (it is immutable once admitted): nothing can exist.
            out.events.append(("Warning", "NothingToDelete", "spec.tenant is invalid; nothing was created"))
            return out
        tenant, policy = target.tenant, target.deletion_policy
        try:
            async with self._lock(res):
                try:
                    endpoint = await self._endpoint(res, target)
                    client = await self._client(endpoint)
                    snapshot = await self.snapshot(client, endpoint, fresh=True)
                except CheckFailure as err:
                    raise RetryLater(f"{err.reason}: {err.message}", self._deletion_delay(res)) from err
                except RisingWaveUnavailable as err:
                    raise RetryLater(f"RisingWave unavailable: {err}", self._deletion_delay(res)) from err
                owner = snapshot.owners.get(tenant)
                if owner is not None and owner != res.owner:
                    out.events.append(("Normal", "NotOwner", f"tenant owned by {owner}; nothing dropped"))
                    return out
                catalog = snapshot.tenant(tenant)
                plan = teardown_plan(catalog, orphan_ledger_only=policy == "Orphan" or force)
                try:
                    await apply_plan(client, plan)
                except ApplyError as err:
                    self._snapshots.pop(endpoint.key, None)
                    raise RetryLater(f"{err}", self._deletion_delay(res)) from err
                self._snapshots.pop(endpoint.key, None)
                dashboards = res.spec.get("dashboards") or {}
                if dashboards.get("enabled") or owns_dashboards(res.status):
                    try:
                        await self.grafana.delete_all(_owner(res))
                        self._dashboards_recorded.pop(res.uid or res.owner, None)
                    except KubeError as err:
                        raise RetryLater(f"Grafana objects: {err}", self._deletion_delay(res)) from err
        except RetryLater as err:
            if force:
                out.events.append(
                    (
                        "Warning",
                        "FinalizerReleased",
                        f"force-released without reaching RisingWave: {err}; "
                        f"the tenant's objects and its claim remain",
                    )
                )
                return out
            await self._publish_deletion_blocked(res, str(err))
            raise
        if force:
            out.events.append(
                (
                    "Warning",
                    "FinalizerReleased",
                    f"force-released: tenant {tenant} claim released, RisingWave objects were not dropped",
                )
            )
        else:
            verb = "dropped" if policy == "Delete" else "orphaned"
            out.events.append(("Normal", "Deleted", f"tenant {tenant} {verb} ({plan.summary()})"))
        for refs in self._secret_refs.values():
            refs.discard(res.owner)
        return out

    def _deletion_delay(self, res: Resource) -> float:
        """Backoff for deletion retries, capped so a force-release annotation is seen promptly."""
        return min(self._backoff(res), self.settings.deletion_retry_seconds)

    async def _publish_deletion_blocked(self, res: Resource, message: str) -> None:
        hint = f"; annotate {c.ANNOTATION_FORCE_DELETE}=true to release without dropping"
        conditions = [
            Cond(c.COND_READY, "False", "DeletionBlocked", message + hint),
            Cond(c.COND_RECONCILING, "True", "Deleting", "waiting to drop the tenant's objects"),
            Cond(c.COND_STALLED, "True", "DeletionBlocked", message + hint),
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
        return _target_from(ChargingAnalyticsSpec.model_validate(raw))
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


def _target_from(spec: ChargingAnalyticsSpec) -> TeardownTarget:
    return TeardownTarget(spec.tenant, spec.deletion_policy, spec.risingwave)


@dataclass(frozen=True)
class _Versioned:
    role: str
    secret: str
    resource_version: str
    credential: Credential


_PARTS = ("username", "password")


def _remember_digests(
    spec: ChargingAnalyticsSpec, status: Mapping[str, Any], versions: list[_Versioned]
) -> None:
    """Take the digests recorded in status for credentials whose Secret has not changed since (same
    resourceVersion), so the first pass after a restart computes no digest for them."""
    recorded = {
        (str(e.get("role")), str(e.get("secret")), str(e.get("resourceVersion"))): e.get("digests") or {}
        for e in status.get("credentials") or []
        if isinstance(e, Mapping)
    }
    for v in versions:
        digests = recorded.get((v.role, v.secret, v.resource_version), {})
        for part in _PARTS:
            digest = digests.get(part)
            if isinstance(digest, str) and digest:
                remember_digest(digest_salt(spec.tenant, v.role, part), getattr(v.credential, part), digest)


def _credentials_status(spec: ChargingAnalyticsSpec, versions: list[_Versioned]) -> list[dict[str, Any]]:
    """What :func:`_remember_digests` reads back: the digests render computed (or took) this pass."""
    out = []
    for v in versions:
        digests = {}
        for part in _PARTS:
            digest = known_digest(digest_salt(spec.tenant, v.role, part), getattr(v.credential, part))
            if digest is not None:
                digests[part] = digest
        if digests:
            out.append(
                {
                    "role": v.role,
                    "secret": v.secret,
                    "resourceVersion": v.resource_version,
                    "digests": digests,
                }
            )
    return out


def _text(value: bytes, where: str, key: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckFailure(
            "SecretValueNotText", f"{where}: key {key!r} is not UTF-8 text (a user name or password must be)"
        ) from err


def _owner(res: Resource) -> Owner:
    return Owner(res.namespace, res.name, res.uid)


def fold_dashboards(out: Outcome, report: DashboardsReport, *, previous_plan: Any) -> None:
    """Add what the Grafana objects' reconcile found to the conditions and events (pure)."""
    for o in report.objects:
        if o.applied and o.action == "restore":
            out.events.append(("Normal", "DriftCorrected", f"{o.describe_drift()}; restored"))
        elif o.applied:
            verb = "created" if o.action == "create" else "updated"
            out.events.append(("Normal", f"Dashboard{verb.title()}", f"{o.ref} {verb}"))
    for r in report.removals:
        if r.applied:
            out.events.append(("Normal", "DashboardDeleted", f"{r.ref} deleted"))
    if report.failures:
        out.events.append(("Warning", "DashboardsFailed", "; ".join(report.failures)))
    drift = report.drift()
    if drift:
        text = "; ".join(drift)
        if out.result != "plan":
            out.events.append(("Warning", "DriftDetected", text))
        found = next((i for i, cond in enumerate(out.conditions) if cond.type == c.COND_DRIFTED), None)
        if found is None or out.conditions[found].status != "True":
            cond = Cond(c.COND_DRIFTED, "True", "DriftDetected", text)
        else:
            old = out.conditions[found]
            cond = replace(old, message=f"{old.message}; {text}")
        if found is None:
            out.conditions.append(cond)
        else:
            out.conditions[found] = cond
    if out.result == "plan" and isinstance(out.status.get("plan"), dict):
        planned = report.planned()[:16]  # the status schema's bound
        out.status["plan"] = {**out.status["plan"], "objects": planned}
        before = previous_plan.get("objects") if isinstance(previous_plan, Mapping) else None
        if planned and planned != before:
            out.events.append(("Normal", "PlanReady", f"Grafana objects: {', '.join(planned)}"))
        if planned:
            for i, cond in enumerate(out.conditions):
                if cond.type == c.COND_READY and cond.reason == "UpToDate":
                    out.conditions[i] = Cond(
                        c.COND_READY,
                        "True",
                        "PlanReady",
                        f"plan mode: {', '.join(planned)} would be applied; nothing was applied",
                    )
                elif cond.type == c.COND_READY:
                    out.conditions[i] = replace(cond, message=f"{cond.message}; and {', '.join(planned)}")
                elif cond.type in (c.COND_RECONCILING, c.COND_STALLED) and cond.reason == "UpToDate":
                    out.conditions[i] = replace(cond, reason="PlanReady")


def _desired_hash(desired: list[Any]) -> str:
    h = hashlib.sha256()
    for o in desired:
        h.update(f"{o.key}={o.hash}\n".encode())
    return "sha256:" + h.hexdigest()[:24]
