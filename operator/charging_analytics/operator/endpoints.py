"""The RisingWave endpoints the service talks to: pools, the shared catalog snapshot, apply slots.

One :class:`EndpointPool` per service. Per endpoint it holds one connection pool per identity,
one catalog snapshot shared by every tenant of the endpoint, the semaphores that bound the applies
running at once and the reconciles holding a rendered plan, and what each tenant's last apply
left (so the tenant's next reconcile sees its own writes without re-reading the whole endpoint).

Catalog reads are *single-flight*: at most one read per endpoint is in flight, and every
reconcile whose freshness rule that read satisfies waits for it instead of starting its own. A
reconcile needing a read that began after some time (its request, its resource's creation) and
finding an older read in flight waits for the next one, which starts as soon as the current one
ends and serves everyone who queued meanwhile. A burst of creates therefore costs a few reads,
not one each. Reconciles get their tenant's slice (:class:`TenantView`), never the whole-fleet
snapshot, so none keeps a fleet's worth of memory alive while it renders, plans and applies.

Time comes from an injectable monotonic ``clock`` so tests can age the snapshot without sleeping.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..catalog import CatalogSnapshot, TenantCatalog
from ..pipeline import SecretStore
from ..rw.client import ClientOptions, Endpoint, RisingWaveClient, RisingWaveUnavailable
from . import metrics
from .memory import release_free_memory
from .settings import OperatorSettings

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class TenantView:
    """What a reconcile needs of the endpoint's catalog for one tenant."""

    catalog: TenantCatalog
    ledger_exists: bool
    #: the owner identity recorded in the ledger (None: unclaimed)
    owner: str | None


@dataclass
class _Written:
    """A tenant's catalog as its last apply left it (``catalog`` None: unknown, re-read it)."""

    at: float
    catalog: TenantCatalog | None


@dataclass
class _Shared:
    """One endpoint's shared snapshot and the read in flight."""

    started: float = float("-inf")
    snapshot: CatalogSnapshot | None = None
    inflight: tuple[float, asyncio.Task[CatalogSnapshot]] | None = None
    written: dict[str, _Written] = field(default_factory=dict)
    #: when an apply last left the ledger table in place (every successful plan creates it if
    #: missing): snapshots read before then may not show it
    ledger_at: float = float("-inf")


