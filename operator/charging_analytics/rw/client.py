"""The RisingWave boundary: the only module that talks to RisingWave.

Two operations matter to the rest of the operator:

* :meth:`RisingWaveClient.snapshot` reads the catalog (a handful of plain SELECTs, one round trip
  each, on one connection) into a :class:`~charging_analytics.catalog.CatalogSnapshot`;
* :meth:`RisingWaveClient.execute` runs one fully composed statement.

Connections come from a ``psycopg_pool.AsyncConnectionPool`` and are configured the way
RisingWave needs (docs/risingwave.md §13): ``autocommit=True`` (RisingWave has no read-write
transactions; psycopg would otherwise send BEGIN, which RisingWave ignores with a notice),
``prepare_threshold=None`` (no server-side prepared statements) and, on connect, a
``statement_timeout`` (docs/risingwave.md §13) and ``BACKGROUND_DDL`` (§12).

Errors surface as two types: :class:`RisingWaveUnavailable` (cannot reach RisingWave: connection
refused, timeout, pool exhausted; retry later) and :class:`RisingWaveStatementError` (RisingWave
rejected a statement). Statements can carry credentials (sink passwords in the no-license
fallback, ``CREATE USER ... PASSWORD``), so neither error, nor any log line, ever contains
statement text; a server message is kept only with the statement echo dropped and every
credential the statement carried (the caller says which: ``execute(..., sensitive=...)``) removed.

On connect the client reads ``SELECT version()``; :meth:`RisingWaveClient.capabilities` turns it
into the :class:`~charging_analytics.rw.capabilities.Capabilities` that render and plan take.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, cast, get_args
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from charging_analytics import ledger
from charging_analytics.catalog import (
    CatalogSnapshot,
    LedgerEntry,
    ObjectKind,
    ObservedObject,
    SnapshotIndex,
    definition_fingerprint,
)
from charging_analytics.redaction import scrub
from charging_analytics.rw.capabilities import (
    Capabilities,
    Version,
    capabilities_for,
    parse_version,
)
from charging_analytics.rw.literal import rw_literal
from charging_analytics.tls import PemFiles, TlsMaterial

log = logging.getLogger(__name__)

DEFAULT_PORT = 4566  # docs/risingwave.md §13 (the RisingWave Kubernetes operator's Service uses 4567)
DEFAULT_DATABASE = "dev"
DEFAULT_USER = "root"
#: Rows converted at once when a large catalog read hands its rows over one by one: iterating
#: the cursor row by row awaited once per row, which cost more than converting the rows.
ROWS_PER_FETCH = 1000

_OBJECT_KINDS: frozenset[str] = frozenset(get_args(ObjectKind))


# --------------------------------------------------------------------------------------------
# Errors


class RisingWaveError(Exception):
    """Base class for everything the client raises."""

    retryable: bool = False


class RisingWaveUnavailable(RisingWaveError):
    """RisingWave could not be reached (refused, timed out, pool exhausted). Retry later."""

    retryable = True


class RisingWaveTlsFailed(RisingWaveUnavailable):
    """The TLS handshake with RisingWave failed: no CA to verify it with, a CA that did not sign its
    certificate, a host name the certificate does not name. Retried, but needs a spec change."""


#: sslmodes under which libpq fails a connection for a TLS reason (the others fall back to plain).
_TLS_REQUIRED = ("require", "verify-ca", "verify-full")
#: Words of libpq's and OpenSSL's messages for a failed TLS setup or verification.
TLS_FAILURE_WORDS = ("certificate", "ssl", "tls")


def tls_failed(sslmode: str, message: str) -> bool:
    """Whether a connection error under ``sslmode`` is a TLS failure (by libpq's words)."""
    return sslmode != "disable" and any(w in message.lower() for w in TLS_FAILURE_WORDS)


class RisingWaveStatementError(RisingWaveError):
    """RisingWave rejected a statement.

    ``message`` is the server's message with any secret material from the statement redacted;
    the statement text itself is never kept. RisingWave reports most errors as SQLSTATE XX000,
    so classify by ``message`` where SQLSTATE is not specific.
    """

    def __init__(self, *, sqlstate: str | None, message: str, statement_kind: str) -> None:
        self.sqlstate = sqlstate
        self.message = message
        self.statement_kind = statement_kind
        # class 08 connection, 40 transaction rollback, 53 resources, 57 operator intervention
        self.retryable = sqlstate is not None and sqlstate[:2] in ("08", "40", "53", "57")
        super().__init__(f"{statement_kind} failed [{sqlstate or '-----'}]: {message}")


class RisingWaveStatementTimeout(RisingWaveStatementError):
    """A statement was cancelled because it ran longer than its timeout (retryable)."""


# --------------------------------------------------------------------------------------------
# Endpoint and options


@dataclass(frozen=True)
class Endpoint:
    """Where a RisingWave database is. The password never appears in ``repr`` or logs."""

    host: str
    port: int = DEFAULT_PORT
    database: str = DEFAULT_DATABASE
    user: str = DEFAULT_USER
    password: str = field(default="", repr=False)  # "" = no password
    sslmode: str = "prefer"
    #: CA bundle / client certificate from a Secret (written to private files while the pool lives).
    tls: TlsMaterial | None = field(default=None, repr=False, compare=False)
    #: libpq TLS parameters naming files that already exist (``sslrootcert`` etc.).
    tls_files: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        """``host:port/database``: identifies the endpoint (and its ledger) across resources."""
        return f"{self.host}:{self.port}/{self.database}"

    @classmethod
    def from_dsn(cls, dsn: str) -> Endpoint:
        """Parse ``postgresql://user:password@host:port/database?sslmode=...``.

        Errors never echo the DSN (it may contain a password).
        """
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("RisingWave DSN must start with postgresql:// or postgres://")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ValueError("RisingWave DSN has an invalid port") from None
        if not parts.hostname:
            raise ValueError("RisingWave DSN has no host")
        query = parse_qs(parts.query)
        return cls(
            host=parts.hostname,
            port=port,
            database=unquote(parts.path.lstrip("/")) or DEFAULT_DATABASE,
            user=unquote(parts.username) if parts.username else DEFAULT_USER,
            password=unquote(parts.password) if parts.password else "",
            sslmode=query.get("sslmode", ["prefer"])[-1],
        )

    def conninfo(
        self, *, connect_timeout: float, application_name: str, tls: dict[str, str] | None = None
    ) -> str:
        """libpq parameters; ``tls`` adds the paths of written PEM files (:class:`PemFiles`)."""
        return make_conninfo(
            **dict(self.tls_files),
            **(tls or {}),
            host=self.host,
            port=str(self.port),
            dbname=self.database,
            user=self.user,
            password=self.password or None,
            sslmode=self.sslmode,
            # libpq takes whole seconds and treats values below 2 as 2
            connect_timeout=str(max(2, math.ceil(connect_timeout))),
            application_name=application_name,
        )


@dataclass(frozen=True)
class ClientOptions:
    #: Seconds. Sent as ``statement_timeout`` on connect; RisingWave applies it to batch queries
    #: (reads) only, so reads also get a client-side guard of this plus one second.
    statement_timeout: float = 30.0
    #: Seconds to establish a connection / wait for a pooled one; bounds how long an
    #: unreachable RisingWave takes to surface as :class:`RisingWaveUnavailable`.
    connect_timeout: float = 5.0
    pool_min: int = 1
    pool_max: int = 4
    #: Seconds a pooled connection may sit idle before it is checked (an empty query) on checkout.
    #: A connection that just worked is not: a check per statement doubled the round trips. A
    #: connection whose last statement failed is always checked.
    check_idle_seconds: float = 30.0
    #: ``SET BACKGROUND_DDL``: CREATE MV/SINK return before backfill completes (docs/risingwave.md §12).
    background_ddl: bool = False
    #: Client-side limit for :meth:`RisingWaveClient.execute` (None: wait as long as the DDL takes;
    #: a foreground CREATE MV blocks until backfill is done). On expiry the statement is cancelled.
    ddl_timeout: float | None = None
    application_name: str = "charging-analytics-operator"


# --------------------------------------------------------------------------------------------
# Catalog SQL: plain SELECT / JOIN / UNION ALL, no casts, v2.x columns only (no schema_name before
# v3.0, docs/risingwave.md §11). Each is one round trip.

_SCHEMAS_SQL = "SELECT id, name FROM rw_catalog.rw_schemas"

_RELATION_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Source", "rw_sources", " WHERE r.associated_table_id IS NULL"),
    ("MaterializedView", "rw_materialized_views", ""),
    ("View", "rw_views", ""),
    ("Sink", "rw_sinks", ""),
    ("Table", "rw_tables", ""),
)
_RELATIONS_SQL = "\nUNION ALL\n".join(
    f"SELECT '{kind}' AS kind, s.name AS schema_name, r.id, r.name, r.definition "
    f"FROM rw_catalog.{table} r JOIN rw_catalog.rw_schemas s ON r.schema_id = s.id{where}"
    for kind, table, where in _RELATION_SOURCES
)
_SECRETS_SQL = (
    "SELECT s.name AS schema_name, r.id, r.name "
    "FROM rw_catalog.rw_secrets r JOIN rw_catalog.rw_schemas s ON r.schema_id = s.id"
)
#: Some schemas' relations and secrets (what applies built: ids and definitions for fingerprints).
_SCHEMA_OBJECTS_SQL = (
    "SELECT kind, schema_name, id, name, definition FROM (\n"
    + _RELATIONS_SQL
    + "\nUNION ALL\nSELECT 'Secret' AS kind, s.name AS schema_name, r.id, r.name, NULL AS definition "
    "FROM rw_catalog.rw_secrets r JOIN rw_catalog.rw_schemas s ON r.schema_id = s.id\n"
    ") AS o WHERE schema_name IN ({})"
)
_USERS_SQL = "SELECT name FROM rw_catalog.rw_users"
_PROGRESS_SQL = "SELECT ddl_id, ddl_statement, progress FROM rw_catalog.rw_ddl_progress"
_LEDGER_SQL = ledger.SELECT.as_string(None)

