"""Preconditions outside RisingWave: the Kafka topics and the PostgreSQL alert table.

Both checks send credentials (SASL, the alert database's user and password, and any TLS material
from a ``tlsSecretRef``); every message they keep from the remote side is scrubbed of exactly
those values first
(:func:`charging_analytics.redaction.scrub`), so a broker or server that echoes a user name or a
password cannot carry it into status, Events or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ..logs import client_logger, stable_text
from ..redaction import scrub
from ..render import Credential, Credentials, postgres_alerts_table
from ..rw.client import tls_failed
from ..spec import ChargingAnalyticsSpec
from ..status import Reason
from ..tls import PemFiles, TlsMaterial
from . import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckFailure(Exception):
    """A precondition that needs the world (or a human) to change: becomes Stalled."""

    reason: Reason
    message: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


#: librdkafka error codes by the Stalled reason they mean (confluent_kafka.KafkaError names).
_KAFKA_REASONS = {
    Reason.KAFKA_AUTHENTICATION_FAILED: {"_AUTHENTICATION", "SASL_AUTHENTICATION_FAILED"},
    Reason.KAFKA_AUTHORIZATION_FAILED: {
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
    },
    Reason.KAFKA_UNREACHABLE: {"_RESOLVE", "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_SSL"},
}
_KAFKA_PRECEDENCE = (
    Reason.KAFKA_AUTHENTICATION_FAILED,
    Reason.KAFKA_AUTHORIZATION_FAILED,
    Reason.KAFKA_UNREACHABLE,
)


class _KafkaErrors:
    """What librdkafka reported (its error callback), to tell a DNS failure from a refused
    connection or a failed SASL handshake: the exception alone says only "Broker transport
    failure" for all of them.

    Checks of many resources share a client and run at once. A failed check reads what was
    reported since it began; a report made for another check at the same time concerns the same
    cluster with the same identity (the client's whole configuration), so it explains this
    failure as well."""

    #: reports kept (the newest): a check needs only those made while it ran
    KEPT = 64

    def __init__(self, sent: tuple[str, ...]) -> None:
        self.seen: deque[tuple[int, str, str]] = deque(maxlen=self.KEPT)
        self.count = 0  # reports so far
        self.sent = sent  # the credentials this client sent: never part of a message we keep

    def __call__(self, err: KafkaError) -> None:
        self.count += 1
        self.seen.append((self.count, err.name(), err.str()))

    def failure(self, fallback: KafkaError, servers: str, since: int) -> CheckFailure:
        """The failure of a check that began when ``count`` was ``since``."""
        found = [(name, text) for n, name, text in list(self.seen) if n > since]
        found.append((fallback.name(), fallback.str()))
        for reason in _KAFKA_PRECEDENCE:
            for name, text in found:
                if name in _KAFKA_REASONS[reason] and name != "_ALL_BROKERS_DOWN":
                    return CheckFailure(reason, f"Kafka {servers}: {self._text(text)}")
        return CheckFailure(Reason.KAFKA_UNREACHABLE, f"Kafka {servers}: {self._text(found[0][1])}")

    def _text(self, text: str) -> str:
        return scrub(stable_text(text), self.sent)


def _kafka_config(
    spec: ChargingAnalyticsSpec, cred: Credential | None, timeout: float, tls: TlsMaterial | None
) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": ",".join(spec.kafka.bootstrap_servers),
        "security.protocol": spec.kafka.security.protocol,
        "socket.timeout.ms": str(int(timeout * 1000)),
        "logger": client_logger("kafka", scrubbed=_sent(cred, tls)),
        # a metadata request names the topic it checks: it must never create it on a broker
        # with auto.create.topics.enable (the events topic would then never be "missing")
        "allow.auto.create.topics": "false",
    }
    if spec.kafka.security.sasl_mechanism is not None and cred is not None:
        conf["sasl.mechanism"] = spec.kafka.security.sasl_mechanism
        conf["sasl.username"] = cred.username
        conf["sasl.password"] = cred.password
    if tls is not None:
        conf.update(tls.librdkafka())  # PEM strings: librdkafka needs no files
    return conf


def _sent(cred: Credential | None, tls: TlsMaterial | None = None) -> tuple[str, ...]:
    sent = (cred.username, cred.password) if cred is not None else ()
    return sent + (tls.values() if tls is not None else ())


#: How long a Kafka admin client may go unused before it is closed. An open client keeps its
#: broker connections and several librdkafka threads that wake up on their own (about 0.3 % of a
#: core each, measured idle), and steady-state passes never use one: a client is needed when a
#: spec or a credential changes, or after a stall. Without the limit, a fleet whose tenants have
#: their own Kafka credentials would keep one client, and its threads, per tenant.
KAFKA_CLIENT_IDLE_SECONDS = 60.0


@dataclass
class _Admin:
    client: AdminClient
    errors: _KafkaErrors
    in_use: int = 0
    last_used: float = 0.0


class _Lease:
    """A client of :class:`KafkaAdmins` in use (a class, not a generator: a ``CheckFailure`` is
    frozen, and a generator's context manager would set its traceback on the way out)."""

    def __init__(self, admins: KafkaAdmins, key: str, admin: _Admin) -> None:
        self._admins, self._key, self._admin = admins, key, admin

    def __enter__(self) -> tuple[AdminClient, _KafkaErrors]:
        return self._admin.client, self._admin.errors

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        failed = kind is not None and issubclass(kind, CheckFailure)
        self._admins._release(self._key, self._admin, failed)


class KafkaAdmins:
    """One admin client per Kafka cluster and identity (the client's whole configuration), reused
    by every check: librdkafka keeps its broker connections, so a check is a metadata request for
    each topic it needs, not a new connection and handshake. Checks share the client at once
    (librdkafka is thread-safe): a burst of creates would otherwise wait, one topic creation after
    another, behind a single client. A client whose check failed is dropped (the next check
    connects afresh), and so is one unused for ``idle_seconds`` (:meth:`close_idle`)."""

    def __init__(
        self,
        idle_seconds: float = KAFKA_CLIENT_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._clients: dict[str, _Admin] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    def client(
        self, spec: ChargingAnalyticsSpec, cred: Credential | None, timeout: float, tls: TlsMaterial | None
    ) -> _Lease:
        """The client for this spec's cluster and identity, for a ``with`` block (it is not
        closed as idle meanwhile); if the block fails with a :class:`CheckFailure`, the client
        is dropped."""
        conf = _kafka_config(spec, cred, timeout, tls)
        key = hashlib.sha256(
            repr(sorted((k, v) for k, v in conf.items() if isinstance(v, str))).encode()
        ).hexdigest()  # the password is part of the identity: a rotated one gets a new client
        with self._lock:
            admin = self._clients.get(key)
            if admin is None:
                errors = _KafkaErrors(_sent(cred, tls))
                conf["error_cb"] = errors
                admin = _Admin(AdminClient(conf), errors)
                metrics.KAFKA_CLIENTS.inc()
                self._clients[key] = admin
            admin.in_use += 1
        return _Lease(self, key, admin)

    def _release(self, key: str, admin: _Admin, failed: bool) -> None:
        with self._lock:
            admin.in_use -= 1
            admin.last_used = self._clock()
            if failed and self._clients.get(key) is admin:
                del self._clients[key]

    def _unused(self) -> list[str]:
        """The clients unused for longer than ``idle_seconds`` (call with the lock held)."""
        since = self._clock() - self.idle_seconds
        return [k for k, a in self._clients.items() if a.in_use == 0 and a.last_used < since]

    def idle(self) -> bool:
        """Whether a client has gone unused for longer than ``idle_seconds``."""
        if not self._clients:
            return False
        with self._lock:
            return bool(self._unused())

    def close_idle(self) -> int:
        """Close the clients unused for longer than ``idle_seconds``; how many. A client is
        closed by its last reference going, which joins librdkafka's threads: this blocks, so
        it runs in a worker thread, never on the event loop."""
        with self._lock:
            closing = [self._clients.pop(k) for k in self._unused()]
        n = len(closing)
        while closing:
            # its last queued error callbacks and log lines; then the last reference goes
            closing.pop().client.poll(0)
        if n:
            log.debug("closed %d idle Kafka admin client(s)", n)
        return n


def _check_topics(
    spec: ChargingAnalyticsSpec,
    cred: Credential | None,
    timeout: float,
    create: bool,
    tls: TlsMaterial | None,
    admins: KafkaAdmins,
) -> list[str]:
    with admins.client(spec, cred, timeout, tls) as (admin, errors):
        metrics.KAFKA_CHECKS.inc()
        return _topics_on(admin, _Check(errors, errors.count), spec, cred, timeout, create, tls)


@dataclass(frozen=True)
class _Check:
    """The error reports of a client, as one check that began at report ``since`` reads them."""

    errors: _KafkaErrors
    since: int

    def failure(self, fallback: KafkaError, servers: str) -> CheckFailure:
        return self.errors.failure(fallback, servers, self.since)


def _topics_on(
    admin: AdminClient,
    errors: _Check,
    spec: ChargingAnalyticsSpec,
    cred: Credential | None,
    timeout: float,
    create: bool,
    tls: TlsMaterial | None,
) -> list[str]:
    servers = ",".join(spec.kafka.bootstrap_servers)
    events = _topic(admin, errors, spec.kafka.events_topic, servers, timeout)
    if events is not None and events.error is not None:
        raise errors.failure(events.error, servers)
    if events is None:
        raise CheckFailure(
            Reason.EVENTS_TOPIC_MISSING,
            f"events topic {spec.kafka.events_topic!r} does not exist on {servers}",
        )
    created: list[str] = []
    sink = spec.alerts.sinks.kafka
    if not create or sink is None:
        return created
    found = _topic(admin, errors, sink.topic, servers, timeout)
    if found is None:
        futures = admin.create_topics(
            [
                NewTopic(
                    sink.topic, num_partitions=sink.partitions, replication_factor=sink.replication_factor
                )
            ],
            request_timeout=timeout,
        )
        try:
            futures[sink.topic].result(timeout=timeout)
        except KafkaException as err:
            if "TOPIC_ALREADY_EXISTS" not in str(err.args[0]):
                raise CheckFailure(
                    Reason.ALERTS_TOPIC_FAILED,
                    f"cannot create alerts topic {sink.topic!r}: {scrub(str(err.args[0]), _sent(cred, tls))}",
                ) from None
        created.append(sink.topic)
    return created


#: Metadata errors of one named topic that mean "not there for this client", as a topic missing
#: from the cluster's whole listing did (a full listing leaves out topics the client may not see).
_NOT_LISTED = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED})


def _topic(admin: AdminClient, errors: _Check, name: str, servers: str, timeout: float) -> Any:
    """One topic's metadata (None: not there), from a metadata request for that topic alone: the
    cluster's whole listing grows with every tenant's alerts topic, so a fleet's checks would cost
    O(topics) each."""
    try:
        found = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
    except KafkaException as err:
        admin.poll(0)  # deliver the queued error callbacks and log lines
        raise errors.failure(err.args[0], servers) from None
    admin.poll(0)
    if found is None or (found.error is not None and found.error.code() in _NOT_LISTED):
        return None
    return found


async def check_kafka(
    spec: ChargingAnalyticsSpec,
    cred: Credential | None,
    timeout_s: float,
    *,
    create: bool = True,
    tls: TlsMaterial | None = None,
    admins: KafkaAdmins | None = None,
) -> list[str]:
    """Fail if the events topic is missing; create the alerts topic (unless ``create`` is False,
    as in Plan mode, which changes nothing). Returns the topics created. ``admins``: the
    clients to reuse (a one-off client without)."""
    reused = admins if admins is not None else KafkaAdmins()
    return await asyncio.to_thread(_check_topics, spec, cred, timeout_s, create, tls, reused)


async def ensure_postgres_table(
    spec: ChargingAnalyticsSpec, cred: Credential, timeout_s: float, *, tls: TlsMaterial | None = None
) -> bool:
    """Create the JDBC sink's target table (alert_id primary key) if it is missing."""
    ddl = postgres_alerts_table(spec)
    if ddl is None:
        return False
    await run_on_alerts_db(spec, cred, timeout_s, ddl, tls=tls)
    return True


async def run_on_alerts_db(
    spec: ChargingAnalyticsSpec,
    cred: Credential,
    timeout_s: float,
    statement: sql.Composable,
    *,
    tls: TlsMaterial | None = None,
) -> None:
    """Run one statement on the PostgreSQL alert database (table DDL, clearing the table)."""
    pg = spec.alerts.sinks.postgres
    if pg is None:
        return
    sent = _sent(cred, tls)
    metrics.POSTGRES_CONNECTIONS.inc()
    with PemFiles(tls) as files:  # libpq reads TLS material only from files
        try:
            conn = await psycopg.AsyncConnection.connect(
                make_conninfo(**files.libpq()),
                host=pg.host,
                port=pg.port,
                dbname=pg.database,
                user=cred.username,
                password=cred.password,
                sslmode=pg.sslmode,
                connect_timeout=max(1, int(timeout_s)),
                autocommit=True,
            )
        except psycopg.OperationalError as err:
            # The server's message echoes the user name ('password authentication failed for user
            # "..."'); every credential sent is scrubbed from it. ``from None``: the driver's
            # exception (and its text) is not kept as the cause either.
            text = str(err) or type(err).__name__
            first = text.splitlines()[0]
            raise CheckFailure(
                Reason.ALERTS_DATABASE_TLS_FAILED
                if tls_failed(pg.sslmode, text)
                else Reason.ALERTS_DATABASE_UNAVAILABLE,
                f"cannot connect to {pg.host}:{pg.port}/{pg.database} (sslmode {pg.sslmode}): "
                f"{scrub(first, sent)}",
            ) from None
        try:
            async with conn:
                await conn.execute(sql.Composed([statement]))
        except psycopg.Error as err:
            detail = scrub(str(err.diag.message_primary or err), sent)
            raise CheckFailure(Reason.ALERTS_TABLE_FAILED, f"{pg.schema_}.{pg.table}: {detail}") from None


class Prechecks:
    """The Kafka topics and the PostgreSQL alert table of each resource, checked when their inputs
    (the spec's parts they read, the credentials, the mode) differ from the last check that
    passed, or after the resource stalled (an error may mean the world changed): not on every
    pass, so a drift pass of a Ready tenant opens no Kafka or PostgreSQL connection."""

    def __init__(self, *, kafka: bool, postgres: bool, timeout: float) -> None:
        self.kafka = kafka
        self.postgres = postgres  # whether the operator manages the alert table at all
        self.timeout = timeout
        self.admins = KafkaAdmins()
        #: resource -> fingerprint of the inputs its checks last passed with
        self._passed: dict[str, str] = {}
        #: resource -> the inputs its fingerprint was last taken of, and that fingerprint: every
        #: pass asks, and the spec model is the same object for as long as the spec is unchanged
        self._taken: dict[str, tuple[ChargingAnalyticsSpec, Credentials, tuple[bool, ...], str]] = {}

    def forget(self, owner: str) -> None:
        """Check again next time (after a stall, or once the resource is deleted)."""
        self._passed.pop(owner, None)
        self._taken.pop(owner, None)

    def _fingerprint(
        self, owner: str, spec: ChargingAnalyticsSpec, creds: Credentials, switches: tuple[bool, ...]
    ) -> str:
        taken = self._taken.get(owner)
        if taken is not None and taken[0] is spec and taken[1] == creds and taken[2] == switches:
            return taken[3]
        fingerprint = _inputs(spec, creds, switches)
        self._taken[owner] = (spec, creds, switches, fingerprint)
        return fingerprint

    async def run(
        self, owner: str, spec: ChargingAnalyticsSpec, creds: Credentials, *, applying: bool
    ) -> list[str]:
        """Run the checks whose inputs changed; the alert topics created."""
        kafka = self.kafka
        postgres = applying and spec.alerts.sinks.postgres is not None and self.postgres
        if not kafka and not postgres:
            return []
        fingerprint = self._fingerprint(owner, spec, creds, (kafka, postgres, applying))
        if self._passed.get(owner) == fingerprint:
            if self.admins.idle():
                await asyncio.to_thread(self.admins.close_idle)
            return []
        self._passed.pop(owner, None)
        created: list[str] = []
        if kafka:
            created = await check_kafka(
                spec, creds.kafka, self.timeout, create=applying, tls=creds.kafka_tls, admins=self.admins
            )
        if postgres:
            assert creds.alerts_db is not None
            await ensure_postgres_table(spec, creds.alerts_db, self.timeout, tls=creds.alerts_db_tls)
        self._passed[owner] = fingerprint
        return created


def _inputs(spec: ChargingAnalyticsSpec, creds: Credentials, switches: tuple[bool, ...]) -> str:
    material = [
        spec.kafka.model_dump_json(),
        spec.alerts.sinks.model_dump_json(),
        str(switches),
        *(f"{cred.username}\0{cred.password}" for cred in (creds.kafka, creds.alerts_db) if cred),
        *(v for tls in (creds.kafka_tls, creds.alerts_db_tls) if tls is not None for v in tls.values()),
    ]
    return hashlib.sha256("\0".join(material).encode()).hexdigest()
