"""The ChargingAnalytics resource model: the single source of truth.

The CRD in ``crds/`` is generated from these models (see :mod:`charging_analytics.crd`), the CLI
validates manifests with them, and the renderer reads only these types.  Every field carries its
structural rule (pattern, enum, bound) here; cross-field rules are :class:`Rule` objects that are
emitted as CEL ``x-kubernetes-validations`` for the API server *and* checked in Python by the
same model, so ``charging-analytics validate`` and ``kubectl apply`` reject the same manifests
with the same message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .events import CONNECTOR_STATUSES, MAX_CONNECTOR_ID, ConnectorStatus, ConnectorType

# --------------------------------------------------------------------------------------------
# Scalar types
# --------------------------------------------------------------------------------------------

#: Durations are Go/CEL style with one unit (``90s``, ``15m``, ``24h``) so CEL's ``duration()``
#: can evaluate the cross-field rules at admission time.
DURATION_PATTERN = r"^(0|[1-9][0-9]{0,6})(s|m|h)$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str) -> int:
    """Seconds in a one-unit duration string such as ``15m``."""
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration like 90s, 15m or 24h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=10)]

TENANT_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
#: Schema names a tenant may not take: RisingWave's and PostgreSQL's own schemas, and the
#: operator's ledger schema (a tenant of that name would plan to drop every tenant's ledger).
RESERVED_TENANTS = ("public", "information_schema", "pg_catalog", "rw_catalog", "cha_system")
#: Prefixes of system schemas (PostgreSQL's ``pg_toast``/``pg_temp_N``, RisingWave's ``rw_*``).
RESERVED_TENANT_PREFIXES = ("pg_", "rw_")
#: One DNS label, then dot-separated labels: a DNS-1123 subdomain, which Kubernetes requires of
#: Secret names (``a..b`` or ``a.-b`` can never name a Secret).
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
K8S_NAME_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"
#: Kubernetes Secret keys: these characters, and never ``.``, ``..`` or a ``..`` prefix.
SECRET_KEY_PATTERN = r"^(\.[-_a-zA-Z0-9]|[-_a-zA-Z0-9])[-._a-zA-Z0-9]{0,252}$"
#: A host name (RFC 1123 labels of at most 63 characters) or an IPv4 address.
_HOST_LABEL = r"[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?"
_HOST = rf"{_HOST_LABEL}(\.{_HOST_LABEL})*"
HOST_PATTERN = rf"^{_HOST}$"
#: A TCP port 1-65535 without leading zeros (port 0 can never be connected to).
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
BOOTSTRAP_SERVER_PATTERN = rf"^{_HOST}:{_PORT}$"
#: Kafka's topic rule: at most 249 of these characters, and not ``.`` or ``..`` (Kafka's
#: ``Topic.validate``); a name of dots only is rejected as a whole.
KAFKA_TOPIC_PATTERN = r"^[a-zA-Z0-9._-]*[a-zA-Z0-9_-][a-zA-Z0-9._-]*$"
CONSUMER_GROUP_PATTERN = r"^[a-zA-Z0-9._-]{1,100}$"
SQL_NAME_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"

K8sName = Annotated[str, Field(pattern=K8S_NAME_PATTERN, max_length=253)]
SecretKey = Annotated[str, Field(pattern=SECRET_KEY_PATTERN, max_length=253)]
SqlName = Annotated[str, Field(pattern=SQL_NAME_PATTERN, max_length=63)]
Port = Annotated[int, Field(ge=1, le=65535)]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


# --------------------------------------------------------------------------------------------
# Cross-field rules: one definition, two evaluators (CEL at admission, Python in the CLI)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A cross-field rule of one object in the spec.

    ``cel`` is evaluated by the API server with ``self`` bound to the object; ``check`` is the
    same predicate over the Pydantic model.  ``field`` names the offending field (relative to the
    object) so both evaluators report the same path.
    """

    cel: str
    message: str
    check: Callable[[Any], bool]
    field: str | None = None

    def to_cel(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field:
            out["fieldPath"] = f".{self.field}"
        return out


class SpecError(ValueError):
    """A spec that parsed but breaks a cross-field rule; ``field`` is the dotted path.

    ``violations`` holds every rule of the object that failed (this one first), so the CLI can
    report all of them, as the API server does.
    """

    def __init__(self, field: str, message: str, others: tuple[SpecError, ...] = ()) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.violations: tuple[SpecError, ...] = (self, *others)


def _schema_extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Emit the model's cross-field rules as CEL for the generated CRD."""
    rules: tuple[Rule, ...] = getattr(model, "rules", ())
    if rules:
        schema["x-kubernetes-validations"] = [rule.to_cel() for rule in rules]


class _Model(BaseModel):
    """Base: camelCase names on the wire, unknown fields rejected, immutable instances."""

    model_config = ConfigDict(
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        validate_default=True,
        json_schema_extra=_schema_extra,
    )
    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> _Model:
        failed = [SpecError(r.field or "", r.message) for r in type(self).rules if not r.check(self)]
        if failed:
            raise SpecError(failed[0].field, failed[0].message, tuple(failed[1:]))
        return self


def _alias(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class Model(_Model):
    model_config = ConfigDict(alias_generator=_alias)


# --------------------------------------------------------------------------------------------
# Secret references (same namespace only: there is no namespace field on purpose)
# --------------------------------------------------------------------------------------------


class SecretRef(Model):
    """A Secret in the resource's own namespace (every reference names one this way)."""

    name: K8sName = Field(description="Name of a Secret in the same namespace as the resource.")


class CredentialsSecretRef(SecretRef):
    """A Secret in the resource's own namespace holding a user name and a password."""

    username_key: SecretKey = Field("username", description="Key of the user name in the Secret.")
    password_key: SecretKey = Field("password", description="Key of the password in the Secret.")


def _tls_material_rules(ca: str, certificate: str, private_key: str) -> tuple[Rule, Rule]:
    """TLS material, named by the model's three fields: a client certificate comes with its key,
    and at least a CA or a client certificate is named."""
    ca_, cert_, key_ = (_alias(f) for f in (ca, certificate, private_key))
    return (
        Rule(
            cel=f"has(self.{cert_}) == has(self.{key_})",
            message=f"{cert_} and {key_} go together (a client certificate needs its key)",
            check=lambda s: (getattr(s, certificate) is None) == (getattr(s, private_key) is None),
            field=cert_,
        ),
        Rule(
            cel=f"has(self.{ca_}) || has(self.{cert_})",
            message=f"name at least {ca_} or {cert_}",
            check=lambda s: getattr(s, ca) is not None or getattr(s, certificate) is not None,
            field=ca_,
        ),
    )


class TlsSecretRef(SecretRef):
    """A Secret in the resource's own namespace holding PEM-encoded TLS material: a CA bundle
    that verifies the server, and/or a client certificate with its private key. A cert-manager
    Certificate's Secret has them as ``ca.crt``, ``tls.crt`` and ``tls.key``."""

    rules: ClassVar[tuple[Rule, ...]] = _tls_material_rules("ca_key", "certificate_key", "private_key_key")

    ca_key: SecretKey | None = Field(
        None, description="Key of the CA bundle (PEM) that verifies the server's certificate, e.g. ca.crt."
    )
    certificate_key: SecretKey | None = Field(
        None, description="Key of the client certificate (PEM), e.g. tls.crt."
    )
    private_key_key: SecretKey | None = Field(
        None, description="Key of the client certificate's private key (PEM, unencrypted), e.g. tls.key."
    )


#: An absolute file path made of characters that need no quoting in a JDBC URL's query string.
FILE_PATH_PATTERN = r"^/[A-Za-z0-9._/-]+$"
FilePath = Annotated[str, Field(pattern=FILE_PATH_PATTERN, max_length=1024)]


class NodeTlsFiles(Model):
    """TLS files that must already exist on every RisingWave compute node (for connectors that
    accept TLS material only as file paths; see docs/tls.md)."""

    rules: ClassVar[tuple[Rule, ...]] = _tls_material_rules("ca_path", "certificate_path", "private_key_path")

    ca_path: FilePath | None = Field(None, description="CA bundle (PEM) on the RisingWave nodes.")
    certificate_path: FilePath | None = Field(
        None, description="Client certificate (PEM) on the RisingWave nodes."
    )
    private_key_path: FilePath | None = Field(
        None,
        description="Client key on the RisingWave nodes, in a form PostgreSQL's JDBC driver reads "
        "(PKCS-8 DER, .pk8, or PKCS-12, .p12).",
    )


# --------------------------------------------------------------------------------------------
# RisingWave endpoint
# --------------------------------------------------------------------------------------------


def _tls_needs_ssl() -> Rule:
    return Rule(
        cel="!has(self.tlsSecretRef) || self.sslmode != 'disable'",
        message="tlsSecretRef needs an sslmode other than disable",
        check=lambda s: s.tls_secret_ref is None or s.sslmode != "disable",
        field="tlsSecretRef",
    )


class RisingWaveSpec(Model):
    """Where the tenant's pipeline runs. Omit to use the operator-wide default endpoint."""

    rules: ClassVar[tuple[Rule, ...]] = (_tls_needs_ssl(),)

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="RisingWave frontend host.")
    port: Port = Field(4566, description="RisingWave frontend port (the RisingWave operator uses 4567).")
    database: SqlName = Field("dev", description="Database that holds the tenant schema.")
    sslmode: SslMode = Field("prefer", description="libpq sslmode for the connection.")
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        None, description="User and password; omitted means user root without a password."
    )
    tls_secret_ref: TlsSecretRef | None = Field(
        None,
        description="CA bundle and/or client certificate for the operator's connection "
        "(use sslmode verify-full to verify the server against the CA).",
    )