_SECRET_PROBE = "cha_secret_probe"
_VERSION_SQL = "SELECT version()"


def _version_of(rows: Sequence[tuple[Any, ...]]) -> Version:
    text = str(rows[0][0]) if rows and rows[0] else ""
    try:
        return parse_version(text)
    except ValueError:
        raise RisingWaveStatementError(
            sqlstate=None,
            message=f"the server is not RisingWave (version() = {text[:80]!r})",
            statement_kind="SELECT",
        ) from None


_DDL_NAME = re.compile(
    r"""^\s*CREATE\s+(?:MATERIALIZED\s+VIEW|SINK|TABLE|INDEX|SOURCE)\s+(?:IF\s+NOT\s+EXISTS\s+)?
        (?P<name>(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)(?:\.(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*))*)""",
    re.IGNORECASE | re.VERBOSE,
)


# --------------------------------------------------------------------------------------------
# The client


class RisingWaveClient:
    """Async client for one RisingWave endpoint (one connection pool)."""

    def __init__(self, endpoint: Endpoint, options: ClientOptions | None = None) -> None:
        self.endpoint = endpoint
        self.options = options or ClientOptions()
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] | None = None
        self._timeout_form: str | None = None  # which SET statement_timeout form the server took
        #: ``SELECT version()`` as the latest new connection read it
        self._version_rows: list[tuple[Any, ...]] | None = None
        #: the capabilities of that reading
        self._capabilities: tuple[list[tuple[Any, ...]], Capabilities] | None = None
        #: When each pooled connection last completed a statement (absent: failed, or never used).
        self._last_ok: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._flushed = False  # whether this client flushed before its first snapshot
        self._pem: PemFiles | None = None  # the endpoint's TLS material as files, while open
        self._conninfo = ""
        self._closed = False  # closed for good: a rotated credential or TLS material replaced it
        #: schema -> the callers waiting for its objects (:meth:`schema_objects`), and the reader
        self._schemas_wanted: dict[str, asyncio.Future[list[ObservedObject]]] = {}
        self._schemas_reader: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"RisingWaveClient({self.endpoint.key})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Create the pool. Does not wait for RisingWave: the first call reports unavailability."""
        if self._pool is not None:
            return
        self._closed = False
        opts = self.options
        # the pool reconnects at any time, so the files live as long as the pool
        self._pem = PemFiles(self.endpoint.tls)
        self._conninfo = self.endpoint.conninfo(
            connect_timeout=opts.connect_timeout,
            application_name=opts.application_name,
            tls=self._pem.libpq(),
        )
        pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
            self._conninfo,
            kwargs={"autocommit": True, "prepare_threshold": None},
            min_size=opts.pool_min,
            max_size=max(opts.pool_max, opts.pool_min),
            open=False,
            configure=self._configure,
            check=self._check,
            timeout=opts.connect_timeout,
            name=f"risingwave:{self.endpoint.key}",
        )
        try:
            await pool.open(wait=False)
        except BaseException:
            self._remove_pem()
            raise
        self._pool = pool

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                await pool.close(timeout=5.0)
        finally:  # the PEM files go even when closing the pool fails or is cancelled
            self._remove_pem()

    def _remove_pem(self) -> None:
        pem, self._pem = self._pem, None
        if pem is not None:
            pem.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        # The version is read on every new connection, so a server upgraded in place (connections
        # re-established) is seen with its new capabilities.
        cursor = await conn.execute(_VERSION_SQL)
        self._version_rows = await cursor.fetchall()
        await self._set_statement_timeout(conn)
        background = "true" if self.options.background_ddl else "false"
        await conn.execute(pgsql.SQL("SET BACKGROUND_DDL = {}").format(pgsql.SQL(background)))
        self._last_ok[conn] = time.monotonic()  # just connected: no need to check it

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """The pool's checkout check: only for a connection that failed or sat idle long."""
        last = self._last_ok.get(conn)
        if last is not None and time.monotonic() - last < self.options.check_idle_seconds:
            return
        await AsyncConnectionPool.check_connection(conn)
        self._last_ok[conn] = time.monotonic()

    async def _set_statement_timeout(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """RisingWave ≥ v2.8 requires a unit ('30000ms'); older versions take bare seconds.

        (A bare number means seconds in RisingWave, milliseconds in PostgreSQL; PR #24633 made
        RisingWave reject it: docs/risingwave.md §13.)
        """
        ms = max(0, round(self.options.statement_timeout * 1000))
        forms = {
            "unit": f"SET statement_timeout = '{ms}ms'" if ms else "SET statement_timeout = 0",
            "seconds": f"SET statement_timeout = {math.ceil(ms / 1000)}",
        }
        order = [self._timeout_form] if self._timeout_form in forms else list(forms)
        for form in order:
            assert form is not None
            try:
                await conn.execute(forms[form])
            except psycopg.Error as e:
                if e.sqlstate is None:
                    raise  # the connection itself failed
                continue
            self._timeout_form = form
            return
        log.warning(
            "RisingWave at %s rejected statement_timeout; relying on client-side timeouts",
            self.endpoint.key,
        )
        self._timeout_form = "none"

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[tuple[Any, ...]]]:
        if self._closed:
            # reopening would write PEM files no one removes (the service holds a new client)
            raise RisingWaveUnavailable(f"the connection pool of {self.endpoint.key} was closed")
        if self._pool is None:
            await self.open()
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                yield conn
        except (PoolTimeout, PoolClosed) as e:
            message = (
                f"RisingWave at {self.endpoint.key} is unavailable ({type(e).__name__}: "
                f"no connection within {self.options.connect_timeout:g}s)"
            )
            # only where TLS can be the cause: the diagnosis costs up to one more connect timeout
            diagnose = isinstance(e, PoolTimeout) and self.endpoint.sslmode in _TLS_REQUIRED
            cause = await self._connect_failure() if diagnose else None
            if cause is None:
                raise RisingWaveUnavailable(message) from None
            error = RisingWaveTlsFailed if tls_failed(self.endpoint.sslmode, cause) else RisingWaveUnavailable
            raise error(f"{message}: {cause}") from None

    async def _connect_failure(self) -> str | None:
        """Why a new connection fails (the pool only says that none came in time): one direct
        attempt, its first line kept with every credential the client sends removed."""
        try:
            conn = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(self._conninfo, autocommit=True),
                timeout=self.options.connect_timeout + 1,
            )
        except psycopg.OperationalError as err:
            first = (str(err) or type(err).__name__).splitlines()[0]
            tls = self.endpoint.tls.values() if self.endpoint.tls is not None else ()
            return scrub(first, (self.endpoint.password, *tls))
        except (TimeoutError, OSError):
            return None
        await conn.close()
        return None

    # ------------------------------------------------------------------ operations

    async def execute(self, statement: str | pgsql.Composable, *, sensitive: Iterable[str] = ()) -> None:
        """Run one statement (DDL, DML, FLUSH, ...) in autocommit mode, without bind parameters.

        DDL cannot take bind parameters; compose statements with :mod:`psycopg.sql` instead.
        ``sensitive``: the credential values the statement embeds; an error never contains them.
        """
        async with self._connection() as conn:
            text = statement if isinstance(statement, str) else statement.as_string(conn)
            kind = statement_kind(text)
            log.debug("executing %s on %s", kind, self.endpoint.key)
            await self._run(
                conn, text, kind, limit=self.options.ddl_timeout, fetch=False, sensitive=tuple(sensitive)
            )

    async def query(self, sql: str | pgsql.Composable) -> list[tuple[Any, ...]]:
        """Run a read and return its rows (no bind parameters)."""
        async with self._connection() as conn:
            text = sql if isinstance(sql, str) else sql.as_string(conn)
            return await self._run(
                conn, text, statement_kind(text), limit=self.options.statement_timeout + 1.0, fetch=True
            )

    async def capabilities(self) -> Capabilities:
        """What the server can do, from the version it reported on connect (``SELECT version()``)."""
        if self._version_rows is None:
            async with self._connection():
                pass  # a new connection reads the version in ``_configure``
        rows = self._version_rows
        if rows is None:  # a pooled connection that predates the reading
            rows = await self.query(_VERSION_SQL)
        known = self._capabilities
        if known is not None and known[0] is rows:  # every pass asks; the answer is per reading
            return known[1]
        found = capabilities_for(_version_of(rows))
        self._capabilities = (rows, found)
        return found

    async def secrets_available(self) -> bool:
        """Whether ``CREATE SECRET`` works here (a licensed feature, docs/risingwave.md §7).

        Probes by creating and dropping a throwaway secret in ``public``; any statement error
        (no license, no secret store key) means "not available".
        """
        probe = pgsql.Identifier("public", _SECRET_PROBE)
        try:
            await self.execute(
                pgsql.SQL("CREATE SECRET IF NOT EXISTS {} WITH (backend = 'meta') AS 'probe'").format(probe)
            )
            await self.execute(pgsql.SQL("DROP SECRET IF EXISTS {}").format(probe))
        except RisingWaveStatementError as e:
            log.info("secrets unavailable on %s: %s", self.endpoint.key, e.message.splitlines()[0])
            return False
        return True

    async def ping(self) -> None:
        """Round-trip ``SELECT 1``; raises :class:`RisingWaveUnavailable` if unreachable."""
        await self.query("SELECT 1")

    async def ddl_progress(self) -> dict[str, str]:
        """Progress of the streaming jobs being built (``schema.name`` -> ``"42.10%"``), one cheap
        read of ``rw_ddl_progress`` (docs/risingwave.md §12), for progress reports during an apply."""
        rows = await self.query(_PROGRESS_SQL)
        out: dict[str, str] = {}
        for _ddl_id, statement, value in rows:
            qualified = _name_from_ddl(statement or "")
            if qualified is not None:
                out[qualified] = str(value)
        return out

    async def schema_objects(self, schema: str) -> list[ObservedObject]:
        """The relations and secrets of one schema (not a whole-endpoint snapshot): what an apply
        built, with the ids and definitions RisingWave gave them, from a read begun after the call.

        Concurrent calls share reads: one made while a read is in flight joins the next, which
        asks for every schema wanted meanwhile in one statement. A catalog query costs the server
        a pass over its whole catalog whatever it filters, so a burst of applies finishing
        together pays for one pass, not one each."""
        wanted = self._schemas_wanted.get(schema)
        if wanted is None:
            wanted = self._schemas_wanted[schema] = asyncio.get_running_loop().create_future()
        if self._schemas_reader is None or self._schemas_reader.done():
            self._schemas_reader = asyncio.create_task(self._read_schemas())
        return await asyncio.shield(wanted)

    async def _read_schemas(self) -> None:
        while self._schemas_wanted:
            batch, self._schemas_wanted = self._schemas_wanted, {}
            try:
                listed = pgsql.SQL(", ").join(rw_literal(name) for name in sorted(batch))
                rows = await self.query(pgsql.SQL(_SCHEMA_OBJECTS_SQL).format(listed))
            except BaseException as err:
                for waiting in batch.values():
                    if not waiting.done():
                        waiting.set_exception(
                            err
                            if isinstance(err, Exception)
                            else RisingWaveUnavailable(f"{self.endpoint.key}: the read was cancelled")
                        )
                if not isinstance(err, Exception):
                    raise
                continue
            found: dict[str, list[ObservedObject]] = {name: [] for name in batch}
            for kind, sch, oid, name, definition in rows:
                if sch in found:
                    found[sch].append(ObservedObject.read(cast(ObjectKind, kind), sch, name, oid, definition))
            for name, waiting in batch.items():
                if not waiting.done():
                    waiting.set_result(found[name])

    async def snapshot(self, previous: CatalogSnapshot | None = None) -> CatalogSnapshot:
        """Read what RisingWave has (schemas, relations, secrets, users, DDL progress, ledger).

        ``previous``: the endpoint's last snapshot, still held; objects and ledger entries that
        have not changed since are that snapshot's, not copies."""
        limit = self.options.statement_timeout + 1.0
        async with self._connection() as conn:

            async def read(sql: str) -> list[tuple[Any, ...]]:
                return await self._run(conn, sql, "SELECT", limit=limit, fetch=True)

            schema_rows = await read(_SCHEMAS_SQL)
            # before the relations: only the objects being built need their names by id
            progress_rows = await read(_PROGRESS_SQL)
            parts = _SnapshotParts(previous, building=progress_rows)
            await self._run(conn, _RELATIONS_SQL, "SELECT", limit=limit, fetch=True, each=parts.relation)
            for row in await read(_SECRETS_SQL):
                parts.secret(row)
            user_rows = await read(_USERS_SQL)
            ledger_exists = parts.ledger_table_exists()
            if ledger_exists and not self._flushed:
                # This client's first read (a new process, say) must see the ledger marks of a
                # predecessor that was killed mid-apply, before its FLUSH; later reads see only
                # writes of applies that flushed.
                await self._run(conn, "FLUSH", "FLUSH", limit=self.options.ddl_timeout, fetch=False)
            self._flushed = True
            if ledger_exists:
                await self._run(conn, _LEDGER_SQL, "SELECT", limit=limit, fetch=True, each=parts.ledger_row)
        return parts.snapshot(
            self.endpoint.key,
            schema_rows=schema_rows,
            user_rows=user_rows,
            progress_rows=progress_rows,
            ledger_exists=ledger_exists,
        )

    async def _run(
        self,
        conn: psycopg.AsyncConnection[tuple[Any, ...]],
        text: str,
        kind: str,
        *,
        limit: float | None,
        fetch: bool,
        sensitive: tuple[str, ...] = (),
        each: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run ``text``; its rows (``fetch``), or each row handed to ``each`` once converted, a
        batch of :data:`ROWS_PER_FETCH` at a time, so that a large result's rows are never all
        held as Python objects (none are returned then). The simple-query protocol is kept:
        streaming from the server would take the extended one."""
        failure: RisingWaveError
        self._last_ok.pop(conn, None)  # until it succeeds, the next checkout checks it
        try:
            async with asyncio.timeout(limit):
                cursor = await conn.execute(text)
                rows = []
                if each is not None and cursor.description is not None:
                    while batch := await cursor.fetchmany(ROWS_PER_FETCH):
                        for row in batch:
                            each(row)
                elif fetch and cursor.description is not None:
                    rows = await cursor.fetchall()
            self._last_ok[conn] = time.monotonic()
            return rows
        except TimeoutError:
            # asyncio cancelled the query; psycopg sent a cancel request to the server
            failure = RisingWaveStatementTimeout(
                sqlstate="57014", message=f"cancelled by the client after {limit:g}s", statement_kind=kind
            )
        except psycopg.Error as e:
            # the client's own password is sensitive in every error, whatever the statement
            failure = _map_error(e, (*sensitive, self.endpoint.password), kind, self.endpoint.key)
        # Raised outside the handler so the psycopg error (whose message may echo the statement)
        # is not even kept as ``__context__``.
        raise failure


# --------------------------------------------------------------------------------------------
# Pure helpers (unit-testable without a server)


def build_snapshot(
    endpoint_key: str,
    *,
    schema_rows: Sequence[tuple[Any, ...]],
    relation_rows: Iterable[tuple[Any, ...]],
    secret_rows: Iterable[tuple[Any, ...]],
    user_rows: Sequence[tuple[Any, ...]],
    progress_rows: Sequence[tuple[Any, ...]],
    ledger_rows: Iterable[tuple[Any, ...]],
    ledger_exists: bool,
    previous: CatalogSnapshot | None = None,
) -> CatalogSnapshot:
    """The snapshot the catalog reads' rows describe (:meth:`RisingWaveClient.snapshot` hands the
    large reads' rows over as they arrive instead); ``previous``: as for that method."""
    parts = _SnapshotParts(previous, building=progress_rows)
    for row in relation_rows:
        parts.relation(row)
    for row in secret_rows:
        parts.secret(row)
    for row in ledger_rows:
        parts.ledger_row(row)
    return parts.snapshot(
        endpoint_key,
        schema_rows=schema_rows,
        user_rows=user_rows,
        progress_rows=progress_rows,
        ledger_exists=ledger_exists,
    )


Rows = Sequence[tuple[Any, ...]]


class _SnapshotParts:
    """A snapshot's objects and ledger, made row by row: a relation's definition is folded into
    its fingerprint as its row arrives, so a whole endpoint's definitions are never held at once
    (they were most of a catalog read's memory at its peak)."""

    def __init__(self, previous: CatalogSnapshot | None = None, *, building: Rows = ()) -> None:
        self.objects: list[ObservedObject] = []
        #: the qualified name of each relation that a DDL job in ``building`` (progress rows)
        #: builds, by its id: usually none, so most reads make no name for any row
        self.by_id: dict[int, str] = {}
        self._building = frozenset(int(ddl_id) for ddl_id, *_ in building if ddl_id is not None)
        self.entries: list[LedgerEntry] = []
        self.owners: dict[str, str] = {}
        # What the previous snapshot holds, each by itself: an unchanged row yields that object.
        # Whatever still refers to the previous snapshot's objects (the drift passes' reports,
        # reconciles in flight) then shares them with this one instead of keeping a second copy
        # of the endpoint's catalog alive, and comparing a tenant's slices finds them identical.
        # Found by schema and name in the index the previous snapshot's reconciles already
        # built (a lookup table of its own was most of a steady-state read's CPU and several
        # MiB while the read ran), then compared field by field with the row.
        index = previous.index if previous is not None else SnapshotIndex({}, {})
        self._before = index.tenants
        self._owner_rows_before = index.owner_rows
        self._users_before = previous.users if previous is not None else frozenset()

    def _object(
        self, kind: ObjectKind, schema: str, name: str, oid: int | None, definition: str | None
    ) -> None:
        fingerprint = definition_fingerprint(kind, oid, definition)
        rows = self._before.get(schema)
        found = rows[0].get(name) if rows is not None else None
        if found is None or found.id != oid or found.fingerprint != fingerprint or found.kind != kind:
            shared_kind = cast(ObjectKind, _shared(kind))
            found = ObservedObject(shared_kind, _shared(schema), _shared(name), oid, fingerprint)
        self.objects.append(found)

    def relation(self, row: tuple[Any, ...]) -> None:
        kind, schema, oid, name, definition = row
        self._object(kind, schema, name, oid, definition)
        if self._building and int(oid) in self._building:
            self.by_id[int(oid)] = f"{schema}.{name}"

    def secret(self, row: tuple[Any, ...]) -> None:
        schema, oid, name = row
        self._object("Secret", schema, name, oid, None)

    def ledger_table_exists(self) -> bool:
        return any(
            o.kind == "Table" and o.schema == ledger.SYSTEM_SCHEMA and o.name == ledger.LEDGER_TABLE
            for o in self.objects
        )

    def ledger_row(self, row: tuple[Any, ...]) -> None:
        """One ledger row (a row of an unknown kind is skipped; an owner row names the owner)."""
        tenant, object_name, kind, definition_hash, depends_on = row
        name, value = object_name or "", definition_hash or ""
        if name == ledger.OWNER_ROW:
            self.owners[tenant] = value
            kind = kind if kind in _OBJECT_KINDS else "Schema"
            entry = self._owner_rows_before.get(tenant)
        elif kind not in _OBJECT_KINDS:
            log.warning("ignoring ledger row %s/%s with unknown kind %r", tenant, object_name, kind)
            return
        else:
            rows = self._before.get(tenant)
            entry = rows[1].get(name) if rows is not None else None
        if (
            entry is None
            or entry.hash != value
            or entry.kind != kind
            or ledger.encode_depends(entry.depends_on) != (depends_on or "")
        ):  # new or changed (or its dependencies written in another form)
            entry = LedgerEntry(
                tenant=_shared(tenant),
                name=_shared(name),
                kind=cast(ObjectKind, _shared(kind)),
                hash=value,
                depends_on=tuple(_shared(d) for d in ledger.decode_depends(depends_on)),
            )
        self.entries.append(entry)

    def snapshot(
        self,
        endpoint_key: str,
        *,
        schema_rows: Rows,
        user_rows: Rows,
        progress_rows: Rows,
        ledger_exists: bool,
    ) -> CatalogSnapshot:
        users = frozenset(name for (name,) in user_rows)
        return CatalogSnapshot(
            endpoint=endpoint_key,
            schemas=frozenset(name for _, name in schema_rows),
            objects=tuple(self.objects),
            ledger=tuple(self.entries),
            owners=self.owners,
            # every tenant's slice holds the endpoint's users: one set shared by every read
            # that finds the same users compares equal by identity, not user by user
            users=self._users_before if users == self._users_before else users,
            ddl_progress=_progress(progress_rows, self.by_id),
            ledger_exists=ledger_exists,
            taken_at=time.monotonic(),
        )


def _shared(text: str) -> str:
    """One string object for each kind, schema and object name, however many rows repeat it.

    Each row brings its own copies: every tenant has the same object names, each of a tenant's
    rows repeats its schema, and the snapshot is held for the whole fleet (two of them while a
    newer read replaces the older one)."""
    return sys.intern(text) if isinstance(text, str) else text


def _progress(progress_rows: Rows, by_id: Mapping[int, str]) -> dict[str, str]:
    """The progress of each running DDL job, by the qualified name of the object it builds."""
    progress: dict[str, str] = {}
    for ddl_id, statement, value in progress_rows:
        qualified = by_id.get(int(ddl_id)) if ddl_id is not None else None
        if qualified is None:
            qualified = _name_from_ddl(statement or "")
        if qualified is not None:
            progress[qualified] = str(value)
    return progress


def _name_from_ddl(statement: str) -> str | None:
    """``schema.name`` from a DDL statement head (for jobs not yet listed in the catalog)."""
    m = _DDL_NAME.match(statement)
    if m is None:
        return None
    parts = [
        p[1:-1].replace('""', '"') if p.startswith('"') else p.lower()
        for p in re.findall(r'"(?:[^"]|"")+"|[^.]+', m.group("name"))
    ]
    if len(parts) == 1:
        parts.insert(0, "public")
    return ".".join(parts[-2:])


_KIND_WORDS = re.compile(
    r"""^\s*(?P<verb>[A-Za-z]+)
        (?:\s+(?P<obj>OR\s+REPLACE\s+(?:MATERIALIZED\s+)?VIEW|MATERIALIZED\s+VIEW|(?!IF\b)[A-Za-z]+))?""",
    re.VERBOSE,
)
_OBJECT_VERBS = frozenset({"CREATE", "DROP", "ALTER", "SHOW", "COMMENT"})


def statement_kind(statement: str) -> str:
    """A short, secret-free label: ``CREATE MATERIALIZED VIEW``, ``INSERT``, ``FLUSH``, ..."""
    m = _KIND_WORDS.match(statement)
    if m is None:
        return "statement"
    verb = m.group("verb").upper()
    obj = m.group("obj")
    if verb in _OBJECT_VERBS and obj:
        return f"{verb} {' '.join(obj.upper().split())}"
    return verb


_ECHO_LINE = re.compile(r"^\s*LINE \d+:")
_CARET_LINE = re.compile(r"\s*\^\s*")


def safe_message(message: str, sensitive: Iterable[str]) -> str:
    """A server message fit to keep: the statement echo dropped, credentials removed.

    RisingWave's parser errors echo the statement line (``LINE 1: ...``) with a caret; those lines
    are replaced by a marker (the statement text is never kept). What remains is untrusted text
    from the server; every credential value that was sent with the statement (``sensitive``: known
    exactly, because render records which credentials each statement embeds) is removed from it in
    every encoding it could be echoed in (:func:`charging_analytics.redaction.scrub`).
    """
    lines: list[str] = []
    skip_caret = False
    for line in message.splitlines():
        if _ECHO_LINE.match(line):
            lines.append("LINE n: (statement text omitted)")
            skip_caret = True
            continue
        if skip_caret and _CARET_LINE.fullmatch(line):
            skip_caret = False
            continue
        skip_caret = False
        lines.append(line)
    return scrub("\n".join(lines), sensitive)


def _map_error(
    error: psycopg.Error, sensitive: Iterable[str], kind: str, endpoint_key: str
) -> RisingWaveError:
    sqlstate = error.sqlstate
    diag = error.diag
    primary = diag.message_primary or str(error) or type(error).__name__
    detail = diag.message_detail
    hint = diag.message_hint
    message = "\n".join(p for p in (primary, f"DETAIL: {detail}" if detail else None,
                                     f"HINT: {hint}" if hint else None) if p)  # fmt: skip
    message = safe_message(message, sensitive)
    connection_lost = sqlstate is None or sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    if connection_lost and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return RisingWaveUnavailable(
            f"lost connection to RisingWave at {endpoint_key} during {kind}: {message}"
        )
    if sqlstate == "57014":
        return RisingWaveStatementTimeout(sqlstate=sqlstate, message=message, statement_kind=kind)
    return RisingWaveStatementError(sqlstate=sqlstate, message=message, statement_kind=kind)
