"""``RisingWaveDouble``: the RisingWave DOUBLE running in a background thread.

The double serves the PostgreSQL wire protocol on ``127.0.0.1:<random port>`` from its own
event loop, so synchronous and asynchronous tests can both talk to it through psycopg (or the
operator's ``RisingWaveClient``). Knobs are plain attributes/methods, safe to call from the test
thread.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .catalog import Relation
from .engine import (
    DEFAULT_VERSION,
    Engine,
    EngineConfig,
    Outcome,
    Session,
    TimeoutUnits,
    classify,
    parse_version,
)
from .errors import SqlError
from .sqltext import split_statements
from .wire import Injection, Knobs, StatementRecord, UnreachableMode, WireServer

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    """A catalog object as the double sees it (for assertions)."""

    id: int
    kind: str  # source | table | materialized view | view | sink | secret
    schema: str
    name: str
    owner: str
    definition: str
    depends_on: tuple[str, ...]  # qualified names of the objects it reads from
    status: str  # Created | Creating

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class RisingWaveDouble:
    """A RisingWave stand-in for tests (NOT RisingWave). See ``tests/rw_double/__init__.py``."""

    def __init__(
        self,
        *,
        license: bool = False,
        statement_timeout_units: TimeoutUnits = "required",
        root_password: str | None = None,
        version: str = DEFAULT_VERSION,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """``tls``: (certificate, key) PEM files, as RisingWave's ``RW_SSL_CERT`` / ``RW_SSL_KEY``."""
        self._tls: ssl.SSLContext | None = None
        if tls is not None:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(tls[0], tls[1])
        self._config = EngineConfig(
            license=license,
            statement_timeout_units=statement_timeout_units,
            root_password=root_password,
            version=version,
        )
        self._knobs = Knobs()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: Engine | None = None
        self._server: WireServer | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RisingWaveDouble:
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="risingwave-double", daemon=True)
        self._thread.start()
        ready.wait()
        self._engine = Engine(self._config)
        self._engine.attach_loop(loop)
        self._server = WireServer(self._engine, self._knobs, tls=self._tls)
        self.port = self._call(self._server.start())
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        server = self._server

        async def shutdown() -> None:
            if server is not None:
                await server.stop()
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        self._call(shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> RisingWaveDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        assert self._loop is not None, "the double is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self._call(wrapper())

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "the double is not started"
        return self._engine

    # ------------------------------------------------------------------ connection info

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def dsn(self) -> str:
        auth = "root"
        if self._config.root_password:
            auth += ":" + self._config.root_password
        return f"postgresql://{auth}@{self.host}:{self.port}/dev?sslmode=disable"

    # ------------------------------------------------------------------ knobs

    @property
    def version(self) -> str:
        """The RisingWave version imitated (``"2.3.0"``): what ``SELECT version()`` reports and
        which version-dependent statements are rejected."""
        return self._config.version

    @version.setter
    def version(self, value: str) -> None:
        parse_version(value)  # "X.Y.Z" or ValueError
        self._config.version = value

    @property
    def license(self) -> bool:
        """Premium features (secrets, docs/risingwave.md §7) available."""
        return self._config.license

    @license.setter
    def license(self, value: bool) -> None:
        self._config.license = value

    @property
    def latency(self) -> float:
        """Seconds every statement (except SET/SHOW/BEGIN/...) takes before it runs."""
        return self._knobs.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._knobs.latency = seconds

    @property
    def unreachable(self) -> UnreachableMode:
        return self._server.unreachable if self._server else None

    @unreachable.setter
    def unreachable(self, mode: UnreachableMode | bool) -> None:
        """True/"refuse": stop listening and drop connections; "hang": accept and never answer."""
        resolved: UnreachableMode = "refuse" if mode is True else (None if mode is False else mode)
        assert self._server is not None
        self._call(self._server.set_unreachable(resolved))

    def drop_connections(self) -> None:
        """Close every client connection now (a RisingWave frontend restart, say)."""
        assert self._server is not None
        server = self._server
        self._on_loop(server.drop_connections)

    def set_backfill(self, *, seconds: float | None = None, polls: int | None = None) -> None:
        """New MVs (and foreground sinks) backfill before completing (docs/risingwave.md §12).

        ``seconds``: the job completes after that long. ``polls``: it completes once
        ``rw_ddl_progress`` has been read that many times (it shows in the first ``polls`` reads).
        Both None: objects complete instantly.
        """
        self._config.backfill_seconds = seconds
        self._config.backfill_polls = polls

    @property
    def dml_visibility_delay(self) -> float | None:
        return self._config.dml_visibility_delay

    @dml_visibility_delay.setter
    def dml_visibility_delay(self, seconds: float | None) -> None:
        self._config.dml_visibility_delay = seconds

    def fail_next(
        self,
        pattern: str,
        error: SqlError | str | None = None,
        *,
        after: bool = False,
        disconnect: bool = False,
        sqlstate: str = "XX000",
    ) -> Injection:
        """Make the next statement matching ``pattern`` (a regex, case-insensitive) fail.

        ``error``: the message (or a ``SqlError``) the client gets. ``after=True`` applies the
        statement first and fails afterwards (the DDL happened, the client saw an error).
        ``disconnect=True`` drops the connection instead of answering (a crash mid-apply).
        """
        if isinstance(error, str) or error is None:
            error = None if disconnect and error is None else SqlError(error or "injected failure", sqlstate)
        injection = Injection(re.compile(pattern, re.IGNORECASE), error, after, disconnect)
        self._knobs.injections.append(injection)
        return injection

    # ------------------------------------------------------------------ observation

    @property
    def records(self) -> list[StatementRecord]:
        return list(self._knobs.records)

    @property
    def statements(self) -> list[str]:
        """Every statement received, in order, across sessions (empty queries excluded)."""
        return [r.sql for r in self._knobs.records]

    def clear_statements(self) -> None:
        self._knobs.records.clear()
        self._knobs.empty_queries = 0
        self._knobs.engine_seconds = 0.0

    @property
    def engine_seconds(self) -> float:
        """CPU seconds spent executing statements since the last ``clear_statements``."""
        return self._knobs.engine_seconds

    @property
    def empty_queries(self) -> int:
        """Empty queries received since the last ``clear_statements`` (pool health checks)."""
        return self._knobs.empty_queries

    def statement_counts(self) -> dict[str, int]:
        """Statements received since the last ``clear_statements``, by kind.

        ``ddl`` (CREATE/DROP/ALTER/GRANT/...), ``dml`` (INSERT/DELETE/UPDATE), ``flush``,
        ``select`` (reads), ``session`` (SET/SHOW/...) and ``empty`` (health checks).
        """
        counts = dict.fromkeys(("ddl", "dml", "flush", "select", "session"), 0)
        for record in self._knobs.records:
            kind = classify(record.sql)
            if kind == "ddl" and record.sql.lstrip()[:5].upper() == "FLUSH":
                kind = "flush"
            counts["select" if kind == "dql" else kind] += 1
        counts["empty"] = self._knobs.empty_queries
        return counts

    def objects(self) -> list[ObjectInfo]:
        def collect() -> list[ObjectInfo]:
            c = self.engine.catalog
            out = []
            for rel in sorted(c.relations.values(), key=lambda r: r.id):
                out.append(self._info(rel))
            return out

        return self._on_loop(collect)

    def object(self, qualified: str) -> ObjectInfo | None:
        return next((o for o in self.objects() if o.qualified == qualified), None)

    def _info(self, rel: Relation) -> ObjectInfo:
        c = self.engine.catalog
        deps = tuple(c.qualified(c.relations[d]) for d in rel.depends_on if d in c.relations)
        owner = c.users[rel.owner].name if rel.owner in c.users else str(rel.owner)
        return ObjectInfo(
            rel.id,
            rel.kind,
            c.schemas[rel.schema_id].name,
            rel.name,
            owner,
            c.definition(rel),
            deps,
            rel.status,
        )

    def schemas(self) -> list[str]:
        return self._on_loop(lambda: [s.name for s in self.engine.catalog.schemas.values()])

    def users(self) -> list[str]:
        return self._on_loop(lambda: [u.name for u in self.engine.catalog.users.values()])

    def privileges(self, user: str) -> set[tuple[str, str, str]]:
        """(privilege, object kind, object name) granted to ``user``."""

        def collect() -> set[tuple[str, str, str]]:
            c = self.engine.catalog
            found = c.user_by_name(user)
            if found is None:
                return set()
            out = set()
            for g in c.grants:
                if g.user_id != found.id:
                    continue
                if g.object_kind == "schema":
                    name = c.schemas[g.object_id].name if g.object_id in c.schemas else "?"
                elif g.object_kind == "database":
                    name = "dev"
                else:
                    rel = c.relations.get(g.object_id)
                    name = c.qualified(rel) if rel else "?"
                out.add((g.privilege, g.object_kind, name))
            return out

        return self._on_loop(collect)

    def secret_value(self, qualified: str) -> str | None:
        def find() -> str | None:
            c = self.engine.catalog
            for rel in c.relations.values():
                if rel.kind == "secret" and c.qualified(rel) == qualified:
                    return rel.secret_value
            return None

        return self._on_loop(find)

    def connector_option(self, qualified: str, key: str) -> str | None:
        """The current value of a source's or sink's WITH option (as ALTER ... CONNECTOR WITH left it)."""

        def find() -> str | None:
            c = self.engine.catalog
            for rel in c.relations.values():
                if c.qualified(rel) == qualified and key in rel.options:
                    return rel.options[key].value
            return None

        return self._on_loop(find)

    def execute(self, sql: str, *, user: str = "root") -> Outcome:
        """Run statements directly on the engine (test setup without a client); errors raise."""

        def run() -> Outcome:
            engine = self.engine
            account = engine.catalog.user_by_name(user)
            assert account is not None, f"no user {user}"
            session = Session(0, 0, account)
            outcome = Outcome("EMPTY", empty=True)
            for stmt in split_statements(sql):
                outcome = engine.execute(session, stmt)
                if outcome.job is not None:
                    engine.complete_job(outcome.job)
            return outcome

        return self._on_loop(run)

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run a SELECT directly on the engine; rows come back text-encoded as on the wire."""
        return [tuple(row) for row in self.execute(sql).rows]