# --------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecuritySpec(Model):
    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="!self.protocol.startsWith('SASL_') || "
            "(has(self.saslMechanism) && has(self.credentialsSecretRef))",
            message="SASL_PLAINTEXT and SASL_SSL need saslMechanism and credentialsSecretRef",
            check=lambda s: (
                not s.protocol.startswith("SASL_")
                or (s.sasl_mechanism is not None and s.credentials_secret_ref is not None)
            ),
            field="protocol",
        ),
        Rule(
            cel="self.protocol.startsWith('SASL_') || "
            "(!has(self.saslMechanism) && !has(self.credentialsSecretRef))",
            message="saslMechanism and credentialsSecretRef are only valid with a SASL_ protocol",
            check=lambda s: (
                s.protocol.startswith("SASL_")
                or (s.sasl_mechanism is None and s.credentials_secret_ref is None)
            ),
            field="protocol",
        ),
        Rule(
            cel="!has(self.tlsSecretRef) || self.protocol == 'SSL' || self.protocol == 'SASL_SSL'",
            message="tlsSecretRef is only valid with protocol SSL or SASL_SSL",
            check=lambda s: s.tls_secret_ref is None or s.protocol in ("SSL", "SASL_SSL"),
            field="tlsSecretRef",
        ),
    )

    protocol: SecurityProtocol = Field("PLAINTEXT", description="Kafka security protocol.")
    sasl_mechanism: SaslMechanism | None = Field(None, description="SASL mechanism.")
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        None, description="SASL user name and password."
    )
    tls_secret_ref: TlsSecretRef | None = Field(
        None,
        description="CA bundle and/or client certificate for the brokers, used by the operator's "
        "checks and by RisingWave's Kafka source and sink.",
    )


