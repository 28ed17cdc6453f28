"""Catalog state of the RisingWave DOUBLE: schemas, relations, secrets, users, grants, jobs.

Plain data; the statement semantics live in :mod:`tests.rw_double.engine`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from .sqltext import Name, OptionValue, Printed, print_name

SOURCE = "source"
TABLE = "table"
MATERIALIZED_VIEW = "materialized view"
VIEW = "view"
SINK = "sink"
SECRET = "secret"
SCHEMA = "schema"

#: Relation kinds share one name space per schema (tables, sources, MVs, views, sinks).
RELATION_KINDS = (SOURCE, TABLE, MATERIALIZED_VIEW, VIEW, SINK)
#: Kinds that can be read from in a query.
QUERYABLE_KINDS = (SOURCE, TABLE, MATERIALIZED_VIEW, VIEW)

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "rw_catalog")

# PostgreSQL type OIDs used on the wire
OID_BOOL = 16
OID_BYTEA = 17
OID_INT8 = 20
OID_INT2 = 21
OID_INT4 = 23
OID_TEXT = 25
OID_FLOAT4 = 700
OID_FLOAT8 = 701
OID_VARCHAR = 1043
OID_DATE = 1082
OID_TIMESTAMP = 1114
OID_TIMESTAMPTZ = 1184
OID_INTERVAL = 1186
OID_NUMERIC = 1700
OID_JSONB = 3802

_TYPE_OIDS = {
    "varchar": OID_VARCHAR, "character varying": OID_VARCHAR, "text": OID_VARCHAR, "string": OID_VARCHAR,
    "int": OID_INT4, "integer": OID_INT4, "int4": OID_INT4, "serial": OID_INT4,
    "bigint": OID_INT8, "int8": OID_INT8, "smallint": OID_INT2, "int2": OID_INT2,
    "double precision": OID_FLOAT8, "double": OID_FLOAT8, "float8": OID_FLOAT8, "float": OID_FLOAT8,
    "real": OID_FLOAT4, "float4": OID_FLOAT4,
    "numeric": OID_NUMERIC, "decimal": OID_NUMERIC,
    "boolean": OID_BOOL, "bool": OID_BOOL,
    "timestamptz": OID_TIMESTAMPTZ, "timestamp with time zone": OID_TIMESTAMPTZ,
    "timestamp": OID_TIMESTAMP, "timestamp without time zone": OID_TIMESTAMP,
    "date": OID_DATE, "interval": OID_INTERVAL, "jsonb": OID_JSONB, "bytea": OID_BYTEA,
}  # fmt: skip


def type_oid(type_name: str) -> int:
    base = type_name.lower().split("(")[0].strip()
    return _TYPE_OIDS.get(base, OID_VARCHAR)


@dataclass
class Column:
    name: str
    type_name: str

    @property
    def oid(self) -> int:
        return type_oid(self.type_name)


@dataclass
class Schema:
    id: int
    name: str
    owner: int


@dataclass
class User:
    id: int
    name: str
    is_super: bool = False
    create_db: bool = False
    create_user: bool = False
    can_login: bool = True
    password: str | None = None


@dataclass
class Job:
    """A streaming job still backfilling (docs/risingwave.md §12: shows in rw_ddl_progress)."""

    object_id: int
    create_type: str  # FOREGROUND | BACKGROUND
    started: float
    duration: float | None
    polls_needed: int | None
    done: asyncio.Event
    polls_seen: int = 0
    cancelled: bool = False
    cancel_reason: str = ""
    initialized_at: float = field(default_factory=time.time)

    def progress(self, now: float) -> float:
        fractions = []
        if self.duration:
            fractions.append((now - self.started) / self.duration)
        if self.polls_needed:
            fractions.append(self.polls_seen / self.polls_needed)
        value = max(fractions) if fractions else 0.0
        return max(0.0, min(value * 100.0, 99.99))


@dataclass
class Relation:
    id: int
    kind: str
    schema_id: int
    name: str
    owner: int
    printed: Printed  # definition template (object ids are re-bound to current names on read)
    depends_on: list[int] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    options: dict[str, OptionValue] = field(default_factory=dict)
    format: str | None = None
    encode: str | None = None
    format_options: dict[str, OptionValue] = field(default_factory=dict)
    primary_key: list[str] = field(default_factory=list)
    append_only: bool = False
    created_at: float = field(default_factory=time.time)
    status: str = "Created"  # "Creating" while a job backfills
    create_type: str = "FOREGROUND"
    job: Job | None = None
    secret_value: str | None = None  # secrets only; never exposed through SQL

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        # a relation in a catalog reports every change (status, owner, options, name, ...) so
        # that catalog tables are refreshed row by row instead of rebuilt on every read
        changed = self.__dict__.get("_changed")
        if changed is not None:
            changed(self.id)

    @property
    def visible(self) -> bool:
        """Foreground jobs are not listed until they finish; their name is still taken."""
        return self.status == "Created" or self.create_type == "BACKGROUND"

    @property
    def sqlite_table(self) -> str:
        return f"t_{self.id}"

    @property
    def connector(self) -> str | None:
        opt = self.options.get("connector")
        return opt.value if opt else None


@dataclass
class Grant:
    user_id: int
    privilege: str  # SELECT, USAGE, ...
    object_kind: str  # schema, materialized view, ...
    object_id: int
    granted_by: int


@dataclass
class Catalog:
    """Schemas, relations (and secrets), users and grants.

    Add, drop and rename schemas and relations through the methods below: they keep the name
    indexes that make a lookup O(1), so that DDL against a catalog of thousands of tenants costs
    what it costs against an empty one (the fleet benchmark's floor measures the operator, not
    the double's scans).
    """

    schemas: dict[int, Schema] = field(default_factory=dict)
    relations: dict[int, Relation] = field(default_factory=dict)  # also holds secrets
    users: dict[int, User] = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    next_id: int = 1001
    _schema_ids: dict[str, int] = field(default_factory=dict, repr=False)
    #: (schema id, name) -> the relations and secrets of that name, by id (a secret may share
    #: its name with a relation: they are different name spaces).
    _named: dict[tuple[int, str], dict[int, Relation]] = field(default_factory=dict, repr=False)
    #: Sets that collect the ids of relations added, dropped or changed (see :meth:`watch`).
    _watchers: list[set[int]] = field(default_factory=list, repr=False)

    def allocate_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    # ---------------------------------------------------------------- changes

    def add_schema(self, schema: Schema) -> None:
        self.schemas[schema.id] = schema
        self._schema_ids[schema.name] = schema.id

    def drop_schema(self, schema_id: int) -> None:
        schema = self.schemas.pop(schema_id)
        self._schema_ids.pop(schema.name, None)

    def watch(self, changed: set[int]) -> None:
        """From now on, add to ``changed`` the id of every relation that is added, dropped or
        changed, and of every relation whose definition names one that is renamed or dropped."""
        self._watchers.append(changed)

    def _mark(self, rel_id: int) -> None:
        for changed in self._watchers:
            changed.add(rel_id)

    def _mark_referrers(self, rel_id: int) -> None:
        for r in self.relations.values():
            if rel_id in r.printed.pieces:
                self._mark(r.id)

    def add(self, rel: Relation) -> None:
        self.relations[rel.id] = rel
        self._named.setdefault((rel.schema_id, rel.name), {})[rel.id] = rel
        rel.__dict__["_changed"] = self._mark
        self._mark(rel.id)

    def drop(self, rel_id: int) -> None:
        rel = self.relations.pop(rel_id, None)
        if rel is not None:
            self._unindex(rel)
            rel.__dict__.pop("_changed", None)
            self._mark(rel_id)
            self._mark_referrers(rel_id)

    def move(self, rel: Relation, schema_id: int, name: str) -> None:
        """Give ``rel`` a new schema and name (ALTER ... RENAME TO, SWAP WITH)."""
        self._unindex(rel)
        rel.schema_id, rel.name = schema_id, name
        self._named.setdefault((schema_id, name), {})[rel.id] = rel
        self._mark_referrers(rel.id)  # their definitions print the new name

    def _unindex(self, rel: Relation) -> None:
        key = (rel.schema_id, rel.name)
        same = self._named.get(key)
        if same is not None:
            same.pop(rel.id, None)
            if not same:
                del self._named[key]

    # ---------------------------------------------------------------- lookups

    def schema_by_name(self, name: str) -> Schema | None:
        sid = self._schema_ids.get(name)
        return None if sid is None else self.schemas.get(sid)

    def user_by_name(self, name: str) -> User | None:
        return next((u for u in self.users.values() if u.name == name), None)

    def in_schema(self, schema_id: int, name: str, kinds: tuple[str, ...]) -> Relation | None:
        same = self._named.get((schema_id, name))
        if not same:
            return None
        return next((r for r in same.values() if r.kind in kinds), None)

    def dependents(self, object_id: int) -> list[Relation]:
        return [r for r in self.relations.values() if object_id in r.depends_on]

    def qualified(self, rel: Relation) -> str:
        schema = self.schemas.get(rel.schema_id)
        return f"{schema.name}.{rel.name}" if schema else rel.name

    def render(self, printed: Printed) -> str:
        out: list[str] = []
        for piece in printed.pieces:
            if isinstance(piece, str):
                out.append(piece)
                continue
            rel = self.relations.get(piece)
            if rel is None:
                out.append("<dropped>")
                continue
            schema = self.schemas.get(rel.schema_id)
            out.append(print_name(schema.name if schema else None, rel.name))
        return "".join(out)

    def definition(self, rel: Relation) -> str:
        return self.render(rel.printed)


def resolve_schema_name(name: Name, default_schema: str) -> tuple[str, str]:
    """(schema, object) for a 1-, 2- or 3-part name; unqualified names use the search path."""
    if len(name.parts) == 1:
        return default_schema, name.name
    return name.parts[-2], name.parts[-1]