class EndpointPool:
    def __init__(self, settings: OperatorSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        #: (endpoint key, user, TLS identity, password digest) -> its pool
        self.clients: dict[tuple[Any, ...], RisingWaveClient] = {}
        self._clients_lock = asyncio.Lock()
        self._closed = False  # set by close(): no pool is opened after it
        self._shared: dict[str, _Shared] = {}
        #: Applies running at once per endpoint: fewer than the pool's connections, so a burst of
        #: tenants queues here (as long as it takes) instead of for a pooled connection, where a
        #: wait longer than the connect timeout reads as "RisingWave unavailable" and backs off.
        self._apply_slots: dict[str, asyncio.Semaphore] = {}
        #: Reconciles between their render and the end of their apply, per endpoint: what they
        #: hold (the rendered statements and the plan, some 100 KiB a tenant) is bounded by this,
        #: not by the size of a burst of creates. Twice the apply slots, so that a plan is ready
        #: whenever a slot frees.
        self._plan_slots: dict[str, asyncio.Semaphore] = {}
        self._secret_store: dict[str, SecretStore] = {}

    async def close(self) -> None:
        async with self._clients_lock:  # a pool being opened now is stored (then closed) first
            self._closed = True
            clients = list(self.clients.values())
            self.clients.clear()
        for client in clients:
            await client.close()

    # -- connection pools -------------------------------------------------------------------------

    async def client(self, endpoint: Endpoint) -> RisingWaveClient:
        async with self._clients_lock:  # concurrent reconciles must not open two pools for one key
            return await self._client_locked(endpoint)

    async def _client_locked(self, endpoint: Endpoint) -> RisingWaveClient:
        digest = hashlib.sha256(endpoint.password.encode()).hexdigest()
        # Resources may reach one endpoint with different TLS material (or files): a pool each.
        tls = (endpoint.tls.digest() if endpoint.tls else "", endpoint.tls_files)
        key = (endpoint.key, endpoint.user, tls, digest)
        client = self.clients.get(key)
        if client is None and self._closed:
            # a reconcile still running while the operator shuts down opens no pool (its PEM
            # files would outlive the process's cleanup)
            raise RisingWaveUnavailable(f"{endpoint.key}: the operator is shutting down")
        if client is None:
            for old in [k for k in self.clients if k[:3] == key[:3]]:  # rotated password
                await self.clients.pop(old).close()
            options = ClientOptions(
                statement_timeout=self.settings.statement_timeout_seconds,
                connect_timeout=self.settings.connect_timeout_seconds,
                pool_max=self.settings.pool_size,
            )
            client = RisingWaveClient(endpoint, options)
            try:
                await client.open()
            except BaseException:
                await client.close()
                raise
            self.clients[key] = client
        return client

    async def secret_store(self, client: RisingWaveClient, endpoint: Endpoint) -> SecretStore:
        if self.settings.secret_store != "auto":
            return self.settings.secret_store
        store = self._secret_store.get(endpoint.key)
        if store is None:
            store = "risingwave" if await client.secrets_available() else "inline"
            self._secret_store[endpoint.key] = store
            log.info("secret store for %s: %s", endpoint.key, store)
        return store

    def apply_slots(self, endpoint: Endpoint) -> asyncio.Semaphore:
        return self._apply_slots.setdefault(
            endpoint.key, asyncio.Semaphore(self.settings.max_concurrent_applies)
        )

    def plan_slots(self, endpoint: Endpoint) -> asyncio.Semaphore:
        return self._plan_slots.setdefault(
            endpoint.key, asyncio.Semaphore(2 * self.settings.max_concurrent_applies)
        )

    # -- the shared catalog snapshot --------------------------------------------------------------

    async def view(
        self, client: RisingWaveClient, tenant: str, *, fresh_since: float | None = None
    ) -> TenantView:
        """The tenant's slice of the endpoint's catalog.

        ``fresh_since``: the read must have started at or after that time (a create or a spec
        change plans against the world as it was when it arrived); without it, any read younger
        than ``catalog_cache_seconds`` will do. Either way the tenant's own last apply is seen:
        what it left stands in for the tenant's slice until a read that started after it exists
        (and when what it left is unknown, such a read is waited for).
        """
        shared = self._shared.setdefault(client.endpoint.key, _Shared())
        need = float("-inf") if fresh_since is None else fresh_since
        written = shared.written.get(tenant)
        if written is not None and written.catalog is None:
            need = max(need, written.at)
        started, snapshot = await self._read_since(shared, client, need, young=fresh_since is None)
        written = shared.written.get(tenant)
        if written is not None and started < written.at and written.catalog is not None:
            return TenantView(written.catalog, True, written.catalog.owner)
        if written is not None and shared.started >= written.at:
            del shared.written[tenant]  # the shared snapshot has caught up with the apply
        # another tenant's apply may have created the ledger since this read began: planning
        # its bootstrap again would cost two statements per tenant of a burst
        ledger = snapshot.ledger_exists or started < shared.ledger_at
        return TenantView(snapshot.tenant(tenant), ledger, snapshot.owners.get(tenant))

    def wrote(
        self, endpoint: Endpoint, tenant: str, catalog: TenantCatalog | None, *, ledger: bool = False
    ) -> None:
        """The tenant's objects were just changed; ``catalog`` is what they are now, or None when
        that is unknown (a failed apply, a teardown): then its next reconcile reads anew.
        ``ledger``: the ledger table exists now (a plan that succeeded made sure of it)."""
        shared = self._shared.setdefault(endpoint.key, _Shared())
        now = self.clock()
        shared.written[tenant] = _Written(now, catalog)
        if ledger:
            shared.ledger_at = now

    async def _read_since(
        self, shared: _Shared, client: RisingWaveClient, need: float, *, young: bool
    ) -> tuple[float, CatalogSnapshot]:
        """A snapshot whose read started at or after ``need`` (and, if ``young``, within the cache
        age), with that start: the shared one, the read in flight, or the next read."""
        while True:
            asked = self.clock()
            fits = shared.started >= need and (
                not young or asked - shared.started <= self.settings.catalog_cache_seconds
            )
            if shared.snapshot is not None and fits:
                return shared.started, shared.snapshot
            if shared.inflight is not None:
                started, task = shared.inflight
                if started >= need:
                    return started, await asyncio.shield(task)
                await asyncio.wait([task])  # began too early for this caller: wait for the next
                continue
            started = self.clock()
            task = asyncio.create_task(self._read(shared, client, started))
            shared.inflight = (started, task)
            return started, await asyncio.shield(task)

    async def _read(self, shared: _Shared, client: RisingWaveClient, started: float) -> CatalogSnapshot:
        try:
            snapshot = await client.snapshot(previous=shared.snapshot)
        finally:
            shared.inflight = None
        metrics.CATALOG_READS.labels(client.endpoint.key).inc()
        if started >= shared.started:
            shared.started, shared.snapshot = started, snapshot
        # what the read held in C memory (its whole result) and the snapshot it replaced are free
        release_free_memory()
        return snapshot
