"""Gateway configuration: which tenants exist, their Kafka topic, their stations and credentials.

One tenant model (:class:`Tenant`, built by :func:`build_tenant`) behind both sources: a tenants
file (here) and the ChargingAnalytics resources (:mod:`.kube_tenants`).

The tenants file (``charging-analytics gateway --tenants-file FILE``, YAML or JSON) is the way to
run the gateway without Kubernetes; see ``docs/gateway.md``::

    state:                                  # where transaction state lives (compacted topic)
      bootstrapServers: [localhost:9092]
      topic: charging-analytics-gateway-state
    heartbeatInterval: 300                  # seconds, sent in BootNotification.conf
    tenants:
      - tenant: acme                        # the ChargingAnalytics spec.tenant
        kafka:                              # the same shape as spec.kafka
          bootstrapServers: [localhost:9092]
          eventsTopic: ocpp.acme.events
        credentialsFile: acme-stations.yaml # station id -> password (a Secret's data, decoded)
        stations:                           # the station registry
          - id: ST-0001
            connectors:
              - {id: 1, standard: IEC_62196_T2_COMBO}
              - {id: 2, standard: IEC_62196_T2}

Connector ``standard`` is OCPI's ``Connector.standard`` vocabulary, mapped onto the tariff's
connector types by :data:`OCPI_STANDARDS`; the tariff names (``CCS``, ``CHAdeMO``, ``Type2``) are
accepted too.  For OCPP 2.0.1 the registry's connector id is the EVSE id (the contract's
``connector_id``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import Field, ValidationError, model_validator

from ..events import ConnectorType
from ..render import Credential
from ..spec import (
    BOOTSTRAP_SERVER_PATTERN,
    KAFKA_TOPIC_PATTERN,
    STATION_ID_PATTERN,
    TENANT_PATTERN,
    GatewayStation,
    KafkaSpec,
    Model,
)

STATION_ID_RE: Final = re.compile(STATION_ID_PATTERN)
TENANT_RE: Final = re.compile(TENANT_PATTERN)

#: OCPP 2.0.1 ``ConnectorEnumType`` values (device-model variable ``Connector.ConnectorType``)
#: that have a tariff type: CCS1/CCS2, G105 (CHAdeMO), Type 2 cable and socket.
OCPP201_CONNECTOR_TYPES: Final[Mapping[str, ConnectorType]] = {
    "cCCS1": "CCS",
    "cCCS2": "CCS",
    "cG105": "CHAdeMO",
    "cType2": "Type2",
    "sType2": "Type2",
}


class StateSpec(Model):
    bootstrap_servers: list[Annotated[str, Field(pattern=BOOTSTRAP_SERVER_PATTERN, max_length=260)]] = Field(
        min_length=1, max_length=16
    )
    topic: str = Field("charging-analytics-gateway-state", pattern=KAFKA_TOPIC_PATTERN, max_length=249)
    partitions: int = Field(6, ge=1, le=1000, description="Partitions when the gateway creates the topic.")


class TenantEntry(Model):
    tenant: str = Field(pattern=TENANT_PATTERN, max_length=40)
    kafka: KafkaSpec
    credentials_file: str = Field(min_length=1, description="YAML/JSON map station id -> password.")
    stations: list[GatewayStation] = Field(min_length=1, description="The station registry.")

    @model_validator(mode="after")
    def _unique_stations(self) -> TenantEntry:
        ids = [s.id for s in self.stations]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"tenant {self.tenant}: duplicate station ids {dupes}")
        if self.kafka.security.protocol.startswith("SASL_"):
            raise ValueError(
                f"tenant {self.tenant}: SASL needs a credentials Secret; the tenants file supports "
                "PLAINTEXT and SSL"
            )
        return self


class TenantsFile(Model):
    state: StateSpec
    heartbeat_interval: int = Field(300, ge=10, le=86400)
    tenants: list[TenantEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_tenants(self) -> TenantsFile:
        names = [t.tenant for t in self.tenants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tenants {dupes}")
        return self


# --------------------------------------------------------------------------------------------
# The resolved configuration the server runs with (credentials loaded)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Station:
    id: str
    password: str = field(repr=False)
    connector_types: Mapping[int, ConnectorType]


@dataclass(frozen=True)
class Tenant:
    """One tenant as the server sees it, whichever source it came from (a tenants file or a
    ChargingAnalytics resource): built only by :func:`build_tenant`."""

    tenant: str
    kafka: KafkaSpec
    stations: Mapping[str, Station]
    #: SASL user name and password (``kafka.security.protocol`` SASL_*), from a Secret.
    kafka_credential: Credential | None = field(default=None, repr=False)

    @property
    def topic(self) -> str:
        return self.kafka.events_topic


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the server needs; built from a tenants file or from the Kubernetes API."""

    tenants: Mapping[str, Tenant]
    state: StateSpec
    heartbeat_interval: int = 300
    #: Largest WebSocket message accepted (bytes); larger frames close the connection (1009).
    max_message_bytes: int = 65536
    #: How long a publish may wait for Kafka's acknowledgement before the call gets a CallError.
    delivery_timeout_s: float = 10.0

    def station(self, tenant: str, station_id: str) -> tuple[Tenant, Station] | None:
        found = self.tenants.get(tenant)
        if found is None:
            return None
        station = found.stations.get(station_id)
        return None if station is None else (found, station)