class KafkaSpec(Model):
    bootstrap_servers: list[Annotated[str, Field(pattern=BOOTSTRAP_SERVER_PATTERN, max_length=260)]] = Field(
        min_length=1, max_length=16, description="Kafka brokers as host:port."
    )
    events_topic: str = Field(
        pattern=KAFKA_TOPIC_PATTERN, max_length=249, description="Topic carrying the OCPP event JSON."
    )
    startup_mode: Literal["earliest", "latest"] = Field(
        "earliest", description="Where a new source starts reading (RisingWave accepts only these two)."
    )
    consumer_group_prefix: str | None = Field(
        None,
        pattern=CONSUMER_GROUP_PATTERN,
        max_length=100,
        description="RisingWave group.id.prefix; defaults to cha-<tenant>.",
    )
    security: KafkaSecuritySpec = Field(
        default_factory=lambda: KafkaSecuritySpec(), description="Transport security and SASL."
    )


# --------------------------------------------------------------------------------------------
# Analytics
# --------------------------------------------------------------------------------------------

Price = Annotated[float, Field(ge=0, le=1000)]
#: Prices have at most this many decimal places (RisingWave stores them as DECIMAL).
PRICE_DECIMALS = 4
_PRICE_SCALE = int(10**PRICE_DECIMALS)


def _four_decimals_cel(field: str) -> str:
    # x has at most 4 decimals iff round(x * 10^4) / 10^4 is x again: the division is correctly
    # rounded, so it yields exactly the double a 4-decimal literal parses to. CEL's int() of a
    # double truncates, as Python's does; prices are >= 0, so +0.5 rounds to nearest.
    scaled = f"double(self.{field}) * {_PRICE_SCALE}.0"
    return f"double(int({scaled} + 0.5)) / {_PRICE_SCALE}.0 == double(self.{field})"


def has_four_decimals(value: float) -> bool:
    """The Python twin of :func:`_four_decimals_cel` (same arithmetic, same result)."""
    return float(int(float(value) * _PRICE_SCALE + 0.5)) / _PRICE_SCALE == float(value)


def _price_rule(alias: str, attr: str) -> Rule:
    return Rule(
        cel=_four_decimals_cel(alias),
        message=f"prices have at most {PRICE_DECIMALS} decimal places",
        check=lambda s: has_four_decimals(float(getattr(s, attr))),
        field=alias,
    )


#: Statuses that count as up unless the spec says otherwise: a connector that is charging or
#: reserved works; only Faulted and Unavailable are down.
DEFAULT_UP_STATUSES: tuple[ConnectorStatus, ...] = tuple(
    s for s in CONNECTOR_STATUSES if s not in ("Faulted", "Unavailable")
)


