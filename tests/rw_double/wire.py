"""PostgreSQL wire protocol (v3) server of the RisingWave DOUBLE.

Covers what psycopg 3 / libpq use against RisingWave (docs/risingwave.md §13): SSLRequest/GSSENCRequest
answered ``N``; trust or cleartext-password authentication; the simple Query protocol
(RowDescription, DataRow, CommandComplete, EmptyQueryResponse, ErrorResponse with SQLSTATE,
NoticeResponse, ReadyForQuery); a minimal extended protocol (Parse/Bind/Describe/Execute/Sync/
Close/Flush, text format only) for callers that pass bind parameters; CancelRequest; Terminate.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import re
import ssl
import struct
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Literal

from .engine import Engine, Outcome, Session, classify
from .errors import QUERY_CANCELED, SqlError
from .sqltext import split_statements, tokenize

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608


@dataclass
class StatementRecord:
    """One statement the double received (for assertions in tests)."""

    session: int
    user: str
    sql: str
    at: float
    protocol: str = "simple"  # simple | extended (Parse/Bind/Execute)
    outcome: str = "running"  # ok | error | cancelled | injected | running
    error: str | None = None
    sqlstate: str | None = None


@dataclass
class Injection:
    """A failure to inject on the next statement matching ``pattern`` (see ``fail_next``)."""

    pattern: re.Pattern[str]
    error: SqlError | None
    after: bool  # apply the statement first, then fail (e.g. a crash right after the DDL)
    disconnect: bool  # drop the connection instead of answering
    fired: bool = False
    statement: str | None = None


UnreachableMode = Literal["refuse", "hang"] | None


@dataclass
class Knobs:
    latency: float = 0.0
    injections: deque[Injection] = field(default_factory=deque)
    records: list[StatementRecord] = field(default_factory=list)
    #: Empty queries received (what a connection pool's health check sends); not in ``records``.
    empty_queries: int = 0
    #: CPU seconds the engine spent executing statements (benchmarks: how busy a client kept it).
    engine_seconds: float = 0.0

    def take_injection(self, sql: str) -> Injection | None:
        for inj in list(self.injections):
            if inj.pattern.search(sql):
                self.injections.remove(inj)
                inj.fired, inj.statement = True, sql
                return inj
        return None


class _Disconnect(Exception):
    """Drop the client connection without a reply (simulated crash)."""


@dataclass
class _Conn:
    writer: asyncio.StreamWriter
    #: Messages written but not yet sent: RisingWave's frontend writes a response's messages into
    #: its stream's buffer (``PgStream::write_no_flush``: every DataRow of a simple query, then
    #: CommandComplete and ReadyForQuery) and sends them with one ``flush``
    #: (src/utils/pgwire/src/pg_protocol.rs, ``process_query_msg``), so a client reads a large
    #: result in few large chunks, not a row per chunk.
    out: bytearray = field(default_factory=bytearray)
    session: Session | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False


_pids = itertools.count(1000)


class WireServer:
    def __init__(
        self, engine: Engine, knobs: Knobs, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.engine = engine
        self.tls = tls
        self.knobs = knobs
        self.host = host
        self.port = 0
        self.unreachable: UnreachableMode = None
        self._server: asyncio.Server | None = None
        self._conns: dict[int, _Conn] = {}  # by pid
        self._writers: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.drop_connections()

    def drop_connections(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def set_unreachable(self, mode: UnreachableMode) -> None:
        self.unreachable = mode
        if mode == "refuse":
            if self._server is not None:
                self._server.close()
                self._server = None
            self.drop_connections()
        elif mode == "hang":
            self.drop_connections()
            if self._server is None:
                await self.start()
        elif self._server is None:
            await self.start()

    # ------------------------------------------------------------------ connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        conn = _Conn(writer)
        try:
            if self.unreachable == "hang":
                await asyncio.Event().wait()  # accept, then never answer (a black hole)
            if not await self._startup(reader, conn):
                return
            await self._serve(reader, conn)
        except (ConnectionError, asyncio.IncompleteReadError, _Disconnect):
            pass
        finally:
            self._writers.discard(writer)
            if conn.session is not None:
                self._conns.pop(conn.session.pid, None)
            with contextlib.suppress(Exception):
                writer.transport.abort()

    async def _startup(self, reader: asyncio.StreamReader, conn: _Conn) -> bool:
        while True:
            length = struct.unpack("!i", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code == SSL_REQUEST and self.tls is not None:
                # RisingWave's frontend answers 'S' and upgrades the stream when it was started
                # with RW_SSL_CERT and RW_SSL_KEY (TlsConfig::new_default and the SslRequest
                # handling in src/utils/pgwire/src/pg_protocol.rs, v2.3.0 ... v3.0.3); it asks
                # for no client certificate.
                conn.writer.write(b"S")
                await conn.writer.drain()  # before any message: nothing is buffered yet
                await conn.writer.start_tls(self.tls)
                continue
            if code in (SSL_REQUEST, GSSENC_REQUEST):
                conn.writer.write(b"N")
                await conn.writer.drain()  # before any message: nothing is buffered yet
                continue
            if code == CANCEL_REQUEST:
                pid, key = struct.unpack("!ii", body[4:12])
                target = self._conns.get(pid)
                session = target.session if target is not None else None
                if target is not None and session is not None and session.secret_key == key and target.busy:
                    target.cancel.set()
                return False
            if code >> 16 != 3:
                await self._fatal(conn, SqlError("unsupported frontend protocol", "0A000", severity="FATAL"))
                return False
            params = _cstrings(body[4:])
            startup = dict(zip(params[::2], params[1::2], strict=False))
            if code != PROTOCOL_3 or any(k.startswith("_pq_.") for k in startup):
                unknown = [k for k in startup if k.startswith("_pq_.")]
                payload = struct.pack("!ii", 0, len(unknown)) + b"".join(_c(k) for k in unknown)
                self._send(conn, b"v", payload)
            break
        user_name = startup.get("user", "root")
        database = startup.get("database", user_name)
        password: str | None = None
        if self.engine.needs_password(user_name):
            self._send(conn, b"R", struct.pack("!i", 3))  # AuthenticationCleartextPassword
            await self._flush(conn)
            kind = await reader.readexactly(1)
            length = struct.unpack("!i", await reader.readexactly(4))[0]
            data = await reader.readexactly(length - 4)
            if kind != b"p":
                return False
            password = data.rstrip(b"\0").decode()
        try:
            user = self.engine.authenticate(user_name, database, password)
        except SqlError as e:
            await self._fatal(conn, e)
            return False
        pid = next(_pids)
        session = Session(pid, random.randint(1, 2**31 - 1), user, database)
        conn.session = session
        self._conns[pid] = conn
        self._send(conn, b"R", struct.pack("!i", 0))
        status = {
            "server_version": "13.14.0",
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY",
            "TimeZone": "UTC",
            "IntervalStyle": "postgres",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
            "application_name": startup.get("application_name", ""),
        }
        for key, value in status.items():
            self._send(conn, b"S", _c(key) + _c(value))
        self._send(conn, b"K", struct.pack("!ii", pid, session.secret_key))
        self._send(conn, b"Z", b"I")
        await self._flush(conn)
        return True

    async def _fatal(self, conn: _Conn, error: SqlError) -> None:
        self._send_error(conn, error)
        await self._flush(conn)

    # ------------------------------------------------------------------ messages

    async def _serve(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        assert conn.session is not None
        prepared: dict[str, tuple[str, list[int]]] = {}
        portals: dict[str, _Portal] = {}
        skip_until_sync = False
        txn_status = "I"
        while True:
            kind = await reader.readexactly(1)
            length = struct.unpack("!i", await reader.readexactly(4))[0]
            body = await reader.readexactly(length - 4)
            if kind == b"X":
                return
            if kind == b"Q":
                txn_status = await self._simple_query(conn, body.rstrip(b"\0").decode())
                self._send(conn, b"Z", txn_status.encode())
                await self._flush(conn)
                continue
            if kind == b"S":
                skip_until_sync = False
                self._send(conn, b"Z", txn_status.encode())
                await self._flush(conn)
                continue
            if kind == b"H":
                await self._flush(conn)
                continue
            if skip_until_sync:
                continue
            try:
                await self._extended(conn, kind, body, prepared, portals)
            except SqlError as e:
                self._send_error(conn, e)
                skip_until_sync = True

    async def _simple_query(self, conn: _Conn, text: str) -> str:
        session = conn.session
        assert session is not None
        try:
            statements = split_statements(text)
        except SqlError as e:
            self._send_error(conn, e)
            return "I"
        if not statements:
            self.knobs.empty_queries += 1
            self._send(conn, b"I", b"")
            return "I"
        status = "I"
        for sql in statements:
            try:
                outcome = await self._run(conn, sql)
            except SqlError as e:
                self._send_error(conn, e)
                return "E" if session.read_only_txn else "I"
            self._send_outcome(conn, outcome, describe=True)
            status = outcome.txn_status if outcome.tag == "BEGIN" else ("T" if session.read_only_txn else "I")
        return status

    async def _run(self, conn: _Conn, sql: str, protocol: str = "simple") -> Outcome:
        """Execute one statement with the knobs applied (latency, timeouts, injected failures)."""
        session = conn.session
        assert session is not None
        kind = classify(sql)
        record = StatementRecord(session.pid, session.user.name, sql, time.time(), protocol)
        if kind != "empty":
            self.knobs.records.append(record)
        else:
            self.knobs.empty_queries += 1
        conn.cancel.clear()
        conn.busy = True
        try:
            injection = self.knobs.take_injection(sql) if kind != "empty" else None
            if injection is not None and not injection.after:
                record.outcome = "injected"
                self._inject(conn, injection)
            if self.knobs.latency > 0 and kind not in ("session", "empty"):
                timeout_ms = session.statement_timeout_ms
                # statement_timeout applies to batch queries (DQL) only in RisingWave (PR #13933)
                if kind == "dql" and timeout_ms and self.knobs.latency * 1000 >= timeout_ms:
                    await self._interruptible(conn, asyncio.sleep(timeout_ms / 1000))
                    raise SqlError("canceling statement due to statement timeout", QUERY_CANCELED)
                await self._interruptible(conn, asyncio.sleep(self.knobs.latency))
            began = time.thread_time()
            try:
                outcome = self.engine.execute(session, sql)
            finally:
                self.knobs.engine_seconds += time.thread_time() - began
            job = outcome.job
            if job is not None:
                try:
                    await self._interruptible(conn, job.done.wait())
                except SqlError:
                    self.engine.cancel_job(job, "cancelled by the client")  # docs/risingwave.md §12
                    raise
                if job.cancelled:
                    raise SqlError(f"Cancelled: {job.cancel_reason}")
            if outcome.wait_all:
                for bg in self.engine.background_jobs():
                    await self._interruptible(conn, bg.done.wait())
            if injection is not None and injection.after:
                record.outcome = "injected"
                self._inject(conn, injection)
            record.outcome = "ok"
            return outcome
        except SqlError as e:
            if record.outcome != "injected":
                record.outcome = "cancelled" if e.sqlstate == QUERY_CANCELED else "error"
            record.error, record.sqlstate = e.message, e.sqlstate
            raise
        finally:
            conn.busy = False

    def _inject(self, conn: _Conn, injection: Injection) -> None:
        if injection.disconnect:
            conn.writer.transport.abort()
            raise _Disconnect
        assert injection.error is not None
        raise injection.error

    async def _interruptible(self, conn: _Conn, awaitable: Awaitable[object]) -> None:
        """Await ``awaitable`` unless the client sends a CancelRequest first."""
        work = asyncio.ensure_future(awaitable)
        cancel = asyncio.ensure_future(conn.cancel.wait())
        try:
            done, _ = await asyncio.wait({work, cancel}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (work, cancel):
                if not fut.done():
                    fut.cancel()
        if cancel in done and work not in done:
            raise SqlError("canceling statement due to user request", QUERY_CANCELED)

    # ------------------------------------------------------------------ extended protocol

    async def _extended(
        self,
        conn: _Conn,
        kind: bytes,
        body: bytes,
        prepared: dict[str, tuple[str, list[int]]],
        portals: dict[str, _Portal],
    ) -> None:
        if kind == b"P":
            name, rest = _cstring(body)
            query, rest = _cstring(rest)
            (n,) = struct.unpack("!h", rest[:2])
            oids = list(struct.unpack(f"!{n}i", rest[2 : 2 + 4 * n]))
            prepared[name] = (query, oids)
            self._send(conn, b"1", b"")
        elif kind == b"B":
            portal, rest = _cstring(body)
            stmt, rest = _cstring(rest)
            if stmt not in prepared:
                raise SqlError(f'prepared statement "{stmt}" does not exist', "26000")
            query, oids = prepared[stmt]
            (nf,) = struct.unpack("!h", rest[:2])
            formats = list(struct.unpack(f"!{nf}h", rest[2 : 2 + 2 * nf]))
            rest = rest[2 + 2 * nf :]
            (np_,) = struct.unpack("!h", rest[:2])
            rest = rest[2:]
            values: list[bytes | None] = []
            for _ in range(np_):
                (ln,) = struct.unpack("!i", rest[:4])
                rest = rest[4:]
                if ln < 0:
                    values.append(None)
                else:
                    values.append(rest[:ln])
                    rest = rest[ln:]
            (nr,) = struct.unpack("!h", rest[:2])
            result_formats = list(struct.unpack(f"!{nr}h", rest[2 : 2 + 2 * nr]))
            if any(result_formats):
                raise SqlError("RisingWave double: binary result format is not supported", "0A000")
            fmts = [formats[i] if len(formats) > 1 else (formats[0] if formats else 0) for i in range(np_)]
            sql = _substitute(query, values, oids, fmts)
            portals[portal] = _Portal(sql)
            self._send(conn, b"2", b"")
        elif kind == b"D":
            target, name = body[:1], _cstring(body[1:])[0]
            if target == b"S":
                query, oids = prepared.get(name, ("", []))
                n = query.count("$")
                self._send(conn, b"t", struct.pack(f"!h{n}i", n, *([0] * n)))
                if classify(query) == "dql":
                    outcome = await self._run(
                        conn, _substitute(query, [None] * n, [0] * n, [0] * n), "extended"
                    )
                    self._send_row_description(conn, outcome)
                else:
                    self._send(conn, b"n", b"")
            else:
                p = portals.get(name)
                if p is None:
                    raise SqlError(f'portal "{name}" does not exist', "34000")
                if p.outcome is None:
                    p.outcome = await self._run(conn, p.sql, "extended")
                if p.outcome.columns is not None:
                    self._send_row_description(conn, p.outcome)
                else:
                    self._send(conn, b"n", b"")
        elif kind == b"E":
            name, _ = _cstring(body)
            p = portals.get(name)
            if p is None:
                raise SqlError(f'portal "{name}" does not exist', "34000")
            if p.outcome is None:
                p.outcome = await self._run(conn, p.sql, "extended")
            self._send_outcome(conn, p.outcome, describe=False)
        elif kind == b"C":
            target, name = body[:1], _cstring(body[1:])[0]
            (prepared if target == b"S" else portals).pop(name, None)
            self._send(conn, b"3", b"")
        else:
            raise SqlError(f"RisingWave double: unsupported message {kind!r}", "08P01")

    # ------------------------------------------------------------------ writing

    def _send(self, conn: _Conn, kind: bytes, payload: bytes) -> None:
        conn.out += kind + struct.pack("!i", len(payload) + 4) + payload

    async def _flush(self, conn: _Conn) -> None:
        """Send what :meth:`_send` buffered, in one write."""
        if conn.out:
            conn.writer.write(bytes(conn.out))
            conn.out.clear()
        await conn.writer.drain()

    def _send_error(self, conn: _Conn, error: SqlError) -> None:
        fields = [
            (b"S", error.severity),
            (b"V", error.severity),
            (b"C", error.sqlstate),
            (b"M", error.message),
        ]
        if error.detail:
            fields.append((b"D", error.detail))
        if error.hint:
            fields.append((b"H", error.hint))
        self._send(conn, b"E", b"".join(k + _c(v) for k, v in fields) + b"\0")

    def _send_notice(self, conn: _Conn, message: str) -> None:
        fields = [(b"S", "NOTICE"), (b"V", "NOTICE"), (b"C", "00000"), (b"M", message)]
        self._send(conn, b"N", b"".join(k + _c(v) for k, v in fields) + b"\0")

    def _send_row_description(self, conn: _Conn, outcome: Outcome) -> None:
        cols = outcome.columns or []
        payload = struct.pack("!h", len(cols))
        for name, oid in cols:
            payload += _c(name) + struct.pack("!ihihih", 0, 0, oid, -1, -1, 0)
        self._send(conn, b"T", payload)

    def _send_outcome(self, conn: _Conn, outcome: Outcome, *, describe: bool) -> None:
        for notice in outcome.notices:
            self._send_notice(conn, notice)
        for key, setting in outcome.parameter_status.items():
            self._send(conn, b"S", _c(key) + _c(setting))
        if outcome.empty:
            self._send(conn, b"I", b"")
            return
        if outcome.columns is not None:
            if describe:
                self._send_row_description(conn, outcome)
            for row in outcome.rows:
                payload = struct.pack("!h", len(row))
                for value in row:
                    if value is None:
                        payload += struct.pack("!i", -1)
                    else:
                        data = value.encode()
                        payload += struct.pack("!i", len(data)) + data
                self._send(conn, b"D", payload)
        self._send(conn, b"C", _c(outcome.tag))


@dataclass
class _Portal:
    sql: str
    outcome: Outcome | None = None


def _c(text: str) -> bytes:
    return text.encode() + b"\0"


def _cstring(data: bytes) -> tuple[str, bytes]:
    end = data.index(b"\0")
    return data[:end].decode(), data[end + 1 :]


def _cstrings(data: bytes) -> list[str]:
    return [p.decode() for p in data.split(b"\0") if p]


_NUMERIC_OIDS = {20, 21, 23, 700, 701, 1700, 26}


def _substitute(query: str, values: list[bytes | None], oids: list[int], formats: list[int]) -> str:
    """Inline bind parameters as literals (the engine only sees complete SQL text)."""
    tokens = tokenize(query)
    out: list[str] = []
    pos = 0
    for tok in tokens:
        if tok.kind != "param":
            continue
        idx = int(tok.text[1:]) - 1
        if idx >= len(values):
            raise SqlError(f"there is no parameter {tok.text}", "42P02")
        out.append(query[pos : tok.start])
        out.append(_literal(values[idx], oids[idx] if idx < len(oids) else 0, formats[idx]))
        pos = tok.end
    out.append(query[pos:])
    return "".join(out)


def _literal(value: bytes | None, oid: int, fmt: int) -> str:
    if value is None:
        return "NULL"
    if fmt == 1:
        if oid == 16:
            return "TRUE" if value != b"\0" else "FALSE"
        if oid in (20, 21, 23):
            return str(int.from_bytes(value, "big", signed=True))
        if oid == 701:
            return repr(struct.unpack("!d", value)[0])
        if oid == 700:
            return repr(struct.unpack("!f", value)[0])
        text = value.decode()
    else:
        text = value.decode()
    if oid in _NUMERIC_OIDS and re.fullmatch(r"-?\d+(\.\d+)?([eE][+-]?\d+)?", text):
        return text
    if oid == 16:
        return "TRUE" if text.lower() in ("t", "true", "1") else "FALSE"
    return "'" + text.replace("'", "''") + "'"
