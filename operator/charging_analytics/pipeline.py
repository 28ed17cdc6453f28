"""The tenant's pipeline as data: one entry per object RisingWave holds for a tenant.

This table is the one place that says which objects exist, in which order they are created, what
each reads, which credentials it embeds and when it is built at all. ``render`` walks it; the
placeholders of each template in ``sql/`` follow from it (the object's own placeholder is its
template's name, and each relation it reads is a placeholder named after that relation); the
docs' object table and the tests' expected object sets are checked against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from .catalog import ObjectKind
from .constants import SOURCE_NAME
from .spec import ChargingAnalyticsSpec
from .tls import TLS_PARTS, TlsPart, tls_parts

#: How credentials reach RisingWave: ``risingwave`` stores them as ``CREATE SECRET`` objects
#: (a licensed feature) that connectors reference; ``inline`` writes them into the WITH clause.
SecretStore = Literal["risingwave", "inline"]
#: Roles a credential plays (the fields of ``render.Credentials``).
Role = Literal["kafka", "alerts_db", "reader", "kafka_tls"]
Part = Literal["username", "password", "ca", "certificate", "private_key"]
PARTS: tuple[Part, ...] = ("username", "password")


@dataclass(frozen=True)
class Context:
    """What decides which entries a tenant gets."""

    spec: ChargingAnalyticsSpec
    secret_store: SecretStore


def _always(_: Context) -> bool:
    return True


@dataclass(frozen=True)
class Entry:
    """One object of the pipeline."""

    #: The object's name inside the tenant's schema (for the schema and the read-only user, the
    #: key of the entry; their names come from the tenant, see :func:`object_name`).
    key: str
    kind: ObjectKind
    #: Relations of the tenant this object reads (entries that are not built are left out).
    reads: tuple[str, ...] = ()
    #: The template in ``sql/`` (defaults to the key).
    template_name: str | None = None
    enabled: Callable[[Context], bool] = _always
    #: Credential roles the statement embeds; under the RisingWave secret store their secrets
    #: are dependencies of this object.
    roles: tuple[Role, ...] = ()
    #: For a Secret: the credential it holds.
    credential: tuple[Role, Part] | None = None
    #: The branch template this view contributes to the ``alerts`` view.
    alert_branch: str | None = None

    @property
    def template(self) -> str:
        return self.template_name or self.key


SCHEMA = "@schema"
READER = "@reader"


def reader_name(tenant: str) -> str:
    """The tenant's read-only RisingWave user."""
    return f"{tenant}_reader"


def object_name(entry: Entry, tenant: str) -> str:
    if entry.key == SCHEMA:
        return tenant
    if entry.key == READER:
        return reader_name(tenant)
    return entry.key


def _kafka_credentials(c: Context) -> bool:
    return c.spec.kafka.security.credentials_secret_ref is not None


def _postgres_sink(c: Context) -> bool:
    return c.spec.alerts.sinks.postgres is not None


def _stored(role_needed: Callable[[Context], bool]) -> Callable[[Context], bool]:
    def enabled(c: Context) -> bool:
        return c.secret_store == "risingwave" and role_needed(c)

    return enabled


def _secrets(
    role: Role, needed: Callable[[Context], bool], parts: tuple[Part, ...] = PARTS
) -> tuple[Entry, ...]:
    return tuple(
        Entry(
            f"{role}_{part}",
            "Secret",
            template_name="secret",
            enabled=_stored(needed),
            credential=(role, part),
        )
        for part in parts
    )


def _kafka_tls(part: TlsPart) -> Callable[[Context], bool]:
    """The brokers' TLS material: a secret for each part the spec's tlsSecretRef names."""

    def needed(c: Context) -> bool:
        return part in tls_parts(c.spec.kafka.security.tls_secret_ref)

    return needed


PIPELINE: tuple[Entry, ...] = (
    Entry(SCHEMA, "Schema", template_name="schema"),
    *_secrets("kafka", _kafka_credentials),
    *_secrets("alerts_db", _postgres_sink),
    *(e for part in TLS_PARTS for e in _secrets("kafka_tls", _kafka_tls(part), (part,))),
    Entry(SOURCE_NAME, "Source", roles=("kafka", "kafka_tls")),
    Entry("sessions", "MaterializedView", reads=(SOURCE_NAME,)),
    Entry("completed_sessions", "MaterializedView", reads=("sessions",)),
    Entry("active_sessions", "MaterializedView", reads=("sessions",)),
    Entry("active_sessions_live", "View", reads=("active_sessions",)),
    Entry("station_revenue", "MaterializedView", reads=("completed_sessions",)),
    Entry(
        "stalled_sessions",
        "MaterializedView",
        reads=("active_sessions",),
        alert_branch="alerts_stalled_session",
    ),
    Entry("status_intervals", "MaterializedView", reads=(SOURCE_NAME,)),
    Entry("status_minutes", "MaterializedView", reads=("status_intervals",)),
    Entry("connector_status_time", "MaterializedView", reads=("status_minutes",)),
    Entry("connector_uptime", "MaterializedView", reads=("connector_status_time",)),
    Entry("connector_status", "MaterializedView", reads=(SOURCE_NAME,)),
    Entry("connector_status_live", "View", reads=("connector_status",)),
    Entry(
        "connector_down",
        "MaterializedView",
        reads=("connector_status",),
        alert_branch="alerts_connector_down",
    ),
    Entry(
        "connector_faults",
        "MaterializedView",
        reads=("connector_status",),
        enabled=lambda c: c.spec.alerts.connector_faults,
        alert_branch="alerts_connector_fault",
    ),
    Entry(
        "low_availability",
        "MaterializedView",
        reads=("connector_uptime",),
        enabled=lambda c: c.spec.alerts.availability_below_percent is not None,
        alert_branch="alerts_low_availability",
    ),
    Entry(
        "alerts",
        "MaterializedView",
        reads=("stalled_sessions", "connector_down", "connector_faults", "low_availability"),
    ),
    Entry(
        "alerts_to_kafka",
        "Sink",
        reads=("alerts",),
        roles=("kafka", "kafka_tls"),
        enabled=lambda c: c.spec.alerts.sinks.kafka is not None,
    ),
    Entry("alerts_to_postgres", "Sink", reads=("alerts",), roles=("alerts_db",), enabled=_postgres_sink),
    Entry(READER, "User", template_name="reader_user", enabled=lambda c: c.spec.read_only_user.enabled),
)

BY_KEY: dict[str, Entry] = {e.key: e for e in PIPELINE}


def entries(context: Context) -> Iterator[Entry]:
    """The entries this tenant gets, in creation (dependency) order."""
    return (e for e in PIPELINE if e.enabled(context))


def dependencies(entry: Entry, built: set[str]) -> tuple[str, ...]:
    """What ``entry`` depends on among the ``built`` keys: the relations it reads, then the
    secrets of the credentials it embeds."""
    reads = [r for r in entry.reads if r in built]
    secrets = [
        e.key
        for e in PIPELINE
        if e.credential is not None and e.credential[0] in entry.roles and e.key in built
    ]
    return (*reads, *secrets)