class PricePerKwh(Model):
    """Price of one kWh per connector type, in the tariff currency."""

    model_config = ConfigDict(alias_generator=None)
    rules: ClassVar[tuple[Rule, ...]] = (
        _price_rule("CCS", "ccs"),
        _price_rule("CHAdeMO", "chademo"),
        _price_rule("Type2", "type2"),
    )

    ccs: Price = Field(alias="CCS", description="Price per kWh on CCS connectors.")
    chademo: Price = Field(alias="CHAdeMO", description="Price per kWh on CHAdeMO connectors.")
    type2: Price = Field(alias="Type2", description="Price per kWh on Type 2 connectors.")

    def as_decimal(self) -> dict[str, Decimal]:
        """Connector type (as it appears in events) to exact price."""
        return {
            "CCS": Decimal(str(self.ccs)),
            "CHAdeMO": Decimal(str(self.chademo)),
            "Type2": Decimal(str(self.type2)),
        }


class TariffSpec(Model):
    currency: str = Field(pattern=CURRENCY_PATTERN, max_length=3, description="ISO 4217 currency code.")
    price_per_kwh: PricePerKwh = Field(description="Energy price per connector type.")


def _secs(expr: str) -> str:
    return f"duration({expr}).getSeconds()"


class AnalyticsSpec(Model):
    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel=f"{_secs('self.availabilitySlide')} > 0",
            message="availabilitySlide must be greater than 0",
            check=lambda s: duration_seconds(s.availability_slide) > 0,
            field="availabilitySlide",
        ),
        Rule(
            cel=f"{_secs('self.revenueWindow')} > 0",
            message="revenueWindow must be greater than 0",
            check=lambda s: duration_seconds(s.revenue_window) > 0,
            field="revenueWindow",
        ),
        Rule(
            cel=f"{_secs('self.availabilitySlide')} > 0 && "
            f"{_secs('self.availabilityWindow')} % {_secs('self.availabilitySlide')} == 0 && "
            f"{_secs('self.availabilityWindow')} > {_secs('self.availabilitySlide')}",
            message="availabilityWindow must be a multiple of availabilitySlide, and larger than it",
            check=lambda s: (
                duration_seconds(s.availability_slide) > 0
                and duration_seconds(s.availability_window) % duration_seconds(s.availability_slide) == 0
                and duration_seconds(s.availability_window) > duration_seconds(s.availability_slide)
            ),
            field="availabilityWindow",
        ),
        Rule(
            cel=f"{_secs('self.stateRetention')} >= {_secs('self.revenueWindow')} && "
            f"{_secs('self.stateRetention')} >= {_secs('self.availabilityWindow')}",
            message="stateRetention must be at least revenueWindow and availabilityWindow",
            check=lambda s: (
                duration_seconds(s.state_retention)
                >= max(duration_seconds(s.revenue_window), duration_seconds(s.availability_window))
            ),
            field="stateRetention",
        ),
        Rule(
            cel=f"{_secs('self.availabilitySlide')} % 60 == 0 && "
            f"{_secs('self.availabilityWindow')} % 60 == 0",
            message="availabilitySlide and availabilityWindow must be whole minutes "
            "(availability is measured in one-minute buckets)",
            check=lambda s: (
                duration_seconds(s.availability_slide) % 60 == 0
                and duration_seconds(s.availability_window) % 60 == 0
            ),
            field="availabilitySlide",
        ),
        Rule(
            cel="!has(self.upStatuses) || self.upStatuses.all(s, self.upStatuses.exists_one(x, x == s))",
            message="upStatuses lists each status at most once",
            check=lambda s: len(set(s.up_statuses)) == len(s.up_statuses),
            field="upStatuses",
        ),
    )

    tariffs: TariffSpec = Field(description="Energy prices used for revenue.")
    revenue_window: Duration = Field("1h", description="Tumbling window of the station revenue view.")
    availability_window: Duration = Field("15m", description="Hopping window size of connector availability.")
    availability_slide: Duration = Field("1m", description="Hop of the availability window.")
    late_event_tolerance: Duration | None = Field(
        None,
        description="Deprecated, has no effect: no event inside stateRetention is dropped for being "
        "late (kept so existing manifests stay valid).",
    )
    state_retention: Duration = Field(
        "24h",
        description="Horizon of every reported view (sessions, revenue, availability); the session "
        "and status aggregations keep three times this, so late events inside it are counted.",
    )
    up_statuses: list[ConnectorStatus] = Field(
        default_factory=lambda: list(DEFAULT_UP_STATUSES),
        min_length=1,
        max_length=9,
        description="Connector statuses that count as up in uptime_pct (default: every status but "
        "Faulted and Unavailable; occupied is up).",
    )


# --------------------------------------------------------------------------------------------
# Alerts
# --------------------------------------------------------------------------------------------


