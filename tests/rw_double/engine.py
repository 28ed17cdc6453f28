"""Statement semantics of the RisingWave DOUBLE (a test stand-in, not RisingWave).

Every imitated behaviour cites the section of ``docs/risingwave.md`` that states it
(``docs/risingwave.md §N``). Behaviour taken from elsewhere names its source and is marked
UNCERTAIN where the exact text was not verified; tests should match such messages by substring.

The engine is synchronous and single-threaded: the wire server calls it from its event loop one
statement at a time. Waiting (foreground backfill, WAIT) is expressed as a :class:`Job` the wire
layer awaits.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from . import catalog as cat
from .analysis import analyze_query
from .catalog import (
    MATERIALIZED_VIEW,
    QUERYABLE_KINDS,
    RELATION_KINDS,
    SECRET,
    SINK,
    SOURCE,
    TABLE,
    VIEW,
    Catalog,
    Column,
    Grant,
    Job,
    Relation,
    Schema,
    User,
)
from .errors import (
    FEATURE_NOT_SUPPORTED,
    INVALID_AUTHORIZATION,
    INVALID_PASSWORD,
    UNDEFINED_DATABASE,
    SqlError,
    not_supported_by_double,
    parse_error,
)
from .sqltext import (
    Cursor,
    Name,
    OptionValue,
    Printed,
    Token,
    find_relation_refs,
    parse_options,
    reprint,
    split_top_level,
    tokenize,
)

DATABASE = "dev"  # docs/risingwave.md §13: database dev, user root, port 4566
SERVER_VERSION = "13.14.0"

# docs/risingwave.md §13 (text from src/frontend/src/handler/transaction.rs)
BEGIN_NOTICE = (
    "Read-write transaction is not supported yet. Please specify `READ ONLY` to start a read-only "
    "transaction.\nFor compatibility, this statement will still succeed but no transaction is "
    "actually started."
)
# docs/risingwave.md §7 (text from src/license/src/feature.rs, FeatureNotAvailable::NotAvailable)
LICENSE_ERROR = (
    "feature SecretManagement is not available based on your license\n\n"
    "Hint: You may want to set a license key with `ALTER SYSTEM SET license_key = '...';` command."
)
# docs/risingwave.md §9
DROP_CASCADE_HINT = "HINT:  Use DROP ... CASCADE to drop the dependent objects too."
DROP_FIRST_HINT = "HINT:  DROP the dependent objects first."
# docs/risingwave.md §6 (prefix documented; the tail is UNCERTAIN)
APPEND_ONLY_ERROR = (
    "The sink of retract stream cannot be append-only. Please add \"force_append_only='true'\" in "
    "{where} options to force the sink to be append-only. Notice that this will cause the sink "
    "executor to drop DELETE messages and convert UPDATE messages to INSERT."
)
# docs/risingwave.md §1
STARTUP_MODE_ERROR = "properties `scan_startup_mode` only supports earliest and latest or leaving it empty"

TimeoutUnits = Literal["required", "legacy"]

#: The version the double imitates unless told otherwise (the newest the operator knows).
DEFAULT_VERSION = "3.0.3"
#: Catalog columns that exist only from a version on: a read of one on an older version fails
#: as RisingWave's binder does. rw_secrets.schema_id: PR #20556 (v2.3.0),
#: https://github.com/risingwavelabs/risingwave/pull/20556.
#: rw_materialized_views.schema_name: v3.0.0 (https://docs.risingwave.com/sql/system-catalogs/rw-catalog).
VERSIONED_COLUMNS: dict[str, dict[str, tuple[int, int, int]]] = {
    "rw_secrets": {"schema_id": (2, 3, 0)},
    "rw_materialized_views": {"schema_name": (3, 0, 0)},
}
# RisingWave's binder for an unknown column (BindContext::get_index*, src/frontend/src/binder/
# bind_context.rs: ErrorCode::ItemNotFound(format!("Invalid column: {}", ...)), displayed as
# "Item not found: {0}")
INVALID_COLUMN_ERROR = "Item not found: Invalid column: {name}"
# The JDBC sink's config is deserialized with serde's deny_unknown_fields before v2.3.0, which
# added `user` / `password` (PR #19822, https://github.com/risingwavelabs/risingwave/pull/19822)
JDBC_UNKNOWN_FIELD_ERROR = "unknown field `{field}`"
# src/frontend/src/handler/create_secret.rs (secret_to_str, v2.2.0 … v3.0.3): the secret value must be
# a plain single- or double-quoted string; ErrorCode::InvalidInputSyntax displays as
# "Invalid input syntax: {0}" (the handler's text ends with a space)
SECRET_QUOTE_ERROR = "Invalid input syntax: secret value should be quoted by ' or \" "


def parse_version(text: str) -> tuple[int, int, int]:
    major, minor, patch = (int(p) for p in text.split("."))
    return (major, minor, patch)


@dataclass
class EngineConfig:
    """Knobs of the double that change statement semantics (set through RisingWaveDouble)."""

    license: bool = False
    backfill_seconds: float | None = None
    backfill_polls: int | None = None
    #: "required": statement_timeout needs a unit ('30s'; RisingWave ≥ v2.8, PR #24633);
    #: "legacy": a bare integer means seconds and units are rejected (before that PR).
    statement_timeout_units: TimeoutUnits = "required"
    #: None: DML becomes visible to reads only at FLUSH (or with RW_IMPLICIT_FLUSH); a number:
    #: also after that many seconds (real RisingWave: at the next checkpoint, about 1 s).
    dml_visibility_delay: float | None = None
    root_password: str | None = None
    #: The RisingWave version imitated ("2.3.0"): ``version()`` reports it, and statements that
    #: version rejects are rejected with its error text.
    version: str = DEFAULT_VERSION

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        return self.version_tuple >= (major, minor, patch)

    def version_string(self) -> str:
        # src/common/src/lib.rs current_cluster_version(): "PostgreSQL {PG_VERSION}-RisingWave-
        # {RW_VERSION} ({GIT_SHA})", GIT_SHA "unknown" when the build has none
        return f"PostgreSQL {SERVER_VERSION}-RisingWave-{self.version} (unknown)"


@dataclass
class Session:
    pid: int
    secret_key: int
    user: User
    database: str = DATABASE
    settings: dict[str, str] = field(default_factory=dict)
    background_ddl: bool = False
    implicit_flush: bool = False
    statement_timeout_ms: int = 0
    read_only_txn: bool = False


@dataclass
class Outcome:
    tag: str
    columns: list[tuple[str, int]] | None = None  # (name, type oid) for row-returning statements
    rows: Sequence[Sequence[str | None]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    job: Job | None = None  # the wire layer waits for it (foreground backfill, WAIT)
    wait_all: bool = False  # WAIT: wait for every background job
    parameter_status: dict[str, str] = field(default_factory=dict)
    empty: bool = False
    txn_status: str = "I"


StatementClass = Literal["empty", "dql", "ddl", "dml", "session"]

_SESSION_WORDS = ("set", "show", "reset", "begin", "start", "commit", "end", "rollback", "abort")


def classify(sql: str) -> StatementClass:
    """What kind of statement this is (statement_timeout applies to DQL only)."""
    try:
        tokens = tokenize(sql)
    except SqlError:
        return "ddl"
    if not tokens:
        return "empty"
    first = tokens[0].value if tokens[0].kind == "ident" else tokens[0].text
    if first in ("select", "with", "values", "(", "table"):
        return "dql"
    if first in ("insert", "delete", "update"):
        return "dml"
    if first in _SESSION_WORDS:
        return "session"
    return "ddl"


# ----------------------------------------------------------------------- catalog table layouts

B, I4, I8, V, TS = cat.OID_BOOL, cat.OID_INT4, cat.OID_INT8, cat.OID_VARCHAR, cat.OID_TIMESTAMPTZ
_TIMES = [("initialized_at", TS), ("created_at", TS)]
_VERSIONS = [("initialized_at_cluster_version", V), ("created_at_cluster_version", V)]

# docs/risingwave.md §11 (v2.x columns; `status` on MVs is v2.8+; no `schema_name` before v3.0)
RW_CATALOG: dict[str, list[tuple[str, int]]] = {
    "rw_schemas": [("id", I4), ("name", V), ("owner", I4), ("acl", V)],
    "rw_sources": [
        ("id", I4), ("name", V), ("schema_id", I4), ("owner", I4), ("connector", V), ("columns", V),
        ("format", V), ("row_encode", V), ("append_only", B), ("associated_table_id", I4),
        ("connection_id", I4), ("definition", V), ("acl", V), *_TIMES, *_VERSIONS, ("is_shared", B),
    ],
    "rw_materialized_views": [
        ("id", I4), ("name", V), ("schema_id", I4), ("owner", I4), ("definition", V),
        ("append_only", B), ("acl", V), *_TIMES, *_VERSIONS, ("background_ddl", B), ("status", V),
        ("schema_name", V),
    ],
    "rw_views": [("id", I4), ("name", V), ("schema_id", I4), ("owner", I4), ("definition", V), ("acl", V)],
    "rw_sinks": [
        ("id", I4), ("name", V), ("schema_id", I4), ("owner", I4), ("connector", V), ("sink_type", V),
        ("connection_id", I4), ("definition", V), ("target_table_name", V), ("acl", V), *_TIMES,
        *_VERSIONS, ("background_ddl", B),
    ],
    "rw_tables": [
        ("id", I4), ("name", V), ("schema_id", I4), ("owner", I4), ("definition", V),
        ("append_only", B), ("acl", V), *_TIMES, *_VERSIONS,
    ],
    "rw_secrets": [("id", I4), ("schema_id", I4), ("name", V), ("owner", I4), ("acl", V)],
    "rw_users": [
        ("id", I4), ("name", V), ("is_super", B), ("create_db", B), ("create_user", B),
        ("can_login", B), ("is_admin", B),
    ],
    # docs/risingwave.md §12
    "rw_ddl_progress": [
        ("ddl_id", I8), ("ddl_statement", V), ("create_type", V), ("progress", V), ("initialized_at", TS),
    ],
}  # fmt: skip
# docs/risingwave.md §11: pg_matviews is a view over rw_materialized_views; matviewowner is an int id
PG_CATALOG: dict[str, list[tuple[str, int]]] = {
    "pg_matviews": [
        ("schemaname", V), ("matviewname", V), ("matviewowner", I4), ("definition", V),
        ("hasindexes", B), ("ispopulated", B),
    ],
    "pg_namespace": [("oid", I4), ("nspname", V), ("nspowner", I4)],
    "pg_user": [("usename", V), ("usesysid", I4), ("usecreatedb", B), ("usesuper", B)],
}  # fmt: skip

_KIND_WORDS: dict[tuple[str, ...], str] = {
    ("materialized", "view"): MATERIALIZED_VIEW,
    ("view",): VIEW,
    ("source",): SOURCE,
    ("sink",): SINK,
    ("table",): TABLE,
    ("secret",): SECRET,
}
_KIND_TAG = {
    MATERIALIZED_VIEW: "MATERIALIZED_VIEW", VIEW: "VIEW", SOURCE: "SOURCE", SINK: "SINK",
    TABLE: "TABLE", SECRET: "SECRET", "schema": "SCHEMA", "user": "USER",
}  # fmt: skip


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(sep=" ")


class Engine:
    """Catalog-faithful statement execution for the double."""

    def __init__(self, config: EngineConfig | None = None, clock: Callable[[], float] = time.monotonic):
        self.config = config or EngineConfig()
        self.clock = clock
        self.catalog = Catalog()
        self.jobs: dict[int, Job] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # "latest" holds every write at once (row counts); "visible" is what reads see
        self.latest = sqlite3.connect(":memory:", check_same_thread=False)
        self.visible = sqlite3.connect(":memory:", check_same_thread=False)
        self.pending: list[tuple[float, str]] = []  # (written at, SQLite DML) not yet visible
        self._catalog_tables: dict[str, _CatalogTable] = {}
        #: Relations whose SQLite tables exist. A table is made on the first statement that reads
        #: or writes the relation: SQLite's CREATE TABLE scans its whole schema, so one table per
        #: relation made at CREATE time would make each DDL O(relations) in a large catalog.
        self._stored: set[int] = set()
        #: Catalog queries already translated, by their text with string literals taken out
        #: (None: that shape cannot be kept; see :meth:`_prepare`).
        self._prepared: dict[tuple[str, str], _PreparedQuery | None] = {}
        self._register_functions(self.visible)
        self._register_functions(self.latest)
        self._bootstrap()

    # ------------------------------------------------------------------ setup

    def _bootstrap(self) -> None:
        c = self.catalog
        # docs/risingwave.md §13: root, no password; RisingWave also ships a `postgres` superuser
        c.users[1] = User(1, "root", is_super=True, create_db=True, create_user=True)
        c.users[2] = User(2, "postgres", is_super=True, create_db=True, create_user=True)
        for sid, name in enumerate(("pg_catalog", "information_schema", "rw_catalog", "public"), start=1):
            c.add_schema(Schema(sid, name, 1))

    def _register_functions(self, db: sqlite3.Connection) -> None:
        db.create_function("rw_version", 0, lambda: self.config.version_string())
        db.create_function("current_database", 0, lambda: DATABASE)
        db.create_function("current_schema", 0, lambda: "public")

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    # ------------------------------------------------------------------ sessions

    def authenticate(self, user_name: str, database: str, password: str | None) -> User:
        if database != DATABASE:
            raise SqlError(f'database "{database}" does not exist', UNDEFINED_DATABASE, severity="FATAL")
        user = self.catalog.user_by_name(user_name)
        if user is None or not user.can_login:
            raise SqlError(
                f'role "{user_name}" does not exist or cannot log in',
                INVALID_AUTHORIZATION,
                severity="FATAL",
            )
        expected = self.config.root_password if user.name == "root" else user.password
        if expected is not None and password != expected:
            raise SqlError("Invalid password", INVALID_PASSWORD, severity="FATAL")
        return user

    def needs_password(self, user_name: str) -> bool:
        user = self.catalog.user_by_name(user_name)
        if user is None:
            return False
        expected = self.config.root_password if user.name == "root" else user.password
        return expected is not None

    # ------------------------------------------------------------------ dispatch

    def execute(self, session: Session, sql: str) -> Outcome:
        tokens = tokenize(sql)
        if not tokens:
            return Outcome("EMPTY", empty=True)
        c = Cursor(sql, tokens)
        first = tokens[0]
        word = first.value if first.kind == "ident" else first.text
        if session.read_only_txn and word not in ("select", "with", "show", "commit", "rollback", "end",
                                                  "abort", "set", "values", "("):  # fmt: skip
            # docs/risingwave.md §13: DDL, DML, GRANT/REVOKE/USER are rejected in a read-only transaction
            raise SqlError("Permission denied: only read-only statements are allowed in read-only mode")
        handler = {
            "create": self._create,
            "drop": self._drop,
            "alter": self._alter,
            "grant": self._grant,
            "revoke": self._grant,
            "insert": self._dml,
            "delete": self._dml,
            "update": self._dml,
            "show": self._show,
            "set": self._set,
            "reset": self._set,
            "flush": self._flush,
            "wait": self._wait,
            "begin": self._begin,
            "start": self._begin,
            "commit": self._commit,
            "end": self._commit,
            "rollback": self._commit,
            "abort": self._commit,
            "explain": self._explain,
            "cancel": self._cancel_jobs,
            "recover": lambda s, cur: Outcome("RECOVER"),
        }.get(word)
        if word in ("select", "with", "values", "(", "table"):
            return self._select(session, sql, tokens)
        if handler is None:
            raise parse_error(sql, first.start, f"expected statement, found: {first.text}")
        return handler(session, c)

    # ------------------------------------------------------------------ name resolution

    def _search_path(self, session: Session) -> list[str]:
        return [session.user.name, "public"]  # "$user", public

    def _schema_for(self, session: Session, name: Name, *, create: bool) -> tuple[Schema, str]:
        if len(name.parts) > 3:
            raise SqlError(f"improper qualified name (too many dotted names): {name}")
        if len(name.parts) == 3 and name.parts[0] != session.database:
            raise SqlError(f"database not found: {name.parts[0]}")
        if len(name.parts) >= 2:
            schema_name = name.parts[-2]
            schema = self.catalog.schema_by_name(schema_name)
            if schema is None:
                raise SqlError(f"schema not found: {schema_name}")
            return schema, name.name
        for schema_name in self._search_path(session):
            schema = self.catalog.schema_by_name(schema_name)
            if schema is None:
                continue
            if create or self.catalog.in_schema(schema.id, name.name, (*RELATION_KINDS, SECRET)):
                return schema, name.name
        schema = self.catalog.schema_by_name("public")
        assert schema is not None
        return schema, name.name

    def _lookup(self, session: Session, name: Name, kinds: tuple[str, ...]) -> Relation | None:
        schema, obj = self._schema_for(session, name, create=False)
        rel = self.catalog.in_schema(schema.id, obj, kinds)
        return rel if rel is not None and rel.visible else None

    def _queryable(self, session: Session, name: Name) -> Relation:
        try:
            rel = self._lookup(session, name, QUERYABLE_KINDS)
        except SqlError:
            rel = None
        if rel is None:
            # CatalogError::NotFound("table or source", name) (src/frontend/src/catalog/mod.rs)
            raise SqlError(f"table or source not found: {name}")
        return rel

    # ------------------------------------------------------------------ CREATE

    def _create(self, session: Session, c: Cursor, *, dry_run: bool = False) -> Outcome:
        c.expect_kw("create")
        if c.accept_kw("or", "replace"):
            # docs/risingwave.md §10: CREATE OR REPLACE [MATERIALIZED] VIEW is not implemented
            raise SqlError("Feature is not yet implemented: CREATE OR REPLACE", FEATURE_NOT_SUPPORTED)
        if c.accept_kw("schema"):
            return self._create_schema(session, c)
        if c.accept_kw("user"):
            return self._create_user(session, c)
        if c.accept_kw("materialized", "view"):
            return self._create_query_relation(session, c, MATERIALIZED_VIEW, dry_run=dry_run)
        if c.accept_kw("view"):
            return self._create_query_relation(session, c, VIEW, dry_run=dry_run)
        if c.accept_kw("sink"):
            return self._create_sink(session, c, dry_run=dry_run)
        if c.accept_kw("source"):
            return self._create_source_or_table(session, c, SOURCE)
        if c.accept_kw("table"):
            return self._create_source_or_table(session, c, TABLE)
        if c.accept_kw("secret"):
            return self._create_secret(session, c)
        tok = c.peek()
        raise not_supported_by_double(f"CREATE {tok.text.upper() if tok else ''}")

    def _if_not_exists(self, c: Cursor) -> tuple[bool, set[int]]:
        """Consume IF NOT EXISTS; return whether present and the token starts to drop (§11)."""
        if c.at_kw("if"):
            starts = {t.start for t in c.tokens[c.i : c.i + 3]}
            c.expect_kw("if", "not", "exists")
            return True, starts
        return False, set()

    def _existing_notice(self, existing_kind: str, name: str) -> Outcome:
        # docs/risingwave.md §9: IF NOT EXISTS keeps the existing object unchanged (definitions are not
        # compared). Notice wording as in PostgreSQL; UNCERTAIN for RisingWave.
        tag = _KIND_TAG.get(existing_kind, "RELATION")
        return Outcome(f"CREATE_{tag}", notices=[f'relation "{name}" already exists, skipping'])

    def _check_free(self, schema: Schema, name: str, kind: str, if_not_exists: bool) -> Outcome | None:
        kinds = (SECRET,) if kind == SECRET else RELATION_KINDS
        existing = self.catalog.in_schema(schema.id, name, kinds)
        if existing is None:
            return None
        if if_not_exists:
            return self._existing_notice(kind, name)
        # CatalogError::Duplicated (src/frontend/src/catalog/mod.rs): "{kind} with name {name} exists"
        suffix = " but under creation" if existing.status == "Creating" else ""
        raise SqlError(f"{existing.kind} with name {name} exists{suffix}")

    def _definition(self, c: Cursor, drop: set[int], refs_by_start: dict[int, int]) -> Printed:
        tokens = [t for t in c.tokens if t.start not in drop and not (t.kind == "punct" and t.text == ";")]
        refs = {i: refs_by_start[t.start] for i, t in enumerate(tokens) if t.start in refs_by_start}
        return reprint(tokens, refs)

    def _create_schema(self, session: Session, c: Cursor) -> Outcome:
        if_not_exists, _ = self._if_not_exists(c)
        name = c.name()
        owner = session.user
        if c.accept_kw("authorization"):
            owner_name = c.name().name
            found = self.catalog.user_by_name(owner_name)
            if found is None:
                raise SqlError(f"user not found: {owner_name}")
            owner = found
        self._expect_end(c)
        if len(name.parts) != 1:
            raise SqlError(f"database not found: {name.parts[0]}")
        if self.catalog.schema_by_name(name.name) is not None:
            if if_not_exists:
                # docs/risingwave.md §9 (IF NOT EXISTS on SCHEMA); notice wording UNCERTAIN
                return Outcome("CREATE_SCHEMA", notices=[f'schema "{name.name}" exists, skipping'])
            raise SqlError(f"schema with name {name.name} exists")
        sid = self.catalog.allocate_id()
        self.catalog.add_schema(Schema(sid, name.name, owner.id))
        return Outcome("CREATE_SCHEMA")

    def _create_user(self, session: Session, c: Cursor) -> Outcome:
        # docs/risingwave.md §8: CREATE USER has no IF NOT EXISTS; the parser takes IF as the name and
        # then fails on NOT.
        name_tok = c.next()
        if not name_tok.is_name:
            raise c.error("expected identifier")
        user_name = name_tok.value
        c.accept_kw("with")
        user = User(0, user_name, can_login=True)
        while not c.at_end() and not c.at_punct(";"):
            if c.accept_kw("superuser"):
                user.is_super = True
            elif c.accept_kw("nosuperuser"):
                user.is_super = False
            elif c.accept_kw("createdb"):
                user.create_db = True
            elif c.accept_kw("nocreatedb"):
                user.create_db = False
            elif c.accept_kw("createuser"):
                user.create_user = True
            elif c.accept_kw("nocreateuser"):
                user.create_user = False
            elif c.accept_kw("login"):
                user.can_login = True
            elif c.accept_kw("nologin"):
                user.can_login = False
            elif c.accept_kw("encrypted", "password") or c.accept_kw("password"):
                _reject_escape_string(c)
                tok = c.next()
                if tok.is_kw("null"):
                    user.password = None
                elif tok.kind == "string":
                    user.password = tok.value
                else:
                    raise c.error("expected a string literal")
            else:
                raise c.error("expected end of statement")
        if user_name == "rwadmin":  # docs/risingwave.md §8: reserved name (wording UNCERTAIN)
            raise SqlError('Permission denied: "rwadmin" is a reserved user name')
        if not session.user.is_super and not session.user.create_user:
            raise SqlError("Permission denied: Do not have the privilege")
        if self.catalog.user_by_name(user_name) is not None:
            raise SqlError(f"user with name {user_name} exists")
        user.id = self.catalog.allocate_id()
        self.catalog.users[user.id] = user
        return Outcome("CREATE_USER")

    def _create_secret(self, session: Session, c: Cursor) -> Outcome:
        # docs/risingwave.md §7: secrets are a premium feature; check_available() in create_secret.rs
        if not self.config.license:
            raise SqlError(LICENSE_ERROR)
        if_not_exists, _ = self._if_not_exists(c)
        name = c.name()
        c.expect_kw("with")
        options = parse_options(c)
        c.expect_kw("as")
        value_tok = c.next()
        if value_tok.kind != "string":
            raise c.error("expected a string literal")
        if value_tok.text[0] in "eE":
            raise SqlError(SECRET_QUOTE_ERROR)
        self._expect_end(c)
        schema, obj = self._schema_for(session, name, create=True)
        notice = self._check_free(schema, obj, SECRET, if_not_exists)
        if notice is not None:
            return notice
        backend = options.get("backend")
        if backend is not None and backend.value not in ("meta", "hashicorp_vault"):
            raise SqlError(f'secret backend "{backend.value}" is not supported')
        rid = self.catalog.allocate_id()
        # the secret's value never goes into its definition (rw_secrets has no definition column)
        printed = Printed(["CREATE SECRET ", rid, " WITH (...) AS '***'"])
        self.catalog.add(
            Relation(
                rid, SECRET, schema.id, obj, session.user.id, printed, options=options,
                secret_value=value_tok.value,
            )
        )  # fmt: skip
        return Outcome("CREATE_SECRET")

    def _secret_refs(
        self, session: Session, options: dict[str, OptionValue], refs_by_start: dict[int, int]
    ) -> list[int]:
        deps: list[int] = []
        for opt in options.values():
            if opt.secret is None:
                continue
            secret = self._lookup(session, opt.secret, (SECRET,))
            if secret is None:
                raise SqlError(f"secret not found: {opt.secret}")
            deps.append(secret.id)
            if opt.secret_start is not None:
                refs_by_start[opt.secret_start] = secret.id
        return deps

    def _create_source_or_table(self, session: Session, c: Cursor, kind: str) -> Outcome:
        if_not_exists, drop = self._if_not_exists(c)
        name_start = c.pos()
        name = c.name()
        columns: list[Column] = []
        primary_key: list[str] = []
        if c.at_punct("("):
            start, end = c.skip_parens()
            columns, primary_key = self._parse_columns(c, c.tokens[start:end])
        append_only = False
        options: dict[str, OptionValue] = {}
        fmt = enc = None
        format_options: dict[str, OptionValue] = {}
        while not c.at_end() and not c.at_punct(";"):
            if c.accept_kw("append", "only"):
                append_only = True
            elif c.accept_kw("on", "conflict"):
                while not c.at_end() and not c.at_kw("with", "format", "include"):
                    c.next()
            elif c.accept_kw("include"):
                col = c.next().value
                col_name = f"_rw_kafka_{col}"
                if c.accept_kw("as"):
                    col_name = c.next().value
                columns.append(Column(col_name, "varchar"))
            elif c.accept_kw("with"):
                options = parse_options(c)
            elif c.accept_kw("format"):
                fmt = c.next().value.upper()
                c.expect_kw("encode")
                enc = c.next().value.upper()
                if c.at_punct("("):
                    format_options = parse_options(c)
            else:
                raise c.error("expected end of statement")
        schema, obj = self._schema_for(session, name, create=True)
        notice = self._check_free(schema, obj, kind, if_not_exists)
        if notice is not None:
            return notice
        if kind == SOURCE and not options.get("connector"):
            raise SqlError("missing field `connector`")  # UNCERTAIN wording
        startup = options.get("scan.startup.mode")
        if startup is not None and startup.value.lower() not in ("earliest", "latest"):
            raise SqlError(STARTUP_MODE_ERROR)  # docs/risingwave.md §1
        rid = self.catalog.allocate_id()
        refs_by_start = {name_start: rid}
        deps = self._secret_refs(session, options, refs_by_start)
        rel = Relation(
            rid, kind, schema.id, obj, session.user.id, self._definition(c, drop, refs_by_start),
            depends_on=deps, columns=columns, options=options, format=fmt, encode=enc,
            format_options=format_options, primary_key=primary_key,
            # docs/risingwave.md §1/§6: a Kafka source is an append-only event stream
            append_only=append_only or kind == SOURCE,
        )  # fmt: skip
        self.catalog.add(rel)
        return Outcome(f"CREATE_{_KIND_TAG[kind]}")

    def _parse_columns(self, c: Cursor, tokens: Sequence[Token]) -> tuple[list[Column], list[str]]:
        columns: list[Column] = []
        primary_key: list[str] = []
        for group in split_top_level(tokens):
            sub = Cursor(c.sql, group)
            if sub.accept_kw("watermark", "for"):  # docs/risingwave.md §2
                col = sub.next().value
                if not any(x.name == col for x in columns):
                    raise SqlError(f"The watermark column {col} does not exist")  # UNCERTAIN wording
                continue
            if sub.accept_kw("primary", "key"):
                start, end = sub.skip_parens()
                primary_key = [t.value for t in sub.tokens[start:end] if t.is_name]
                continue
            if sub.at_kw("constraint"):
                continue
            col_name = sub.next().value
            type_words: list[str] = []
            while not sub.at_end():
                tok = sub.peek()
                assert tok is not None
                if tok.is_kw("primary"):
                    sub.expect_kw("primary", "key")
                    primary_key = [col_name]
                    continue
                if tok.is_kw("not", "null", "default", "as"):
                    break
                type_words.append(sub.next().text.lower())
            columns.append(Column(col_name, " ".join(type_words) or "varchar"))
        return columns, primary_key

    def _create_query_relation(self, session: Session, c: Cursor, kind: str, *, dry_run: bool) -> Outcome:
        if_not_exists, drop = self._if_not_exists(c)
        name_start = c.pos()
        name = c.name()
        if c.at_punct("("):
            c.skip_parens()  # explicit column names: accepted, not modelled
        c.expect_kw("as")
        query = c.rest_text().rstrip(";").strip()
        query_start = c.i
        schema, obj = self._schema_for(session, name, create=True)
        notice = self._check_free(schema, obj, kind, if_not_exists)
        if notice is not None:
            return notice
        # docs/risingwave.md §4: MVs are streaming queries; a plain view is validated as a batch plan
        version = self.config.version_tuple
        analysis = analyze_query(query, streaming=kind == MATERIALIZED_VIEW, version=version)
        deps = [self._queryable(session, n) for n in analysis.relations]
        if dry_run:
            return Outcome("EXPLAIN")
        rid = self.catalog.allocate_id()
        refs_by_start = {name_start: rid}
        self._bind_query_refs(session, c.tokens[query_start:], deps, refs_by_start)
        rel = Relation(
            rid, kind, schema.id, obj, session.user.id, self._definition(c, drop, refs_by_start),
            depends_on=_unique([d.id for d in deps]),
            columns=self._output_columns(analysis.output_columns, deps),
            append_only=kind == MATERIALIZED_VIEW and self._query_append_only(query, deps),
        )  # fmt: skip
        self.catalog.add(rel)
        tag = f"CREATE_{_KIND_TAG[kind]}"
        if kind == MATERIALIZED_VIEW:
            return self._maybe_backfill(session, rel, tag)
        return Outcome(tag)

    def _bind_query_refs(
        self, session: Session, tokens: Sequence[Token], deps: Sequence[Relation], refs: dict[int, int]
    ) -> None:
        dep_ids = {d.id for d in deps}
        for ref in find_relation_refs(tokens):
            try:
                rel = self._lookup(session, ref.name, QUERYABLE_KINDS)
            except SqlError:
                continue
            if rel is not None and rel.id in dep_ids:
                refs[tokens[ref.index].start] = rel.id

    def _output_columns(self, names: list[str], deps: Sequence[Relation]) -> list[Column]:
        out: list[Column] = []
        for n in names:
            if n == "*":
                for dep in deps[:1]:
                    out.extend(Column(col.name, col.type_name) for col in dep.columns)
            else:
                out.append(Column(n, "varchar"))
        seen: set[str] = set()
        unique: list[Column] = []
        for col in out:
            if col.name not in seen:
                seen.add(col.name)
                unique.append(col)
        return unique

    def _query_append_only(self, query: str, deps: Sequence[Relation]) -> bool:
        """Whether a streaming query's output is append-only (docs/risingwave.md §4, §6).

        Aggregations, joins, DISTINCT, window functions and temporal filters are not; a plain
        filter or projection over append-only inputs is.
        """
        if not all(d.append_only for d in deps):
            return False
        try:
            tree = sqlglot.parse_one(re.sub(r"(?i)\s+EMIT\s+ON\s+WINDOW\s+CLOSE\s*$", "", query),
                                     read="risingwave")  # fmt: skip
        except (ParseError, TokenError, ValueError):
            return False
        blockers = (exp.Group, exp.AggFunc, exp.Join, exp.Distinct, exp.Window, exp.CurrentTimestamp)
        return not any(isinstance(n, blockers) for n in tree.walk())

    def _maybe_backfill(self, session: Session, rel: Relation, tag: str) -> Outcome:
        """docs/risingwave.md §12: foreground CREATE blocks until backfill completes; background returns."""
        cfg = self.config
        if cfg.backfill_seconds is None and cfg.backfill_polls is None:
            return Outcome(tag)
        background = session.background_ddl
        if background and rel.kind == SINK:
            return Outcome(tag)  # docs/risingwave.md §12: background sinks are marked created at once
        assert self._loop is not None, "backfill needs the double's event loop"
        job = Job(
            rel.id, "BACKGROUND" if background else "FOREGROUND", self.clock(), cfg.backfill_seconds,
            cfg.backfill_polls, asyncio.Event(),
        )  # fmt: skip
        rel.status, rel.create_type, rel.job = "Creating", job.create_type, job
        self.jobs[rel.id] = job
        if cfg.backfill_seconds is not None:
            self._loop.call_later(cfg.backfill_seconds, self.complete_job, job)
        return Outcome(tag, job=None if background else job)

    def complete_job(self, job: Job) -> None:
        if job.done.is_set():
            return
        rel = self.catalog.relations.get(job.object_id)
        if rel is not None:
            rel.status, rel.job = "Created", None
        self.jobs.pop(job.object_id, None)
        job.done.set()

    def cancel_job(self, job: Job, reason: str) -> None:
        """Cancel a creating job: the half-built object is removed (docs/risingwave.md §12)."""
        if job.done.is_set():
            return
        job.cancelled, job.cancel_reason = True, reason
        rel = self.catalog.relations.get(job.object_id)
        if rel is not None:
            self._drop_relation(rel)
        self.jobs.pop(job.object_id, None)
        job.done.set()

    def _create_sink(self, session: Session, c: Cursor, *, dry_run: bool) -> Outcome:
        if_not_exists, drop = self._if_not_exists(c)
        name_start = c.pos()
        name = c.name()
        if c.accept_kw("into"):
            raise not_supported_by_double("CREATE SINK ... INTO")
        refs_by_start: dict[int, int] = {}
        deps: list[Relation]
        query: str | None = None
        query_tokens: list[Token] = []
        if c.accept_kw("from"):
            # docs/risingwave.md §6: FROM takes an object name only; FROM (SELECT ...) is a syntax error
            if not (tok := c.peek()) or not tok.is_name:
                raise c.error("expected identifier")
            from_start = c.pos()
            from_name = c.name()
            source_rel = self._queryable(session, from_name)
            deps = [source_rel]
            refs_by_start[from_start] = source_rel.id
        elif c.accept_kw("as"):
            start = c.i
            depth = 0
            while not c.at_end():
                tok = c.peek()
                assert tok is not None
                nxt = c.peek(1)
                if tok.kind == "punct" and tok.text == "(":
                    depth += 1
                elif tok.kind == "punct" and tok.text == ")":
                    depth -= 1
                elif depth == 0 and tok.is_kw("with") and nxt is not None and nxt.text == "(":
                    break
                c.next()
            query_tokens = list(c.tokens[start : c.i])
            if not query_tokens:
                raise c.error("expected a query")
            query = c.sql[query_tokens[0].start : query_tokens[-1].end]
            # docs/risingwave.md §4
            analysis = analyze_query(query, streaming=True, version=self.config.version_tuple)
            deps = [self._queryable(session, n) for n in analysis.relations]
        else:
            raise c.error("expected FROM or AS")
        if not c.accept_kw("with"):
            raise c.error("expected WITH")
        options = parse_options(c)
        fmt = enc = None
        format_options: dict[str, OptionValue] = {}
        if c.accept_kw("format"):
            fmt = c.next().value.upper()
            c.expect_kw("encode")
            enc = c.next().value.upper()
            if c.at_punct("("):
                format_options = parse_options(c)
            if c.accept_kw("key", "encode"):
                c.next()
        self._expect_end(c)
        schema, obj = self._schema_for(session, name, create=True)
        notice = self._check_free(schema, obj, SINK, if_not_exists)
        if notice is not None:
            return notice
        self._validate_sink(options, fmt, format_options, query, deps)
        if dry_run:
            return Outcome("EXPLAIN")
        rid = self.catalog.allocate_id()
        refs_by_start[name_start] = rid
        secret_deps = self._secret_refs(session, options, refs_by_start)
        if query_tokens:
            self._bind_query_refs(session, query_tokens, deps, refs_by_start)
        rel = Relation(
            rid, SINK, schema.id, obj, session.user.id, self._definition(c, drop, refs_by_start),
            depends_on=_unique([d.id for d in deps] + secret_deps), options=options, format=fmt,
            encode=enc, format_options=format_options,
        )  # fmt: skip
        self.catalog.add(rel)
        return self._maybe_backfill(session, rel, "CREATE_SINK")

    def _validate_sink(
        self,
        options: dict[str, OptionValue],
        fmt: str | None,
        format_options: dict[str, OptionValue],
        query: str | None,
        deps: Sequence[Relation],
    ) -> None:
        connector = options.get("connector")
        if connector is None:
            raise SqlError("missing field `connector`")  # UNCERTAIN wording
        legacy_type = options.get("type")
        if connector.value == "kafka":
            # docs/risingwave.md §6: Kafka needs FORMAT ... ENCODE ... or the legacy type=
            if fmt is None and legacy_type is None:
                raise SqlError("missing FORMAT ... ENCODE ...")
            for required in ("topic", "properties.bootstrap.server"):
                if required not in options:
                    raise SqlError(f"missing field `{required}`")  # UNCERTAIN wording
        if connector.value == "jdbc" and not self.config.at_least(2, 3):
            for unknown in ("user", "password"):
                if unknown in options:
                    raise SqlError(JDBC_UNKNOWN_FIELD_ERROR.format(field=unknown))
        if connector.value in ("jdbc", "postgres"):
            # docs/risingwave.md §6: type append-only|upsert; upsert needs primary_key
            if legacy_type is None:
                raise SqlError("missing field `type`")
            if legacy_type.value == "upsert" and "primary_key" not in options:
                raise SqlError("primary_key is required for upsert sink")  # UNCERTAIN wording
        upstream_append_only = (
            self._query_append_only(query, deps) if query is not None else all(d.append_only for d in deps)
        )
        force = format_options.get("force_append_only") or format_options.get("ignore_delete")
        wants_append_only = fmt == "PLAIN" or (legacy_type is not None and legacy_type.value == "append-only")
        if wants_append_only and not upstream_append_only:
            forced = force is not None and force.value.lower() == "true"
            legacy_force = options.get("force_append_only")
            if fmt is None and legacy_force is not None and legacy_force.value.lower() == "true":
                forced = True
            if not forced:
                # docs/risingwave.md §6: force_append_only goes inside ENCODE JSON (...), not WITH
                raise SqlError(APPEND_ONLY_ERROR.format(where="FORMAT ENCODE" if fmt else "WITH"))

    # ------------------------------------------------------------------ DROP

    def _drop(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("drop")
        if c.accept_kw("schema"):
            return self._drop_schema(session, c)
        if c.accept_kw("user"):
            return self._drop_user(session, c)
        kind = self._kind(c)
        if_exists = c.accept_kw("if", "exists")
        name = c.name()
        if c.at_punct(","):
            raise c.error("expected end of statement")
        cascade = c.accept_kw("cascade")
        if kind == SECRET and cascade:
            # docs/risingwave.md §7: DROP SECRET ... CASCADE only from v3.0 (the double models v2.x)
            raise c.error("expected end of statement")
        c.accept_kw("restrict")
        self._expect_end(c)
        if kind == SECRET and not self.config.license:
            raise SqlError(LICENSE_ERROR)  # docs/risingwave.md §7: drop_secret.rs checks the license too
        tag = f"DROP_{_KIND_TAG[kind]}"
        try:
            schema, obj = self._schema_for(session, name, create=False)
        except SqlError:
            if if_exists:
                return Outcome(tag, notices=[f'{kind} "{name}" does not exist, skipping'])
            raise
        kinds = (SECRET,) if kind == SECRET else RELATION_KINDS
        rel = self.catalog.in_schema(schema.id, obj, kinds)
        if rel is None:
            if if_exists:
                return Outcome(tag, notices=[f'{kind} "{name}" does not exist, skipping'])
            raise SqlError(f"{kind} not found: {name}")  # CatalogError::NotFound
        if rel.kind != kind:
            # UNCERTAIN wording (RisingWave suggests the right DROP statement)
            raise SqlError(f"{obj} is not a {kind}. Use `DROP {rel.kind.upper()}` to drop a {rel.kind}.")
        dependents = self.catalog.dependents(rel.id)
        if dependents and not cascade:
            raise self._used_by_error(rel, dependents)
        for victim in self._cascade_order(rel):
            self._drop_relation(victim)
        return Outcome(tag)

    def _used_by_error(self, rel: Relation, dependents: list[Relation]) -> SqlError:
        # docs/risingwave.md §9 (text built in src/meta/src/controller/utils.rs); DETAIL/HINT are lines
        # of the message, not separate protocol fields.
        lines = [f"Permission denied: {rel.kind} used by {len(dependents)} other objects."]
        lines += [f"DETAIL: {d.kind} {self.catalog.qualified(d)} depends on it" for d in dependents]
        lines.append(DROP_FIRST_HINT if rel.kind == SECRET else DROP_CASCADE_HINT)
        return SqlError("\n".join(lines))

    def _cascade_order(self, rel: Relation) -> list[Relation]:
        """rel and everything depending on it, dependents first (docs/risingwave.md §9: CASCADE)."""
        order: list[Relation] = []
        seen: set[int] = set()

        def visit(r: Relation) -> None:
            if r.id in seen:
                return
            seen.add(r.id)
            for d in self.catalog.dependents(r.id):
                visit(d)
            order.append(r)

        visit(rel)
        return order

    def _drop_relation(self, rel: Relation) -> None:
        job = self.jobs.pop(rel.id, None)
        if job is not None and not job.done.is_set():
            # docs/risingwave.md §12: dropping a creating MV/sink cancels its job
            job.cancelled, job.cancel_reason = True, f"{rel.kind} {rel.name} was dropped"
            job.done.set()
        self.catalog.drop(rel.id)
        self.catalog.grants = [g for g in self.catalog.grants if g.object_id != rel.id]
        if rel.id in self._stored:
            self._stored.discard(rel.id)
            table = rel.sqlite_table
            for db in (self.latest, self.visible):
                db.execute(f'DROP TABLE IF EXISTS "{table}"')
            self.pending = [(t, s) for (t, s) in self.pending if f'"{table}"' not in s]

    def _drop_schema(self, session: Session, c: Cursor) -> Outcome:
        if_exists = c.accept_kw("if", "exists")
        name = c.name()
        cascade = c.accept_kw("cascade")  # docs/risingwave.md §8: CASCADE since v2.3
        c.accept_kw("restrict")
        self._expect_end(c)
        schema = self.catalog.schema_by_name(name.name)
        if schema is None:
            if if_exists:
                return Outcome("DROP_SCHEMA", notices=[f'schema "{name.name}" does not exist, skipping'])
            raise SqlError(f"schema not found: {name.name}")
        if schema.name in cat.SYSTEM_SCHEMAS:
            raise SqlError(f"cannot drop schema {schema.name} because it is required by the database system")
        members = [r for r in self.catalog.relations.values() if r.schema_id == schema.id]
        if members and not cascade:
            # src/frontend/src/handler/drop_schema.rs CatalogError::NotEmpty; UNCERTAIN for v2.x
            first = members[0]
            raise SqlError(f"cannot drop schema {schema.name} because {first.kind} {first.name} depend on it")
        for rel in members:
            if rel.id in self.catalog.relations:
                for victim in self._cascade_order(rel):
                    self._drop_relation(victim)
        self.catalog.grants = [
            g for g in self.catalog.grants if not (g.object_kind == "schema" and g.object_id == schema.id)
        ]
        self.catalog.drop_schema(schema.id)
        return Outcome("DROP_SCHEMA")

    def _drop_user(self, session: Session, c: Cursor) -> Outcome:
        if_exists = c.accept_kw("if", "exists")
        user_name = c.name().name
        self._expect_end(c)
        user = self.catalog.user_by_name(user_name)
        if user is None:
            if if_exists:
                return Outcome("DROP_USER", notices=[f'user "{user_name}" does not exist, skipping'])
            raise SqlError(f"user not found: {user_name}")
        if user.id in (1, 2) or user.id == session.user.id:
            raise SqlError(f"Permission denied: cannot drop user {user_name}")
        owned = [r for r in self.catalog.relations.values() if r.owner == user.id]
        owned_schemas = [s for s in self.catalog.schemas.values() if s.owner == user.id]
        if owned or owned_schemas:
            raise SqlError(f"Permission denied: User {user_name} cannot be dropped because some objects "
                           "depend on it")  # fmt: skip  # UNCERTAIN wording
        self.catalog.grants = [g for g in self.catalog.grants if g.user_id != user.id]
        del self.catalog.users[user.id]
        return Outcome("DROP_USER")

    def _kind(self, c: Cursor) -> str:
        for words, kind in _KIND_WORDS.items():
            if c.accept_kw(*words):
                return kind
        tok = c.peek()
        if tok is not None and tok.is_kw("index", "connection", "function", "subscription", "database"):
            raise not_supported_by_double(f"{tok.text.upper()} objects")
        raise c.error("expected an object type")

    # ------------------------------------------------------------------ ALTER

    def _alter(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("alter")
        if c.accept_kw("system", "set"):
            key = c.next().value
            c.accept_op("=") or c.accept_kw("to")
            value = c.next()
            if key == "license_key":  # docs/risingwave.md §7 (hint in the license error)
                self.config.license = bool(value.value)
            return Outcome("ALTER_SYSTEM")
        if c.accept_kw("user"):
            user = self.catalog.user_by_name(c.name().name)
            if user is None:
                raise SqlError("user not found")
            c.accept_kw("with")
            if c.accept_kw("password"):
                _reject_escape_string(c)
                tok = c.next()
                user.password = None if tok.is_kw("null") else tok.value
            elif c.accept_kw("rename", "to"):
                user.name = c.name().name
            self._expect_end(c)
            return Outcome("ALTER_USER")
        if c.at_kw("secret"):
            return self._alter_secret(session, c)
        kind = self._kind(c)
        name = c.name()
        rel = self._lookup(session, name, (kind,))
        if rel is None:
            raise SqlError(f"{kind} not found: {name}")
        tag = f"ALTER_{_KIND_TAG[kind]}"
        if kind == SOURCE and c.at_kw("connector"):
            return self._alter_source_connector(rel, c, tag)
        if c.accept_kw("swap", "with"):
            # docs/risingwave.md §10: SWAP WITH (v2.1+, §0) for table, MV, view, source, sink; same kind
            other_name = c.name()
            self._expect_end(c)
            other = self._lookup(session, other_name, (kind,))
            if other is None:
                raise SqlError(f"{kind} not found: {other_name}")
            # Only the names move. Dependents keep pointing at the same object ids, so their
            # definitions now name the other object (docs/risingwave.md §10, §11: definitions are
            # rewritten on renames).
            (rel_schema, rel_name), (other_schema, other_name_now) = (
                (rel.schema_id, rel.name),
                (other.schema_id, other.name),
            )
            self.catalog.move(rel, other_schema, other_name_now)
            self.catalog.move(other, rel_schema, rel_name)
            return Outcome(tag)
        if c.accept_kw("rename", "to"):
            new_name = c.name()
            self._expect_end(c)
            schema = self.catalog.schemas[rel.schema_id]
            self._check_free(schema, new_name.name, kind, if_not_exists=False)
            # dependents' definitions follow (docs/risingwave.md §11)
            self.catalog.move(rel, rel.schema_id, new_name.name)
            return Outcome(tag)
        if c.accept_kw("owner", "to"):
            user = self.catalog.user_by_name(c.name().name)
            if user is None:
                raise SqlError("user not found")
            rel.owner = user.id
            return Outcome(tag)
        if c.accept_kw("as"):
            # docs/risingwave.md §10: ALTER MATERIALIZED VIEW ... AS is rejected in release builds
            raise SqlError(
                "Feature is not yet implemented: ALTER MATERIALIZED VIEW AS", FEATURE_NOT_SUPPORTED
            )
        if c.accept_kw("set"):
            while not c.at_end():
                c.next()
            return Outcome(tag)  # SET PARALLELISM / rate limits: accepted, not modelled
        raise not_supported_by_double(f"ALTER {kind.upper()} {c.rest_text()[:20]}")

    def _alter_source_connector(self, rel: Relation, c: Cursor, tag: str) -> Outcome:
        """``ALTER SOURCE s CONNECTOR WITH (k = v, ...)``, from v2.6.0
        (https://docs.risingwave.com/sql/commands/sql-alter-source): changes allow-listed Kafka
        properties of a running source in place. Before v2.6.0 the parser has no CONNECTOR here."""
        if not self.config.at_least(2, 6):
            raise c.error("expected RENAME, OWNER TO, SET, ADD COLUMN, REFRESH SCHEMA or SWAP WITH")
        c.expect_kw("connector")
        c.expect_kw("with")
        changes = parse_options(c)
        self._expect_end(c)
        refused = sorted(k for k in changes if k not in ALTERABLE_SOURCE_PROPERTIES)
        if refused:
            # UNCERTAIN wording; the allow-list (properties.sasl.*, security.protocol, librdkafka
            # tuning keys) is in the docs page above
            raise SqlError(f"Invalid connector properties: {', '.join(refused)} cannot be altered")
        rel.options = {**rel.options, **changes}
        return Outcome(tag)

    def _alter_secret(self, session: Session, c: Cursor) -> Outcome:
        """docs/risingwave.md §7: ALTER SECRET exists; the value changes in place.

        The license check is assumed to apply as for CREATE/DROP SECRET (UNCERTAIN).
        """
        c.expect_kw("secret")
        if not self.config.license:
            raise SqlError(LICENSE_ERROR)
        name = c.name()
        secret = self._lookup(session, name, (SECRET,))
        if secret is None:
            raise SqlError(f"secret not found: {name}")
        if c.accept_kw("with"):
            secret.options = parse_options(c)
        c.expect_kw("as")
        value = c.next()
        if value.kind != "string":
            raise c.error("expected a string literal")
        if value.text[0] in "eE":
            raise SqlError(SECRET_QUOTE_ERROR)  # same handler check as CREATE SECRET
        self._expect_end(c)
        secret.secret_value = value.value
        return Outcome("ALTER_SECRET")

    # ------------------------------------------------------------------ GRANT / REVOKE

    def _grant(self, session: Session, c: Cursor) -> Outcome:
        revoke = c.next().is_kw("revoke")
        if revoke:
            c.accept_kw("grant", "option", "for")
        privileges: list[str] = []
        while True:
            if c.accept_kw("all"):
                c.accept_kw("privileges")
                privileges.append("ALL")
            else:
                privileges.append(c.next().value.upper())
            if not c.accept_punct(","):
                break
        c.expect_kw("on")
        targets = self._grant_targets(session, c)
        c.expect_kw("from" if revoke else "to")
        users: list[User] = []
        while True:
            user_name = c.name().name
            user = self.catalog.user_by_name(user_name)
            if user is None:
                raise SqlError(f"user not found: {user_name}")  # UNCERTAIN wording
            users.append(user)
            if not c.accept_punct(","):
                break
        c.accept_kw("with", "grant", "option")
        if c.accept_kw("granted", "by"):
            c.name()
        c.accept_kw("cascade") or c.accept_kw("restrict")
        self._expect_end(c)
        for user in users:
            for object_kind, object_id in targets:
                for privilege in privileges:
                    if revoke:
                        self.catalog.grants = [
                            g
                            for g in self.catalog.grants
                            if not (
                                g.user_id == user.id
                                and g.object_id == object_id
                                and g.object_kind == object_kind
                                and privilege in (g.privilege, "ALL")
                            )
                        ]
                    elif not any(
                        g.user_id == user.id and g.object_id == object_id and g.privilege == privilege
                        for g in self.catalog.grants
                    ):
                        self.catalog.grants.append(
                            Grant(user.id, privilege, object_kind, object_id, session.user.id)
                        )
        return Outcome("REVOKE_PRIVILEGE" if revoke else "GRANT_PRIVILEGE")

    def _grant_targets(self, session: Session, c: Cursor) -> list[tuple[str, int]]:
        """docs/risingwave.md §8 GRANT forms. ALL ... IN SCHEMA covers the objects existing *now*."""
        if c.accept_kw("schema"):
            out = []
            while True:
                schema_name = c.name().name
                schema = self.catalog.schema_by_name(schema_name)
                if schema is None:
                    raise SqlError(f"schema not found: {schema_name}")
                out.append(("schema", schema.id))
                if not c.accept_punct(","):
                    return out
        if c.accept_kw("database"):
            c.name()
            return [("database", 0)]
        if c.accept_kw("all"):
            plural = {
                ("tables",): TABLE, ("materialized", "views"): MATERIALIZED_VIEW, ("sources",): SOURCE,
                ("sinks",): SINK, ("views",): VIEW,
            }  # fmt: skip
            if c.at_kw("views") and not self.config.at_least(2, 3):
                # the v2.2 parser knows no ALL VIEWS and takes ALL as ALL PRIVILEGES' object
                # list end (PR #20670 added it, https://github.com/risingwavelabs/risingwave/pull/20670)
                raise c.error("expected TO")
            for words, kind in plural.items():
                if c.accept_kw(*words):
                    c.expect_kw("in", "schema")
                    schema_name = c.name().name
                    schema = self.catalog.schema_by_name(schema_name)
                    if schema is None:
                        raise SqlError(f"schema not found: {schema_name}")
                    return [
                        (kind, r.id)
                        for r in self.catalog.relations.values()
                        if r.schema_id == schema.id and r.kind == kind and r.visible
                    ]
            raise c.error("expected TABLES, MATERIALIZED VIEWS, SOURCES, SINKS or VIEWS")
        kind = TABLE
        for words, k in _KIND_WORDS.items():
            if c.accept_kw(*words):
                kind = k
                break
        out = []
        while True:
            name = c.name()
            rel = self._lookup(session, name, (kind,))
            if rel is None:
                raise SqlError(f"{kind} not found: {name}")
            out.append((kind, rel.id))
            if not c.accept_punct(","):
                return out

    # ------------------------------------------------------------------ DML

    def _dml(self, session: Session, c: Cursor) -> Outcome:
        sql = c.sql
        try:
            tree = sqlglot.parse_one(sql, read="risingwave")
        except (ParseError, TokenError) as e:
            raise parse_error(sql, 0, str(e).splitlines()[0]) from None
        table_node = tree.this
        if isinstance(table_node, exp.Schema):
            table_node = table_node.this
        if not isinstance(table_node, exp.Table):
            raise not_supported_by_double("this DML shape")
        name = _table_name(table_node)
        rel = self._lookup(session, name, RELATION_KINDS)
        if rel is None:
            raise SqlError(f"table not found: {name}")
        if rel.kind != TABLE:
            raise SqlError(f"cannot modify {rel.kind} {name}: only tables accept DML")  # UNCERTAIN
        self._map_tables(session, tree, skip=table_node)
        _retarget(table_node, self._stored_table(rel))
        if isinstance(tree, exp.Insert) and rel.primary_key:
            # a row with an existing primary key overwrites the old one (RisingWave docs,
            # https://docs.risingwave.com/sql/commands/sql-create-table, "Notes")
            tree.set("alternative", "REPLACE")
        sqlite_sql = tree.sql(dialect="sqlite")
        try:
            cursor = self.latest.execute(sqlite_sql)
        except sqlite3.Error as e:
            raise SqlError(f"RisingWave double: DML failed: {e}") from None
        count = max(cursor.rowcount, 0)
        self.pending.append((self.clock(), sqlite_sql))
        if session.implicit_flush:
            self._apply_pending(everything=True)
        tag = {exp.Insert: f"INSERT 0 {count}", exp.Delete: f"DELETE {count}"}.get(
            type(tree), f"UPDATE {count}"
        )
        return Outcome(tag)

    def _apply_pending(self, *, everything: bool) -> None:
        delay = self.config.dml_visibility_delay
        now = self.clock()
        keep: list[tuple[float, str]] = []
        for i, (written, stmt) in enumerate(self.pending):
            if everything or (delay is not None and now - written >= delay):
                self.visible.execute(stmt)
            else:
                keep = self.pending[i:]
                break
        self.pending = keep

    def _flush(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("flush")
        self._expect_end(c)
        self._apply_pending(everything=True)
        return Outcome("FLUSH")

    # ------------------------------------------------------------------ queries

    def _select(self, session: Session, sql: str, tokens: Sequence[Token]) -> Outcome:
        shape, literals = _shape(sql, tokens)
        key = (shape, self.config.version)
        prepared = self._prepared.get(key)
        if prepared is not None:
            self._apply_pending(everything=False)
            self._refresh_catalog(session, set(prepared.tables))
            return self._query(prepared.sqlite, [literals[i] for i in prepared.order], prepared.types)
        tree = self._parse_query(sql)
        self._apply_pending(everything=False)
        mapped = self._map_tables(session, tree)
        tree = tree.transform(_portable_functions)
        outcome = self._query(tree.sql(dialect="sqlite"), (), mapped.types)
        if key not in self._prepared and mapped.catalog_only:
            self._prepared[key] = self._prepare(session, shape, literals, outcome)
        return outcome

    @staticmethod
    def _parse_query(sql: str) -> exp.Expression:
        try:
            return sqlglot.parse_one(sql, read="risingwave")
        except (ParseError, TokenError) as e:
            raise parse_error(sql, 0, str(e).splitlines()[0]) from None

    def _prepare(
        self, session: Session, shape: str, literals: Sequence[str], outcome: Outcome
    ) -> _PreparedQuery | None:
        """A catalog query's translation with its literals as parameters, kept only if it
        answers exactly as the query did.

        The operator's catalog reads are few queries that differ only in the schema names they
        list; parsing and translating each again cost the double more than the read itself
        (RisingWave answers them from its in-memory catalog). A literal that the translation
        does not carry through as one value (or that names the result's column) is not a
        parameter: such a shape is not kept.
        """
        tree = self._parse_query(shape).transform(_portable_functions)
        mapped = self._map_tables(session, tree, refresh=False)
        order: list[int] = []

        def parameter(m: re.Match[str]) -> str:
            order.append(int(m.group(1)))
            return "?"

        text = _MARKER_RE.sub(parameter, tree.sql(dialect="sqlite"))
        if sorted(set(order)) != list(range(len(literals))):
            return None
        prepared = _PreparedQuery(text, tuple(order), frozenset(mapped.catalog_tables), mapped.types)
        again = self._query(prepared.sqlite, [literals[i] for i in prepared.order], prepared.types)
        same = again.columns == outcome.columns and again.rows == outcome.rows
        return prepared if same else None

    def _query(self, sqlite_sql: str, parameters: Sequence[str], types: dict[str, int]) -> Outcome:
        try:
            cursor = self.visible.execute(sqlite_sql, parameters)
        except sqlite3.Error as e:
            missing = re.match(r"no such column: (?:\w+\.)?(\w+)", str(e))
            absent = set().union(*(self._absent_columns(t) for t in VERSIONED_COLUMNS))
            if missing is not None and missing.group(1) in absent:
                raise SqlError(INVALID_COLUMN_ERROR.format(name=missing.group(1))) from None
            raise SqlError(f"RisingWave double: query failed: {e}") from None
        names = [d[0] for d in cursor.description or []]
        raw = cursor.fetchall()
        oids = [types.get(n) or _infer_oid(row[i] for row in raw) for i, n in enumerate(names)]
        rows = [[_encode(v, oid) for v, oid in zip(row, oids, strict=True)] for row in raw]
        return Outcome(f"SELECT {len(rows)}", columns=list(zip(names, oids, strict=True)), rows=rows)

    def _map_tables(
        self,
        session: Session,
        tree: exp.Expression,
        skip: exp.Expression | None = None,
        *,
        refresh: bool = True,
    ) -> _TableMap:
        """Point every table reference at its SQLite table; refresh catalog tables it reads
        (unless ``refresh`` is false: a read of ``rw_ddl_progress`` counts as a poll of jobs)."""
        ctes = {_ident(cte.args["alias"].this) for cte in tree.find_all(exp.CTE) if cte.args.get("alias")}
        types: dict[str, int] = {}
        catalog_reads: set[str] = set()
        targets: list[tuple[exp.Table, str]] = []
        for table in tree.find_all(exp.Table):
            if table is skip:
                continue
            if not isinstance(table.this, exp.Identifier):
                raise not_supported_by_double("table functions in ad-hoc queries")
            name = _table_name(table)
            if len(name.parts) == 1 and name.name in ctes:
                continue
            system = self._system_table(name)
            if system is not None:
                catalog_reads.add(system)
                layout = {**RW_CATALOG, **PG_CATALOG}[system.split("__", 1)[1]]
                types.update(dict(layout))
                targets.append((table, system))
                continue
            rel = self._queryable(session, name)
            types.update({col.name: col.oid for col in rel.columns})
            targets.append((table, self._stored_table(rel)))
        if catalog_reads and refresh:
            self._refresh_catalog(session, catalog_reads)
        for table, target in targets:
            _retarget(table, target)
        return _TableMap(types, catalog_reads, catalog_only=all(t.startswith(_SYSTEM) for _, t in targets))

    def _system_table(self, name: Name) -> str | None:
        schema = name.schema
        if name.name in RW_CATALOG and schema in (None, "rw_catalog"):
            return f"{_SYSTEM[0]}{name.name}"
        if name.name in PG_CATALOG and schema in (None, "pg_catalog"):
            return f"{_SYSTEM[1]}{name.name}"
        return None

    def _absent_columns(self, table: str) -> set[str]:
        """Columns of ``table`` the imitated version does not have yet."""
        since = VERSIONED_COLUMNS.get(table, {})
        return {col for col, version in since.items() if self.config.version_tuple < version}

    def _refresh_catalog(self, session: Session, tables: set[str]) -> None:
        if "rw_catalog__rw_ddl_progress" in tables:
            self._poll_jobs()
        for table in tables:
            short = table.split("__", 1)[1]
            full = {**RW_CATALOG, **PG_CATALOG}[short]
            absent = self._absent_columns(short)
            keep = [i for i, (n, _) in enumerate(full) if n not in absent]
            state = self._catalog_tables.get(table)
            if state is None:
                state = self._catalog_tables[table] = _CatalogTable()
                self.catalog.watch(state.changed)
            if state.version != self.config.version:
                cols = ", ".join(f'"{full[i][0]}"' for i in keep)
                self.visible.execute(f'DROP TABLE IF EXISTS "{table}"')
                self.visible.execute(f'CREATE TABLE "{table}" ({cols})')
                if any(full[i][0] == "schema_id" for i in keep):
                    # a read of some schemas' objects joins on it: without an index SQLite
                    # builds one per query, over the whole catalog
                    self.visible.execute(f'CREATE INDEX "{table}__schema_id" ON "{table}" (schema_id)')
                state.version, state.user_id = self.config.version, None
            kind = _RELATION_TABLES.get(short)
            if kind is not None and session.user.is_super and state.user_id == session.user.id:
                self._update_catalog_table(state, table, short, kind, keep)
                continue
            state.changed.clear()
            self.visible.execute(f'DELETE FROM "{table}"')
            marks = ", ".join("?" for _ in keep)
            if kind is None:
                state.user_id = None
                rows = [tuple(row[i] for i in keep) for row in self._catalog_rows(session, short)]
                if rows:
                    self.visible.executemany(f'INSERT INTO "{table}" VALUES ({marks})', rows)
                continue
            # a relation's row is stored under its id, so that a change replaces just that row
            state.user_id = session.user.id if session.user.is_super else None
            keyed = [
                (r.id, *(row[i] for i in keep))
                for r in self.catalog.relations.values()
                if r.kind == kind and r.visible and self._can_see(session, r)
                for row in (self._relation_row(short, r),)
            ]
            names = ", ".join(["rowid", *(f'"{full[i][0]}"' for i in keep)])
            if keyed:
                self.visible.executemany(f'INSERT INTO "{table}" ({names}) VALUES (?, {marks})', keyed)

    def _update_catalog_table(
        self, state: _CatalogTable, table: str, short: str, kind: str, keep: list[int]
    ) -> None:
        """Replace the rows of the relations changed since the last read (a superuser sees all)."""
        full = {**RW_CATALOG, **PG_CATALOG}[short]
        names = ", ".join(["rowid", *(f'"{full[i][0]}"' for i in keep)])
        marks = ", ".join("?" for _ in keep)
        changed = sorted(state.changed)
        state.changed.clear()
        for rid in changed:
            self.visible.execute(f'DELETE FROM "{table}" WHERE rowid = ?', (rid,))
            rel = self.catalog.relations.get(rid)
            if rel is not None and rel.kind == kind and rel.visible:
                row = self._relation_row(short, rel)
                self.visible.execute(
                    f'INSERT INTO "{table}" ({names}) VALUES (?, {marks})', (rid, *(row[i] for i in keep))
                )

    def _poll_jobs(self) -> None:
        """A read of rw_ddl_progress: jobs that have been seen N times complete now."""
        for job in list(self.jobs.values()):
            if job.polls_needed is not None and job.polls_seen >= job.polls_needed:
                self.complete_job(job)
        for job in self.jobs.values():
            job.polls_seen += 1

    def _can_see(self, session: Session, rel: Relation) -> bool:
        """docs/risingwave.md §8: catalog listings are filtered by the current user's privileges."""
        user = session.user
        if user.is_super or rel.owner == user.id:
            return True
        grants = [g for g in self.catalog.grants if g.user_id == user.id]
        has_usage = any(g.object_kind == "schema" and g.object_id == rel.schema_id for g in grants)
        return has_usage and any(g.object_id == rel.id and g.object_kind != "schema" for g in grants)

    def _relation_row(self, table: str, r: Relation) -> tuple[Any, ...]:
        """``r``'s row in ``table``, one of :data:`_RELATION_TABLES` (of ``r``'s kind)."""
        c = self.catalog
        version = "2.8.0-double"
        if table == "rw_sources":
            return (r.id, r.name, r.schema_id, r.owner, r.connector, _array(x.name for x in r.columns),
                    r.format, r.encode, r.append_only, None, None, c.definition(r), None, _iso(r.created_at),
                    _iso(r.created_at), version, version, True)  # fmt: skip
        if table == "rw_materialized_views":
            return (r.id, r.name, r.schema_id, r.owner, c.definition(r), r.append_only, None,
                    _iso(r.created_at), _iso(r.created_at), version, version,
                    r.create_type == "BACKGROUND", r.status, c.schemas[r.schema_id].name)  # fmt: skip
        if table == "rw_views":
            return (r.id, r.name, r.schema_id, r.owner, c.definition(r), None)
        if table == "rw_sinks":
            return (r.id, r.name, r.schema_id, r.owner, r.connector, _sink_type(r), None, c.definition(r),
                    None, None, _iso(r.created_at), _iso(r.created_at), version, version,
                    r.create_type == "BACKGROUND")  # fmt: skip
        if table == "rw_tables":
            return (r.id, r.name, r.schema_id, r.owner, c.definition(r), r.append_only, None,
                    _iso(r.created_at), _iso(r.created_at), version, version)  # fmt: skip
        if table == "rw_secrets":
            return (r.id, r.schema_id, r.name, r.owner, None)
        if table == "pg_matviews":
            return (c.schemas[r.schema_id].name, r.name, r.owner, c.definition(r), False, True)
        raise AssertionError(f"{table} is not a table of relations")

    def _catalog_rows(self, session: Session, table: str) -> list[tuple[Any, ...]]:
        """The rows of a catalog table that is not one of :data:`_RELATION_TABLES`."""
        c = self.catalog
        if table == "rw_schemas":
            return [(s.id, s.name, s.owner, None) for s in c.schemas.values()]
        if table == "rw_users":
            return [
                (u.id, u.name, u.is_super, u.create_db, u.create_user, u.can_login, u.is_super)
                for u in c.users.values()
            ]
        if table == "rw_ddl_progress":
            now = self.clock()
            return [
                (j.object_id, c.definition(c.relations[j.object_id]), j.create_type,
                 f"{j.progress(now):.2f}%", _iso(j.initialized_at))
                for j in self.jobs.values()
                if j.object_id in c.relations
            ]  # fmt: skip
        if table == "pg_namespace":
            return [(s.id, s.name, s.owner) for s in c.schemas.values()]
        if table == "pg_user":
            return [(u.name, u.id, u.create_db, u.is_super) for u in c.users.values()]
        return []

    # ------------------------------------------------------------------ SHOW / SET / misc

    def _show(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("show")
        if c.accept_kw("jobs"):
            now = self.clock()
            rows = [
                [str(j.object_id), self.catalog.definition(self.catalog.relations[j.object_id]),
                 f"{j.progress(now):.2f}%"]
                for j in self.jobs.values()
                if j.object_id in self.catalog.relations
            ]  # fmt: skip
            return Outcome(f"SHOW {len(rows)}", [("Id", I8), ("Statement", V), ("Progress", V)], rows)
        if c.accept_kw("create"):
            kind = self._kind(c)
            name = c.name()
            rel = self._lookup(session, name, (kind,))
            if rel is None:
                raise SqlError(f"{kind} not found: {name}")
            # docs/risingwave.md §11: SHOW CREATE returns (name, create sql)
            row = [self.catalog.qualified(rel), self.catalog.definition(rel)]
            return Outcome("SHOW 1", [("Name", V), ("Create Sql", V)], [row])
        plural = {
            ("materialized", "views"): MATERIALIZED_VIEW, ("sources",): SOURCE, ("sinks",): SINK,
            ("tables",): TABLE, ("views",): VIEW, ("secrets",): SECRET,
        }  # fmt: skip
        for words, kind in plural.items():
            if c.accept_kw(*words):
                schema_name = "public"
                if c.accept_kw("from") or c.accept_kw("in"):
                    schema_name = c.name().name
                schema = self.catalog.schema_by_name(schema_name)
                if schema is None:
                    raise SqlError(f"schema not found: {schema_name}")
                rows = [
                    [r.name]
                    for r in self.catalog.relations.values()
                    if r.schema_id == schema.id and r.kind == kind and r.visible
                ]
                return Outcome(f"SHOW {len(rows)}", [("Name", V)], rows)
        if c.accept_kw("schemas"):
            rows = [[s.name] for s in self.catalog.schemas.values()]
            return Outcome(f"SHOW {len(rows)}", [("Name", V)], rows)
        if c.accept_kw("all"):
            rows = [[k, v, ""] for k, v in sorted(self._settings(session).items())]
            return Outcome(f"SHOW {len(rows)}", [("Name", V), ("Setting", V), ("Description", V)], rows)
        var = c.name().name
        settings = self._settings(session)
        if var not in settings:
            raise SqlError(f'Unrecognized configuration parameter "{var}"')  # UNCERTAIN wording
        return Outcome("SHOW 1", [(var, V)], [[settings[var]]])

    def _settings(self, session: Session) -> dict[str, str]:
        timeout = session.statement_timeout_ms
        if self.config.statement_timeout_units == "legacy":
            shown_timeout = str(timeout // 1000)
        else:
            shown_timeout = f"{timeout}ms"
        base = {
            "server_version": SERVER_VERSION,
            "application_name": "",
            "background_ddl": "true" if session.background_ddl else "false",
            "rw_implicit_flush": "true" if session.implicit_flush else "false",
            "implicit_flush": "true" if session.implicit_flush else "false",
            "statement_timeout": shown_timeout,
            "timezone": "UTC",
            "search_path": '"$user", public',
            "client_encoding": "UTF8",
            "datestyle": "ISO, MDY",
        }
        return {**base, **session.settings}

    def _set(self, session: Session, c: Cursor) -> Outcome:
        reset = c.next().is_kw("reset")
        if reset:
            var = c.name().name
            value: str | None = None
        else:
            c.accept_kw("session") or c.accept_kw("local")
            if c.accept_kw("time", "zone"):
                var = "timezone"
            else:
                var = c.name().name
                if not (c.accept_op("=") or c.accept_kw("to")):
                    raise c.error("expected = or TO")
            values = []
            while not c.at_end() and not c.at_punct(";"):
                tok = c.next()
                if tok.kind != "punct":
                    values.append(tok.value)
            value = ",".join(values)
            if value.lower() == "default":
                value = None
        outcome = Outcome("SET_VARIABLE")
        if var == "statement_timeout":
            session.statement_timeout_ms = 0 if value is None else self._parse_timeout(value)
        elif var == "background_ddl":  # docs/risingwave.md §12: per-session
            session.background_ddl = _parse_bool(var, value or "false")
        elif var in ("rw_implicit_flush", "implicit_flush"):
            session.implicit_flush = _parse_bool(var, value or "false")
        elif var == "transaction_isolation":
            pass
        elif value is None:
            session.settings.pop(var, None)
        else:
            session.settings[var] = value
            if var == "application_name":
                outcome.parameter_status["application_name"] = value
        return outcome

    def _parse_timeout(self, value: str) -> int:
        """statement_timeout (milliseconds). Units are required since PR #24633 (v2.8)."""
        text = value.strip()
        if self.config.statement_timeout_units == "legacy":
            if not re.fullmatch(r"\d+", text):
                raise SqlError(f"Invalid value `{text}` for `statement_timeout`")
            return int(text) * 1000
        if text == "0":
            return 0
        m = re.fullmatch(r"(\d+)\s*([a-z]*)", text)
        if not m or not m.group(2):
            # src/common/src/session_config/statement_timeout.rs
            raise SqlError(
                f"Invalid value `{text}` for `statement_timeout`: time unit is required: ms s min h d"
            )
        mult = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}.get(m.group(2))
        if mult is None:
            raise SqlError(
                f'Invalid value `{text}` for `statement_timeout`: invalid time unit: "{m.group(2)}"'
            )
        return int(m.group(1)) * mult

    def _begin(self, session: Session, c: Cursor) -> Outcome:
        c.next()
        c.accept_kw("transaction") or c.accept_kw("work")
        read_only = c.accept_kw("read", "only")
        c.accept_kw("read", "write")
        if read_only:
            session.read_only_txn = True
            return Outcome("BEGIN", txn_status="T")
        return Outcome("BEGIN", notices=[BEGIN_NOTICE])  # docs/risingwave.md §13

    def _commit(self, session: Session, c: Cursor) -> Outcome:
        word = c.next().value
        session.read_only_txn = False
        return Outcome("ROLLBACK" if word in ("rollback", "abort") else "COMMIT")

    def _wait(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("wait")
        if not c.at_end() and not c.at_punct(";") and self.config.at_least(3, 0):
            # v3.0+: WAIT MATERIALIZED VIEW|SINK|TABLE|INDEX name waits for that job
            # (https://docs.risingwave.com/sql/commands/sql-wait); modelled as waiting for all
            for words in (("materialized", "view"), ("sink",), ("table",), ("index",)):
                if c.accept_kw(*words):
                    break
            c.name()
        self._expect_end(c)  # docs/risingwave.md §12: v2.x has a bare WAIT (waits for all jobs)
        for job in list(self.jobs.values()):
            if job.duration is None:
                self.complete_job(job)  # poll-only jobs: the double finishes them at WAIT
        return Outcome("WAIT", wait_all=True)

    def background_jobs(self) -> list[Job]:
        return [j for j in self.jobs.values() if j.create_type == "BACKGROUND"]

    def _cancel_jobs(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("cancel")
        c.accept_kw("jobs") or c.accept_kw("job")
        ids = [int(t.value) for t in c.tokens[c.i :] if t.kind == "number"]
        for job_id in ids:
            job = self.jobs.get(job_id)
            if job is None:
                raise SqlError(f"job not found: {job_id}")
            self.cancel_job(job, "cancelled by CANCEL JOBS")
        rows = [[str(i)] for i in ids]
        return Outcome(f"CANCEL_COMMAND {len(ids)}", [("Id", V)], rows)

    def _explain(self, session: Session, c: Cursor) -> Outcome:
        c.expect_kw("explain")
        # docs/risingwave.md §13: EXPLAIN CREATE ... plans without creating anything
        nxt = c.peek(1)
        if c.at_kw("create") and nxt is not None and nxt.is_kw("materialized", "view", "sink"):
            kind_mv = nxt.is_kw("materialized")
            sub = Cursor(c.sql[c.pos() :])
            outcome = self._create(session, sub, dry_run=True)
            if outcome.tag != "EXPLAIN":  # IF NOT EXISTS on an existing object
                return Outcome("EXPLAIN", [("QUERY PLAN", V)], [["(exists)"]])
            plan = "StreamMaterialize (double)" if kind_mv else "StreamSink (double)"
            return Outcome("EXPLAIN", [("QUERY PLAN", V)], [[plan]])
        raise not_supported_by_double("EXPLAIN of this statement")

    # ------------------------------------------------------------------ helpers

    def _expect_end(self, c: Cursor) -> None:
        c.accept_punct(";")
        if not c.at_end():
            raise c.error("expected end of statement")

    def _stored_table(self, rel: Relation) -> str:
        """The SQLite table holding ``rel``'s rows (in both databases), made on first use."""
        table = rel.sqlite_table
        if rel.id in self._stored:
            return table
        cols = [f'"{col.name}" {_sqlite_type(col.oid)}' for col in rel.columns] or ['"_row_id" INTEGER']
        if rel.primary_key:
            cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in rel.primary_key) + ")")
        ddl = f'CREATE TABLE "{table}" ({", ".join(cols)})'
        for db in (self.latest, self.visible):
            db.execute(ddl)
        self._stored.add(rel.id)
        return table


# --------------------------------------------------------------------------- module helpers


#: Catalog tables with one row per relation of a kind: kept row by row (see _CatalogTable).
_RELATION_TABLES = {
    "rw_sources": SOURCE, "rw_materialized_views": MATERIALIZED_VIEW, "rw_views": VIEW,
    "rw_sinks": SINK, "rw_tables": TABLE, "rw_secrets": SECRET, "pg_matviews": MATERIALIZED_VIEW,
}  # fmt: skip


@dataclass
class _CatalogTable:
    """What the SQLite copy of one catalog table holds.

    A superuser's copy of a table of relations is brought up to date by replacing the rows of
    the relations changed since the last read, so that a catalog read costs what changed, not
    the size of the catalog; any other user's read (privileges filter the rows) rebuilds it.
    """

    version: str | None = None  # the imitated version the table's columns are for
    user_id: int | None = None  # whose rows it holds; None: rebuild on the next read
    changed: set[int] = field(default_factory=set)  # relations changed since (Catalog.watch)


@dataclass(frozen=True)
class _TableMap:
    """What a query's table references were pointed at."""

    types: dict[str, int]  # column name: type oid, of every table read
    catalog_tables: set[str]  # the catalog tables it reads
    catalog_only: bool  # it reads no relation (CTEs aside)


@dataclass(frozen=True)
class _PreparedQuery:
    """A catalog query translated once (:meth:`Engine._prepare`)."""

    sqlite: str  # the SQLite statement, a ``?`` where each literal goes
    order: tuple[int, ...]  # the literal each ``?`` takes, by its place in the query
    tables: frozenset[str]
    types: dict[str, int]


#: The SQLite tables that hold catalog tables, by their prefix (:meth:`Engine._system_table`).
_SYSTEM = ("rw_catalog__", "pg_catalog__")
_MARKER = "cha_double_literal_"
_MARKER_RE = re.compile(rf"'{_MARKER}(\d+)'")


def _shape(sql: str, tokens: Sequence[Token]) -> tuple[str, list[str]]:
    """``sql`` with each plain ``'...'`` literal replaced by a numbered marker, and the literals'
    values (a query that holds the marker text itself keeps its literals)."""
    if _MARKER in sql:
        return sql, []
    parts: list[str] = []
    literals: list[str] = []
    pos = 0
    for tok in tokens:
        if tok.kind == "string" and tok.text[0] == "'":
            parts += [sql[pos : tok.start], f"'{_MARKER}{len(literals)}'"]
            literals.append(tok.value)
            pos = tok.end
    parts.append(sql[pos:])
    return "".join(parts), literals


#: Properties ``ALTER SOURCE ... CONNECTOR WITH`` may change (the docs' allow-list, abridged to
#: the security keys and a few librdkafka tuning keys).
ALTERABLE_SOURCE_PROPERTIES = frozenset(
    {
        "properties.security.protocol", "properties.sasl.mechanism", "properties.sasl.username",
        "properties.sasl.password", "properties.ssl.endpoint.identification.algorithm",
        "properties.client.id", "properties.message.max.bytes", "properties.receive.message.max.bytes",
        "group.id.prefix",
    }
)  # fmt: skip


def _reject_escape_string(c: Cursor) -> None:
    """RisingWave's parser takes only a plain ``'...'`` after PASSWORD (``parse_literal_string``
    in src/sqlparser/src/parser.rs, v2.2.0 … v3.0.3): "expected literal string, found: E'...'"."""
    tok = c.peek()
    if tok is not None and tok.kind == "string" and tok.text[0] in "eE":
        raise c.error("expected literal string")


def _unique(ids: list[int]) -> list[int]:
    out: list[int] = []
    for i in ids:
        if i not in out:
            out.append(i)
    return out


def _ident(node: exp.Expression) -> str:
    if isinstance(node, exp.Identifier):
        text = str(node.this)
        return text if node.quoted else text.lower()
    return str(node.name).lower()


def _table_name(table: exp.Table) -> Name:
    parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p]
    return Name(tuple(_ident(p) for p in parts), tuple(bool(getattr(p, "quoted", False)) for p in parts))


def _retarget(table: exp.Table, target: str) -> None:
    if not table.args.get("alias"):
        table.set("alias", exp.TableAlias(this=exp.to_identifier(_ident(table.this))))
    table.set("this", exp.to_identifier(target, quoted=True))
    table.set("db", None)
    table.set("catalog", None)


def _portable_functions(node: exp.Expression) -> exp.Expression:
    """Functions SQLite lacks, mapped to ones the double registers."""
    name = type(node).__name__
    if name in ("CurrentVersion", "Version") or (
        isinstance(node, exp.Anonymous) and node.name.lower() == "version"
    ):
        return exp.Anonymous(this="rw_version", expressions=[])
    return node


def _array(items: Iterable[str]) -> str:
    return "{" + ",".join(items) + "}"


def _sink_type(rel: Relation) -> str:
    legacy = rel.options.get("type")
    if legacy is not None:
        return legacy.value.replace("-", "_")
    return {"PLAIN": "append-only", "UPSERT": "upsert", "DEBEZIUM": "debezium"}.get(rel.format or "", "")


def _sqlite_type(oid: int) -> str:
    if oid in (cat.OID_INT2, cat.OID_INT4, cat.OID_INT8, cat.OID_BOOL):
        return "INTEGER"
    if oid in (cat.OID_FLOAT4, cat.OID_FLOAT8):
        return "REAL"
    if oid == cat.OID_NUMERIC:
        return "NUMERIC"
    return "TEXT"


def _parse_bool(var: str, value: str) -> bool:
    v = value.lower()
    if v in ("true", "on", "1", "yes"):
        return True
    if v in ("false", "off", "0", "no"):
        return False
    raise SqlError(f"Invalid value `{value}` for `{var}`")


def _infer_oid(values: Any) -> int:
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            return cat.OID_BOOL
        if isinstance(v, int):
            return cat.OID_INT4 if -(2**31) <= v < 2**31 else cat.OID_INT8
        if isinstance(v, float):
            return cat.OID_FLOAT8
        if isinstance(v, bytes):
            return cat.OID_BYTEA
        return cat.OID_VARCHAR
    return cat.OID_VARCHAR


def _encode(value: Any, oid: int) -> str | None:
    """Text-format a SQLite value for the wire, per the column's PostgreSQL type."""
    if value is None:
        return None
    if oid == cat.OID_BOOL:
        if isinstance(value, str):
            return "t" if value.lower() in ("t", "true", "1") else "f"
        return "t" if value else "f"
    if oid == cat.OID_TIMESTAMPTZ and isinstance(value, str):
        text = value.replace("T", " ")
        if not re.search(r"[+-]\d{2}(:?\d{2})?$", text):
            text += "+00:00"
        return text
    if oid in (cat.OID_INT2, cat.OID_INT4, cat.OID_INT8) and isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, float):
        return repr(value)
    return str(value)
