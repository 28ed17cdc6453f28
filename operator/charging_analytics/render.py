"""Render a ChargingAnalytics spec into the tenant's RisingWave objects (pure).

The statements come from the readable templates in ``sql/``; every value that reaches SQL is
composed with :mod:`psycopg.sql` (``Identifier`` for names, ``Literal`` for values). Credentials
never reach the *display* SQL: each object carries a redacted ``sql`` for plans, status and CLI
output, and an executable ``statement`` (kept out of ``repr``) for the RisingWave client.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

from psycopg import sql
from psycopg.sql import Composed

from .catalog import LEDGER_TABLE, SYSTEM_SCHEMA, ObjectKind
from .spec import ChargingAnalyticsSpec, CredentialsSecretRef, duration_seconds

REDACTED = "[redacted]"
_PARTS: tuple[Literal["username", "password"], ...] = ("username", "password")
SHADOW_SUFFIX = "__next"
SCHEMA_KEY = "@schema"

SecretStore = Literal["risingwave", "inline"]


def sql_dir() -> Path:
    """Where the templates live: ``$CHA_SQL_DIR`` or the repository's ``sql/``."""
    env = os.environ.get("CHA_SQL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "sql"


@functools.cache
def _template_text(directory: str, name: str) -> str:
    text = (Path(directory) / f"{name}.sql").read_text(encoding="utf-8")
    lines = text.splitlines()
    while lines and (lines[0].startswith("--") or not lines[0].strip()):
        lines.pop(0)  # the leading comment documents the file; it is not sent
    return "\n".join(lines).strip().rstrip(";")


def template(name: str) -> sql.SQL:
    return sql.SQL(_template_text(str(sql_dir()), name))


# --------------------------------------------------------------------------------------------
# Credentials (values resolved from Kubernetes Secrets by the shell; never logged)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    username: str = field(repr=False)
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credential(<redacted>)"


@dataclass(frozen=True)
class Credentials:
    """Credentials the pipeline needs, keyed by the role they play."""

    kafka: Credential | None = None
    alerts_db: Credential | None = None

    def __repr__(self) -> str:
        roles = [r for r in ("kafka", "alerts_db") if getattr(self, r) is not None]
        return f"Credentials(resolved={roles})"


@functools.lru_cache(maxsize=4096)
def secret_digest(value: str, salt: str) -> str:
    """Slow, salted digest of a credential: detects rotation without revealing the value."""
    return hashlib.scrypt(value.encode(), salt=salt.encode(), n=2**14, r=8, p=1, dklen=12).hex()


# --------------------------------------------------------------------------------------------
# Desired objects
# --------------------------------------------------------------------------------------------

_KIND_KEYWORD: Mapping[str, str] = {
    "Schema": "SCHEMA",
    "Source": "SOURCE",
    "MaterializedView": "MATERIALIZED VIEW",
    "View": "VIEW",
    "Sink": "SINK",
    "Table": "TABLE",
    "Secret": "SECRET",
}


@dataclass(frozen=True)
class DesiredObject:
    """One object of the tenant's pipeline, ready to be planned."""

    kind: ObjectKind
    schema: str
    name: str
    sql: str  # display form: credentials redacted
    depends_on: tuple[str, ...]
    hash: str
    statement: Composed = field(repr=False, compare=False)  # executable form
    display: Composed = field(repr=False, compare=False)
    #: Statement that updates the object in place instead of replacing it (secrets only).
    update_statement: Composed | None = field(default=None, repr=False, compare=False)
    #: Credentials that this object's executable statement needs but were not provided.
    unresolved: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The object's name inside the tenant (the schema itself is ``@schema``)."""
        return SCHEMA_KEY if self.kind == "Schema" else self.name

    @property
    def qualified(self) -> str:
        return self.name if self.kind == "Schema" else f"{self.schema}.{self.name}"

    @property
    def swappable(self) -> bool:
        """RisingWave (>= 2.2) can ``ALTER … SWAP WITH`` these kinds."""
        return self.kind in ("MaterializedView", "View")


def drop_statement(kind: ObjectKind, schema: str, name: str, *, cascade: bool = False) -> sql.Composed:
    ident = sql.Identifier(name) if kind == "Schema" else sql.Identifier(schema, name)
    return sql.SQL("DROP {} IF EXISTS {}{}").format(
        sql.SQL(_KIND_KEYWORD[kind]), ident, sql.SQL(" CASCADE" if cascade else "")
    )


def swap_statement(kind: ObjectKind, schema: str, name: str, other: str) -> sql.Composed:
    return sql.SQL("ALTER {} {} SWAP WITH {}").format(
        sql.SQL(_KIND_KEYWORD[kind]), sql.Identifier(schema, name), sql.Identifier(schema, other)
    )


def rebind(composed: sql.Composable, mapping: Mapping[tuple[str, ...], tuple[str, ...]]) -> sql.Composable:
    """Replace identifiers (by their parts) throughout a composed statement.

    The planner uses this to build a shadow copy of a view (``sessions`` -> ``sessions__next``)
    that reads other shadows, without re-rendering or touching any string.
    """
    if isinstance(composed, sql.Identifier):
        parts: tuple[str, ...] = tuple(composed._obj)
        return sql.Identifier(*mapping[parts]) if parts in mapping else composed
    if isinstance(composed, sql.Composed):
        return sql.Composed([rebind(part, mapping) for part in composed._obj])
    return composed


def as_text(composed: sql.Composable) -> str:
    return composed.as_string(None)


# --------------------------------------------------------------------------------------------
# The renderer
# --------------------------------------------------------------------------------------------


def _interval(seconds: int) -> sql.Composed:
    return sql.SQL("INTERVAL {}").format(sql.Literal(f"{seconds} seconds"))


def _csv(values: Iterable[str]) -> str:
    return ",".join(values)


@dataclass(frozen=True)
class RenderOptions:
    """How credentials reach RisingWave.

    ``risingwave``: ``CREATE SECRET`` objects, referenced as ``SECRET name`` (licensed feature).
    ``inline``: values written into the connector's WITH clause (the fallback; still redacted in
    every display form).
    """

    secret_store: SecretStore = "inline"
    credentials: Credentials | None = None


class _Builder:
    """Builds one rendering; ``reveal`` selects executable (True) or display (False) values."""

    def __init__(self, spec: ChargingAnalyticsSpec, options: RenderOptions, reveal: bool) -> None:
        self.spec = spec
        self.options = options
        self.reveal = reveal
        self.schema = spec.tenant
        self.unresolved: set[str] = set()

    def rel(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    # -- credentials -------------------------------------------------------------------------

    def _credential(self, role: str) -> Credential | None:
        creds = self.options.credentials
        return getattr(creds, role) if creds is not None else None

    def secret_name(self, role: str, part: str) -> str:
        return f"{role}_{part}"

    def credential_value(self, role: str, part: Literal["username", "password"]) -> sql.Composable:
        """The value of a credential as it appears in a connector's WITH clause."""
        if self.options.secret_store == "risingwave":
            return sql.SQL("SECRET {}").format(self.rel(self.secret_name(role, part)))
        return self.raw_credential(role, part)

    def raw_credential(self, role: str, part: Literal["username", "password"]) -> sql.Literal:
        cred = self._credential(role)
        if cred is None:
            self.unresolved.add(role)
            return sql.Literal(REDACTED)
        return sql.Literal(getattr(cred, part) if self.reveal else REDACTED)

    # -- clauses -----------------------------------------------------------------------------

    def kafka_security(self) -> sql.Composable:
        sec = self.spec.kafka.security
        parts: list[sql.Composable] = [
            sql.SQL(",\n    properties.security.protocol = {}").format(sql.Literal(sec.protocol))
        ]
        if sec.sasl_mechanism is not None:
            parts.append(
                sql.SQL(",\n    properties.sasl.mechanism = {}").format(sql.Literal(sec.sasl_mechanism))
            )
            parts.append(
                sql.SQL(",\n    properties.sasl.username = {}").format(
                    self.credential_value("kafka", "username")
                )
            )
            parts.append(
                sql.SQL(",\n    properties.sasl.password = {}").format(
                    self.credential_value("kafka", "password")
                )
            )
        return sql.Composed(parts)

    # -- objects -----------------------------------------------------------------------------

    def build(self) -> list[tuple[ObjectKind, str, sql.Composed, tuple[str, ...], sql.Composed | None]]:
        spec, a, al = self.spec, self.spec.analytics, self.spec.alerts
        retention = _interval(duration_seconds(a.state_retention))
        src = "ocpp_events"
        out: list[tuple[ObjectKind, str, sql.Composed, tuple[str, ...], sql.Composed | None]] = []

        def add(
            kind: ObjectKind,
            name: str,
            stmt: sql.Composed,
            deps: Sequence[str],
            update: sql.Composed | None = None,
        ) -> None:
            out.append((kind, name, stmt, tuple(deps), update))

        add("Schema", self.schema, template("schema").format(schema=sql.Identifier(self.schema)), ())

        secrets: list[str] = []
        if self.options.secret_store == "risingwave":
            needed: list[str] = []
            if spec.kafka.security.credentials_secret_ref is not None:
                needed.append("kafka")
            if al.sinks.postgres is not None:
                needed.append("alerts_db")
            for role in needed:
                for part in _PARTS:
                    name = self.secret_name(role, part)
                    value = self.raw_credential(role, part)
                    stmt = template("secret").format(secret=self.rel(name), value=value)
                    update = sql.SQL("ALTER SECRET {} WITH (backend = 'meta') AS {}").format(
                        self.rel(name), value
                    )
                    add("Secret", name, stmt, (), update)
                    secrets.append(name)
        kafka_secrets = [s for s in secrets if s.startswith("kafka_")]
        db_secrets = [s for s in secrets if s.startswith("alerts_db_")]

        add(
            "Source",
            src,
            template("ocpp_events").format(
                source=self.rel(src),
                late_event_tolerance=_interval(duration_seconds(a.late_event_tolerance)),
                topic=sql.Literal(spec.kafka.events_topic),
                bootstrap_servers=sql.Literal(_csv(spec.kafka.bootstrap_servers)),
                startup_mode=sql.Literal(spec.kafka.startup_mode),
                consumer_group_prefix=sql.Literal(spec.consumer_group_prefix),
                kafka_security=self.kafka_security(),
            ),
            kafka_secrets,
        )
        add(
            "MaterializedView",
            "sessions",
            template("sessions").format(
                sessions=self.rel("sessions"), source=self.rel(src), retention=retention
            ),
            [src],
        )
        prices: Mapping[str, Decimal] = a.tariffs.price_per_kwh.as_decimal()
        add(
            "MaterializedView",
            "completed_sessions",
            template("completed_sessions").format(
                completed_sessions=self.rel("completed_sessions"),
                sessions=self.rel("sessions"),
                price_ccs=sql.Literal(prices["CCS"]),
                price_chademo=sql.Literal(prices["CHAdeMO"]),
                price_type2=sql.Literal(prices["Type2"]),
                currency=sql.Literal(a.tariffs.currency),
            ),
            ["sessions"],
        )
        add(
            "MaterializedView",
            "active_sessions",
            template("active_sessions").format(
                active_sessions=self.rel("active_sessions"), sessions=self.rel("sessions")
            ),
            ["sessions"],
        )
        add(
            "View",
            "active_sessions_live",
            template("active_sessions_live").format(
                active_sessions_live=self.rel("active_sessions_live"),
                active_sessions=self.rel("active_sessions"),
            ),
            ["active_sessions"],
        )
        add(
            "MaterializedView",
            "station_revenue",
            template("station_revenue").format(
                station_revenue=self.rel("station_revenue"),
                completed_sessions=self.rel("completed_sessions"),
                revenue_window=_interval(duration_seconds(a.revenue_window)),
                currency=sql.Literal(a.tariffs.currency),
                retention=retention,
            ),
            ["completed_sessions"],
        )
        availability_slide = _interval(duration_seconds(a.availability_slide))
        add(
            "MaterializedView",
            "connector_availability",
            template("connector_availability").format(
                connector_availability=self.rel("connector_availability"),
                source=self.rel(src),
                availability_slide=availability_slide,
                availability_window=_interval(duration_seconds(a.availability_window)),
                retention=retention,
            ),
            [src],
        )
        add(
            "MaterializedView",
            "stalled_sessions",
            template("stalled_sessions").format(
                stalled_sessions=self.rel("stalled_sessions"),
                source=self.rel(src),
                retention=retention,
                stalled_after=_interval(al.stalled_session_minutes * 60),
            ),
            [src],
        )
        branches: list[sql.Composable] = [
            template("alerts_stalled_session").format(stalled_sessions=self.rel("stalled_sessions"))
        ]
        alert_deps = ["stalled_sessions"]
        if al.connector_faults:
            add(
                "MaterializedView",
                "connector_faults",
                template("connector_faults").format(
                    connector_faults=self.rel("connector_faults"), source=self.rel(src), retention=retention
                ),
                [src],
            )
            branches.append(
                template("alerts_connector_fault").format(connector_faults=self.rel("connector_faults"))
            )
            alert_deps.append("connector_faults")
        if al.availability_below_percent is not None:
            add(
                "MaterializedView",
                "low_availability",
                template("low_availability").format(
                    low_availability=self.rel("low_availability"),
                    connector_availability=self.rel("connector_availability"),
                    threshold_pct=sql.Literal(Decimal(str(al.availability_below_percent))),
                    availability_slide=availability_slide,
                ),
                ["connector_availability"],
            )
            branches.append(
                template("alerts_low_availability").format(low_availability=self.rel("low_availability"))
            )
            alert_deps.append("low_availability")
        add(
            "MaterializedView",
            "alerts",
            template("alerts").format(
                alerts=self.rel("alerts"), branches=sql.SQL("\nUNION ALL\n").join(branches)
            ),
            alert_deps,
        )
        if al.sinks.kafka is not None:
            add(
                "Sink",
                "alerts_to_kafka",
                template("alerts_to_kafka").format(
                    sink=self.rel("alerts_to_kafka"),
                    alerts=self.rel("alerts"),
                    bootstrap_servers=sql.Literal(_csv(spec.kafka.bootstrap_servers)),
                    topic=sql.Literal(al.sinks.kafka.topic),
                    kafka_security=self.kafka_security(),
                ),
                ["alerts", *kafka_secrets],
            )
        if al.sinks.postgres is not None:
            pg = al.sinks.postgres
            jdbc_url = f"jdbc:postgresql://{pg.host}:{pg.port}/{pg.database}?sslmode={pg.sslmode}"
            add(
                "Sink",
                "alerts_to_postgres",
                template("alerts_to_postgres").format(
                    sink=self.rel("alerts_to_postgres"),
                    alerts=self.rel("alerts"),
                    jdbc_url=sql.Literal(jdbc_url),
                    user=self.credential_value("alerts_db", "username"),
                    password=self.credential_value("alerts_db", "password"),
                    target_schema=sql.Literal(pg.schema_),
                    target_table=sql.Literal(pg.table),
                ),
                ["alerts", *db_secrets],
            )
        return out


def _object_hash(kind: str, display_sql: str, secret_material: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(kind.encode())
    h.update(b"\0")
    h.update(display_sql.encode())
    for item in secret_material:
        h.update(b"\0")
        h.update(item.encode())
    return "sha256:" + h.hexdigest()[:24]


def _secret_material(spec: ChargingAnalyticsSpec, options: RenderOptions, kind: str, name: str) -> list[str]:
    """Digests of the credentials an object embeds, so rotating a credential changes the hash."""
    creds = options.credentials
    if creds is None:
        return []
    roles: list[str] = []
    if options.secret_store == "risingwave":
        if kind == "Secret":
            roles = [name.rsplit("_", 1)[0]]
    elif name in ("ocpp_events", "alerts_to_kafka") and spec.kafka.security.sasl_mechanism is not None:
        roles = ["kafka"]
    elif name == "alerts_to_postgres":
        roles = ["alerts_db"]
    out: list[str] = []
    for role in roles:
        cred: Credential | None = getattr(creds, role)
        if cred is None:
            continue
        parts = ("username", "password")
        if kind == "Secret":
            parts = (name.rsplit("_", 1)[1],)  # type: ignore[assignment]
        for part in parts:
            out.append(secret_digest(getattr(cred, part), f"{spec.tenant}/{role}/{part}"))
    return out


def render(spec: ChargingAnalyticsSpec, options: RenderOptions | None = None) -> list[DesiredObject]:
    """The tenant's objects in creation (dependency) order."""
    options = options or RenderOptions()
    shown = _Builder(spec, options, reveal=False)
    real = _Builder(spec, options, reveal=True)
    objects: list[DesiredObject] = []
    for (kind, name, display, deps, update), (_, _, statement, _, real_update) in zip(
        shown.build(), real.build(), strict=True
    ):
        text = as_text(display)
        objects.append(
            DesiredObject(
                kind=kind,
                schema="" if kind == "Schema" else spec.tenant,
                name=name,
                sql=text,
                depends_on=deps,
                hash=_object_hash(kind, text, _secret_material(spec, options, kind, name)),
                statement=statement,
                display=display,
                update_statement=real_update if update is not None else None,
                unresolved=tuple(sorted(_unresolved_for(kind, name, real.unresolved))),
            )
        )
    return objects


def _unresolved_for(kind: str, name: str, unresolved: set[str]) -> set[str]:
    uses = {"ocpp_events": {"kafka"}, "alerts_to_kafka": {"kafka"}, "alerts_to_postgres": {"alerts_db"}}
    if kind == "Secret":
        return {name.rsplit("_", 1)[0]} & unresolved
    return uses.get(name, set()) & unresolved


def ledger_bootstrap() -> list[sql.Composed]:
    """Statements that create the operator's ledger (idempotent)."""
    return [
        template("schema").format(schema=sql.Identifier(SYSTEM_SCHEMA)),
        template("ledger").format(ledger=sql.Identifier(SYSTEM_SCHEMA, LEDGER_TABLE)),
    ]


def ledger_record(
    tenant: str, key: str, kind: str, value: str, depends_on: Sequence[str]
) -> list[sql.Composed]:
    """Replace the ledger row of one object (DELETE + INSERT: correct whatever the table's
    ON CONFLICT behaviour; an interruption between them leaves no row, which re-applies)."""
    ledger = sql.Identifier(SYSTEM_SCHEMA, LEDGER_TABLE)
    return [
        ledger_forget(tenant, key),
        sql.SQL(
            "INSERT INTO {} (tenant, object_name, kind, definition_hash, depends_on, applied_at) "
            "VALUES ({}, {}, {}, {}, {}, NOW())"
        ).format(
            ledger,
            sql.Literal(tenant),
            sql.Literal(key),
            sql.Literal(kind),
            sql.Literal(value),
            sql.Literal(",".join(depends_on)),
        ),
    ]


def ledger_forget(tenant: str, key: str | None = None) -> sql.Composed:
    ledger = sql.Identifier(SYSTEM_SCHEMA, LEDGER_TABLE)
    if key is None:
        return sql.SQL("DELETE FROM {} WHERE tenant = {}").format(ledger, sql.Literal(tenant))
    return sql.SQL("DELETE FROM {} WHERE tenant = {} AND object_name = {}").format(
        ledger, sql.Literal(tenant), sql.Literal(key)
    )


def postgres_alerts_table(spec: ChargingAnalyticsSpec) -> sql.Composed | None:
    """DDL for the PostgreSQL sink's target table (runs on the alert database)."""
    pg = spec.alerts.sinks.postgres
    if pg is None:
        return None
    return template("postgres_alerts_table").format(table=sql.Identifier(pg.schema_, pg.table))


def referenced_secrets(spec: ChargingAnalyticsSpec) -> dict[str, CredentialsSecretRef]:
    """Kubernetes Secrets the spec needs, by role (the shell resolves them)."""
    out: dict[str, CredentialsSecretRef] = {}
    if spec.kafka.security.credentials_secret_ref is not None:
        out["kafka"] = spec.kafka.security.credentials_secret_ref
    if spec.alerts.sinks.postgres is not None:
        out["alerts_db"] = spec.alerts.sinks.postgres.credentials_secret_ref
    return out


def statements_text(objects: Sequence[DesiredObject]) -> str:
    """All display statements, each ending with ``;`` (what ``charging-analytics render`` prints)."""
    return "\n\n".join(f"-- {o.kind} {o.qualified} ({o.hash})\n{o.sql};" for o in objects) + "\n"


Renderer = Callable[[ChargingAnalyticsSpec, RenderOptions | None], list[DesiredObject]]