class KafkaAlertSink(Model):
    topic: str = Field(pattern=KAFKA_TOPIC_PATTERN, max_length=249, description="Alerts topic.")
    partitions: int = Field(1, ge=1, le=1000, description="Partitions when the operator creates the topic.")
    replication_factor: int = Field(
        1, ge=1, le=10, description="Replication factor when the operator creates the topic."
    )


class PostgresAlertSink(Model):
    rules: ClassVar[tuple[Rule, ...]] = (
        _tls_needs_ssl(),
        Rule(
            cel="!has(self.sinkTlsFiles) || self.sslmode != 'disable'",
            message="sinkTlsFiles needs an sslmode other than disable",
            check=lambda s: s.sink_tls_files is None or s.sslmode != "disable",
            field="sinkTlsFiles",
        ),
    )

    host: str = Field(pattern=HOST_PATTERN, max_length=253, description="PostgreSQL host.")
    port: Port = Field(5432, description="PostgreSQL port.")
    database: SqlName = Field(description="Database holding the alerts table.")
    schema_: SqlName = Field("public", alias="schema", description="Schema of the alerts table.")
    table: SqlName = Field("charging_alerts", description="Alerts table (created by the operator).")
    sslmode: SslMode = Field("prefer", description="sslmode for the sink connection.")
    credentials_secret_ref: CredentialsSecretRef = Field(description="User and password of the sink.")
    tls_secret_ref: TlsSecretRef | None = Field(
        None,
        description="CA bundle and/or client certificate for the operator's own connection "
        "(it creates the alerts table).",
    )
    sink_tls_files: NodeTlsFiles | None = Field(
        None,
        description="TLS files on the RisingWave nodes for the JDBC sink (RisingWave's JDBC sink "
        "takes them only as paths in jdbc.url).",
    )


class AlertSinks(Model):
    kafka: KafkaAlertSink | None = Field(None, description="Publish alerts to a Kafka topic.")
    postgres: PostgresAlertSink | None = Field(
        None, description="Upsert open alerts into a PostgreSQL table."
    )


class AlertsSpec(Model):
    stalled_session_minutes: int = Field(
        10, ge=1, le=1440, description="A session with no event for this long is stalled."
    )
    availability_below_percent: float | None = Field(
        None, gt=0, le=100, description="Alert when a connector's availability drops below this."
    )
    connector_faults: bool = Field(
        True, description="Alert while a connector's current status is Faulted (cleared by its next status)."
    )
    connector_down_minutes: int = Field(
        30,
        ge=1,
        le=10080,
        description="Alert when a connector's current status has been a down status (not in "
        "analytics.upStatuses) for this long.",
    )
    sinks: AlertSinks = Field(default_factory=lambda: AlertSinks(), description="Where alerts go.")


class ReadOnlyUserSpec(Model):
    enabled: bool = Field(False, description="Create a SELECT-only RisingWave user for dashboards.")
    secret_name: K8sName | None = Field(
        None, description="Secret (same namespace) to write its credentials to; default <name>-readonly."
    )

    def secret(self, resource_name: str) -> str:
        """The Secret the operator writes the user's credentials to, for the resource so named."""
        return self.secret_name or f"{resource_name}-readonly"


LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
#: Keys are not patterned: a structural CRD schema has no patternProperties; the API server
#: validates label keys where the selector is used.
LabelValue = Annotated[str, Field(pattern=LABEL_VALUE_PATTERN, max_length=63)]


class InstanceSelector(Model):
    """Which Grafana instances (grafana-operator ``Grafana`` resources) get the dashboard."""

    match_labels: dict[str, LabelValue] = Field(
        default_factory=lambda: {"dashboards": "grafana"},
        min_length=1,
        max_length=16,
        description="Labels of the Grafana resources (default dashboards=grafana).",
    )


class DashboardsSpec(Model):
    enabled: bool = Field(
        False, description="Provision the tenant's Grafana dashboard and data source (needs readOnlyUser)."
    )
    provider: Literal["Auto", "GrafanaOperator", "ConfigMap"] = Field(
        "Auto",
        description="GrafanaOperator: GrafanaDashboard and GrafanaDatasource resources; ConfigMap: a "
        "ConfigMap for the Grafana chart's dashboard sidecar; Auto: GrafanaOperator when its CRDs are "
        "installed, else ConfigMap.",
    )
    instance_selector: InstanceSelector = Field(
        default_factory=lambda: InstanceSelector(),
        description="grafana-operator instanceSelector of the dashboard and the data source.",
    )
    folder: str | None = Field(
        None, min_length=1, max_length=100, description="Grafana folder of the dashboard (default: General)."
    )


# --------------------------------------------------------------------------------------------
# OCPP gateway: which stations of the tenant may connect, and their connectors
# --------------------------------------------------------------------------------------------

