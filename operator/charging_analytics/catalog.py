"""What the operator knows about a RisingWave database: a pure, immutable snapshot.

The RisingWave client (:mod:`charging_analytics.rw.client`) builds a :class:`CatalogSnapshot`
from a handful of catalog reads; the planner compares desired objects against it. Nothing in
this module does I/O.

RisingWave re-prints stored definitions (keywords upper-cased, ``IF NOT EXISTS`` stripped,
definitions rewritten on renames; docs/risingwave.md §11), so definitions cannot be
compared as text. The operator keeps its own *ledger* instead: one row per object it applied,
with the definition hash, the kind and the object's dependencies, in the operator-owned table
``cha_system.ledger`` (one table for all tenants, so a whole-endpoint snapshot is one read).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from .ledger import OWNER_ROW

ObjectKind = Literal["Schema", "Source", "MaterializedView", "View", "Sink", "Table", "Secret", "User"]


def definition_fingerprint(kind: str, oid: int | None, definition: str | None) -> str:
    """Identity of an object as RisingWave stores it (its id and normalised definition): the
    planner compares it with the one recorded after the last apply to tell a change made behind
    the operator's back."""
    return hashlib.sha256(f"{kind}\0{oid}\0{definition or ''}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ObservedObject:
    """An object found in RisingWave's catalog."""

    kind: ObjectKind
    schema: str
    name: str
    id: int | None = None
    #: :func:`definition_fingerprint` of RisingWave's normalised definition, taken when the object
    #: is read: the text itself is not kept (definitions were most of a whole-endpoint snapshot's
    #: memory, and they are never compared as text). Empty: read without a definition.
    fingerprint: str = ""

    @classmethod
    def read(
        cls, kind: ObjectKind, schema: str, name: str, oid: int | None, definition: str | None
    ) -> ObservedObject:
        """The object as a catalog row gives it (its definition folded into the fingerprint)."""
        return cls(kind, schema, name, oid, definition_fingerprint(kind, oid, definition))

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the operator recorded after applying an object."""

    tenant: str
    name: str  # object name inside the tenant schema ("" for the schema itself)
    kind: ObjectKind
    hash: str
    depends_on: tuple[str, ...] = ()  # object names inside the same schema


@dataclass(frozen=True)
class TenantCatalog:
    """The slice of a snapshot that belongs to one tenant schema."""

    tenant: str
    schema_exists: bool
    objects: Mapping[str, ObservedObject] = field(default_factory=dict)  # by object name
    ledger: Mapping[str, LedgerEntry] = field(default_factory=dict)  # by object name
    owner: str | None = None  # "namespace/name" of the resource that owns the tenant
    #: DDL progress of objects still being built, e.g. {"station_revenue": "42.10%"}.
    ddl_progress: Mapping[str, str] = field(default_factory=dict)
    #: Every user of the endpoint (users are not schema-scoped).
    users: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CatalogSnapshot:
    """Everything the planner needs about one RisingWave endpoint (host:port/database)."""

    endpoint: str
    schemas: frozenset[str] = frozenset()
    objects: tuple[ObservedObject, ...] = ()
    ledger: tuple[LedgerEntry, ...] = ()
    owners: Mapping[str, str] = field(default_factory=dict)  # tenant -> owner identity
    users: frozenset[str] = frozenset()
    ddl_progress: Mapping[str, str] = field(default_factory=dict)  # "schema.name" -> "42.10%"
    ledger_exists: bool = False
    taken_at: float = 0.0  # time.monotonic() when read

    def tenant(self, tenant: str) -> TenantCatalog:
        """The tenant's view of the snapshot (used once per reconcile).

        One snapshot is shared by every tenant of an endpoint, so this must not scan it: the
        first call groups the whole snapshot by tenant once (O(snapshot)), every call then costs
        O(the tenant's own objects). Each call returns fresh dicts (callers may not share them).
        """
        objects, ledger, progress = self.index.tenants.get(tenant, _NO_ROWS)
        return TenantCatalog(
            tenant=tenant,
            schema_exists=tenant in self.schemas,
            objects=dict(objects),
            ledger=dict(ledger),
            owner=self.owners.get(tenant),
            ddl_progress=dict(progress),
            users=self.users,
        )

    @cached_property
    def index(self) -> SnapshotIndex:
        """The snapshot grouped by tenant, built on first use and kept on the (immutable)
        snapshot; later duplicates win, as in a dict built in snapshot order."""
        tenants: dict[str, TenantRows] = {}
        owner_rows: dict[str, LedgerEntry] = {}

        def rows(tenant: str) -> TenantRows:
            found = tenants.get(tenant)
            if found is None:
                found = tenants[tenant] = ({}, {}, {})
            return found

        for o in self.objects:
            rows(o.schema)[0][o.name] = o
        for e in self.ledger:
            if e.name != OWNER_ROW:
                rows(e.tenant)[1][e.name] = e
            else:
                owner_rows[e.tenant] = e
        for qualified, progress in self.ddl_progress.items():
            schema, dot, name = qualified.partition(".")
            if dot:
                rows(schema)[2][name] = progress
        return SnapshotIndex(tenants, owner_rows)


#: Per tenant: objects, ledger entries (without the owner row) and DDL progress, each by object
#: name.
TenantRows = tuple[dict[str, ObservedObject], dict[str, LedgerEntry], dict[str, str]]
_NO_ROWS: TenantRows = ({}, {}, {})


@dataclass(frozen=True, slots=True)
class SnapshotIndex:
    """A snapshot's rows by tenant (:attr:`CatalogSnapshot.index`): what each tenant's reconcile
    takes its slice from, and where the next read of the endpoint finds the objects and ledger
    entries it can reuse, by schema and name, without an index of its own."""

    tenants: dict[str, TenantRows]
    #: each tenant's owner row in the ledger
    owner_rows: dict[str, LedgerEntry]