class ConfigError(ValueError):
    """A tenants or credentials file that cannot be used; the message names the file and field."""


def _read_mapping(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: {err.strerror or err}") from err
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from err


def load_credentials(path: Path) -> dict[str, str]:
    """A map station id -> password; values are never echoed in errors."""
    data = _read_mapping(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of station id to password")
    out: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not STATION_ID_RE.match(key):
            raise ConfigError(f"{path}: {key!r} is not a station id ({STATION_ID_PATTERN})")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: the password of {key} must be a non-empty string")
        out[key] = value
    return out


def build_tenant(
    name: str,
    kafka: KafkaSpec,
    registry: Sequence[GatewayStation],
    passwords: Mapping[str, str],
    kafka_credential: Credential | None = None,
) -> tuple[Tenant, list[str]]:
    """Join a station registry with the stations' passwords: the tenant, and the ids of the
    stations left out because they have no password (they are refused like unknown ones)."""
    stations = {
        s.id: Station(s.id, passwords[s.id], {c.id: c.connector_type for c in s.connectors})
        for s in registry
        if passwords.get(s.id)
    }
    missing = [s.id for s in registry if s.id not in stations]
    return Tenant(name, kafka, stations, kafka_credential), missing


def build_config(
    parsed: TenantsFile, credentials: Mapping[str, Mapping[str, str]], **options: Any
) -> GatewayConfig:
    """Join the registry with each tenant's credentials; a station without a password would be
    refused at the handshake like an unknown one, so it is reported here, not silently dropped."""
    tenants: dict[str, Tenant] = {}
    for entry in parsed.tenants:
        tenant, missing = build_tenant(
            entry.tenant, entry.kafka, entry.stations, credentials.get(entry.tenant, {})
        )
        if missing:
            raise ConfigError(f"tenant {entry.tenant}: no password for station(s) {', '.join(missing)}")
        tenants[entry.tenant] = tenant
    return GatewayConfig(
        tenants=tenants, state=parsed.state, heartbeat_interval=parsed.heartbeat_interval, **options
    )


def load_tenants_file(path: Path, **options: Any) -> GatewayConfig:
    """Read and validate a tenants file and the credentials files it names (relative to it)."""
    data = _read_mapping(path)
    try:
        parsed = TenantsFile.model_validate(data)
    except ValidationError as err:
        issues = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"{path}: {issues}") from None
    credentials = {
        t.tenant: load_credentials((path.parent / t.credentials_file).resolve()) for t in parsed.tenants
    }
    return build_config(parsed, credentials, **options)