#: Station ids the gateway accepts: the OCPP 2.0.1 ``identifierString`` (at most 48 characters,
#: no ':'), restricted to characters that are also valid Kubernetes Secret keys (the stations
#: Secret is keyed by station id) and valid in the event contract's ``station_id``.
STATION_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$"

#: OCPI 2.2 ``ConnectorType`` values (``Connector.standard``) that have a tariff type.
OCPI_STANDARDS: Final[Mapping[str, ConnectorType]] = {
    "IEC_62196_T1_COMBO": "CCS",
    "IEC_62196_T2_COMBO": "CCS",
    "CHADEMO": "CHAdeMO",
    "IEC_62196_T2": "Type2",
}
TARIFF_TYPES: Final[Mapping[str, ConnectorType]] = {"CCS": "CCS", "CHAdeMO": "CHAdeMO", "Type2": "Type2"}
#: What a registry entry's ``standard`` may be: an OCPI standard with a tariff type, or the
#: tariff type itself. A standard without one (a domestic socket) could not be priced.
ConnectorStandard = Literal[
    "IEC_62196_T1_COMBO", "IEC_62196_T2_COMBO", "CHADEMO", "IEC_62196_T2", "CCS", "CHAdeMO", "Type2"
]


def tariff_type(standard: str) -> ConnectorType | None:
    """The tariff connector type of an OCPI standard or tariff name; ``None`` if it has none."""
    return OCPI_STANDARDS.get(standard) or TARIFF_TYPES.get(standard)


def _unique_ids_rule(field: str, what: str) -> Rule:
    """Each ``id`` of the list at most once (quadratic in CEL: it bounds the lists' lengths)."""
    return Rule(
        cel=f"self.{field}.all(a, self.{field}.exists_one(b, b.id == a.id))",
        message=f"{what} ids must be unique",
        check=lambda s: len({i.id for i in getattr(s, field)}) == len(getattr(s, field)),
        field=field,
    )


#: Most connectors (EVSEs) one station lists, and most stations one resource lists: the
#: uniqueness rules are quadratic and must stay within the API server's CEL cost budget.
MAX_STATION_CONNECTORS: Final = 16
MAX_GATEWAY_STATIONS: Final = 500


class GatewayConnector(Model):
    id: int = Field(ge=1, le=MAX_CONNECTOR_ID, description="Connector id (OCPP 2.0.1: the EVSE id).")
    standard: ConnectorStandard = Field(
        description="OCPI Connector.standard (IEC_62196_T2_COMBO, IEC_62196_T1_COMBO -> CCS; CHADEMO -> "
        "CHAdeMO; IEC_62196_T2 -> Type2) or the tariff type itself."
    )

    @property
    def connector_type(self) -> ConnectorType:
        kind = tariff_type(self.standard)
        assert kind is not None  # every ConnectorStandard has one
        return kind


class GatewayStation(Model):
    rules: ClassVar[tuple[Rule, ...]] = (_unique_ids_rule("connectors", "connector"),)

    id: str = Field(
        pattern=STATION_ID_PATTERN,
        max_length=48,
        description="Station id: the last segment of the station's OCPP URL, and its HTTP Basic user name.",
    )
    connectors: list[GatewayConnector] = Field(min_length=1, max_length=MAX_STATION_CONNECTORS)


class StationsSecretRef(Model):
    name: K8sName = Field(
        description="Secret in the resource's namespace: key = station id, value = its OCPP password."
    )


class GatewaySpec(Model):
    """The tenant's charge points, for ``charging-analytics gateway`` (OCPP security profiles 1
    and 2: HTTP Basic with the station id as user name, over ws:// or wss://)."""

    rules: ClassVar[tuple[Rule, ...]] = (_unique_ids_rule("stations", "station"),)

    enabled: bool = Field(True, description="Serve this tenant's stations; false refuses them all.")
    stations_secret_ref: StationsSecretRef = Field(description="The stations' OCPP passwords.")
    stations: list[GatewayStation] = Field(
        min_length=1,
        max_length=MAX_GATEWAY_STATIONS,
        description="The station registry: every station that may connect, with its connectors.",
    )


# --------------------------------------------------------------------------------------------
# The resource
# --------------------------------------------------------------------------------------------


def tenant_is_reserved(tenant: str) -> bool:
    return tenant in RESERVED_TENANTS or tenant.startswith(RESERVED_TENANT_PREFIXES)


TENANT_NOT_RESERVED = Rule(
    cel="!(self.tenant in ["
    + ", ".join(f"'{t}'" for t in RESERVED_TENANTS)
    + "])"
    + "".join(f" && !self.tenant.startsWith('{p}')" for p in RESERVED_TENANT_PREFIXES),
    message="tenant must not be a reserved schema name ("
    + ", ".join([*RESERVED_TENANTS, *(f"{p}*" for p in RESERVED_TENANT_PREFIXES)])
    + ")",
    check=lambda s: not tenant_is_reserved(s.tenant),
    field="tenant",
)


class ChargingAnalyticsSpec(Model):
    rules: ClassVar[tuple[Rule, ...]] = (
        TENANT_NOT_RESERVED,
        Rule(
            cel="!has(self.alerts) || !has(self.analytics) || "
            f"self.alerts.stalledSessionMinutes * 60 < {_secs('self.analytics.stateRetention')}",
            message="alerts.stalledSessionMinutes must be shorter than analytics.stateRetention",
            check=lambda s: (
                s.alerts.stalled_session_minutes * 60 < duration_seconds(s.analytics.state_retention)
            ),
            field="alerts.stalledSessionMinutes",
        ),
        Rule(
            cel="!has(self.alerts) || !has(self.analytics) || "
            f"self.alerts.connectorDownMinutes * 60 >= {_secs('self.analytics.availabilityWindow')}",
            message="alerts.connectorDownMinutes must be at least analytics.availabilityWindow "
            "(shorter outages show in uptime_pct and the low-availability alert)",
            check=lambda s: (
                s.alerts.connector_down_minutes * 60 >= duration_seconds(s.analytics.availability_window)
            ),
            field="alerts.connectorDownMinutes",
        ),
        Rule(
            cel="!has(self.alerts) || !has(self.analytics) || "
            f"self.alerts.connectorDownMinutes * 60 < {_secs('self.analytics.stateRetention')}",
            message="alerts.connectorDownMinutes must be shorter than analytics.stateRetention",
            check=lambda s: (
                s.alerts.connector_down_minutes * 60 < duration_seconds(s.analytics.state_retention)
            ),
            field="alerts.connectorDownMinutes",
        ),
        Rule(
            cel="!has(self.dashboards) || !has(self.dashboards.enabled) || !self.dashboards.enabled || "
            "(has(self.readOnlyUser) && has(self.readOnlyUser.enabled) && self.readOnlyUser.enabled)",
            message="dashboards.enabled needs readOnlyUser.enabled (the dashboard's data source "
            "reads as the tenant's read-only user)",
            check=lambda s: not s.dashboards.enabled or s.read_only_user.enabled,
            field="dashboards.enabled",
        ),
    )

    tenant: str = Field(
        pattern=TENANT_PATTERN,
        max_length=40,
        description="Tenant id; becomes the tenant's RisingWave schema. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "tenant is immutable"}]
        },
    )
    mode: Literal["Apply", "Plan"] = Field(
        "Apply", description="Apply changes, or only compute and publish the plan (dry run)."
    )
    suspend: bool = Field(False, description="Pause reconciliation.")
    deletion_policy: Literal["Delete", "Orphan"] = Field(
        "Delete", description="Drop the tenant's RisingWave objects on delete, or leave them."
    )
    on_drift: Literal["Report", "Correct"] = Field(
        "Correct", description="What to do when RisingWave differs from the spec."
    )
    risingwave: RisingWaveSpec | None = Field(
        None, description="RisingWave endpoint; omitted means the operator-wide default."
    )
    kafka: KafkaSpec = Field(description="Where the OCPP events come from.")
    analytics: AnalyticsSpec = Field(description="Tariffs, windows and state bounds.")
    alerts: AlertsSpec = Field(default_factory=lambda: AlertsSpec(), description="Alert rules and sinks.")
    read_only_user: ReadOnlyUserSpec = Field(
        default_factory=lambda: ReadOnlyUserSpec(), description="Optional dashboard user."
    )
    dashboards: DashboardsSpec = Field(
        default_factory=lambda: DashboardsSpec(), description="Optional Grafana dashboard and data source."
    )
    gateway: GatewaySpec | None = Field(
        None, description="Charge points served by the OCPP gateway; omitted means none."
    )

    @property
    def consumer_group_prefix(self) -> str:
        return self.kafka.consumer_group_prefix or f"cha-{self.tenant}"


#: Where the API server puts a namespaced object whose manifest names no namespace.
DEFAULT_NAMESPACE = "default"


def namespace_or_default(namespace: str | None) -> str:
    """The namespace an object of a manifest (or a body) lives in."""
    return namespace or DEFAULT_NAMESPACE


class ObjectMeta(_Model):
    """The part of metadata the operator and CLI read."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=K8S_NAME_PATTERN, max_length=253)
    namespace: str | None = None
    generation: int | None = None
    uid: str | None = None
    annotations: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def effective_namespace(self) -> str:
        return namespace_or_default(self.namespace)


class ChargingAnalytics(_Model):
    """A whole manifest: apiVersion, kind, metadata, spec (status is ignored on input)."""

    model_config = ConfigDict(extra="ignore")

    api_version: Literal["analytics.evcharging.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ChargingAnalytics"]
    metadata: ObjectMeta
    spec: ChargingAnalyticsSpec


# --------------------------------------------------------------------------------------------
# Status model
# --------------------------------------------------------------------------------------------


class Condition(Model):
    type: str = Field(max_length=64, description="Ready, Reconciling, Stalled or Drifted.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(max_length=128, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = Field("", max_length=4096)
    last_transition_time: str = Field(max_length=64, description="RFC 3339 time the status last changed.")
    observed_generation: int | None = Field(None, ge=0)


class ObjectStatus(Model):
    kind: Literal[
        "Schema",
        "Source",
        "MaterializedView",
        "View",
        "Sink",
        "Table",
        "Secret",
        "User",
        "GrafanaDashboard",
        "GrafanaDatasource",
        "ConfigMap",
    ]
    name: str = Field(
        max_length=200,
        description="Qualified RisingWave name, or the Kubernetes name of a dashboard object.",
    )
    state: Literal["Ready", "Creating", "Pending", "Missing", "Drifted", "Failed"]
    hash: str = Field(max_length=80, description="Definition hash of the applied object.")
    backfill_progress: str | None = Field(None, max_length=32, description="DDL progress while building.")
    fingerprint: str | None = Field(
        None, max_length=32, description="RisingWave's id + stored definition, to detect tampering."
    )


class PlanStatus(Model):
    hash: str = Field(max_length=80)
    destructive: bool = False
    actions: int = Field(0, ge=0)
    statements: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=200)
    truncated: bool = False
    objects: list[Annotated[str, Field(max_length=400)]] = Field(
        default_factory=list,
        max_length=16,
        description="Kubernetes objects (the dashboards') the plan would create, update, restore or "
        "delete, e.g. 'create ConfigMap ns/name'.",
    )


#: Longest ``host:port/database`` the spec admits, so status.endpoint can always be written.
ENDPOINT_MAX_LENGTH = 253 + 1 + 5 + 1 + 63


class CredentialDigests(Model):
    username: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=64)


class CredentialVersion(Model):
    """The Secret version a credential's digests were computed from. After a restart, a Secret
    whose resourceVersion is unchanged holds the same credential, so its (deliberately slow)
    digests are taken from here instead of computed again. Digests only, never a value."""

    role: str = Field(max_length=32, description="The role the credential plays (kafka, alerts_db, reader).")
    secret: str = Field(max_length=253, description="The Secret it was read from.")
    resource_version: str = Field(max_length=64, description="The Secret's resourceVersion then.")
    digests: CredentialDigests = Field(description="Salted scrypt digest of each part.")


class ChargingAnalyticsStatus(Model):
    # Unknown keys are kept (Kopf may keep its own there). Unlike the other models it is mutable,
    # validated on assignment: a reconcile sets the fields it writes one by one, and the fields it
    # set are what it publishes (status.published). No docstring: it would become the CRD's text.
    model_config = ConfigDict(extra="allow", frozen=False, validate_assignment=True)

    observed_generation: int | None = Field(None, ge=0)
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    objects: list[ObjectStatus] = Field(default_factory=list, max_length=64)
    plan_hash: str | None = Field(None, max_length=80, description="Hash of the last computed plan.")
    plan: PlanStatus | None = Field(None, description="The pending plan (Plan mode or awaiting approval).")
    applied_hash: str | None = Field(None, max_length=80, description="Hash of the desired state applied.")
    endpoint: str | None = Field(
        None, max_length=ENDPOINT_MAX_LENGTH, description="RisingWave endpoint in use (host:port/database)."
    )
    credentials: list[CredentialVersion] = Field(
        default_factory=list,
        max_length=8,
        description="The Secret versions the applied credentials came from.",
    )


def spec_error_path(loc: tuple[int | str, ...], prefix: str = "spec") -> str:
    """A Pydantic error location as a dotted manifest path (``spec.kafka.eventsTopic``)."""
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


__all__ = [
    "AlertSinks",
    "AlertsSpec",
    "AnalyticsSpec",
    "ChargingAnalytics",
    "ChargingAnalyticsSpec",
    "ChargingAnalyticsStatus",
    "Condition",
    "CredentialDigests",
    "CredentialVersion",
    "CredentialsSecretRef",
    "DashboardsSpec",
    "GatewayConnector",
    "GatewaySpec",
    "GatewayStation",
    "InstanceSelector",
    "KafkaAlertSink",
    "KafkaSecuritySpec",
    "KafkaSpec",
    "NodeTlsFiles",
    "ObjectStatus",
    "PlanStatus",
    "PostgresAlertSink",
    "PricePerKwh",
    "ReadOnlyUserSpec",
    "RisingWaveSpec",
    "Rule",
    "SecretRef",
    "SpecError",
    "TariffSpec",
    "TlsSecretRef",
    "duration_seconds",
    "spec_error_path",
]
