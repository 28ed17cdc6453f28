"""The two tenant sources give the gateway one model: a tenants file and a ChargingAnalytics
resource (``spec.gateway`` + Secrets) describing the same tenant yield the same ``Tenant``; the
resource rules (SASL credentials, missing Secrets and keys, disabled, deleted, duplicated
tenants) are the pure function ``tenants_from_resources``. Problems name Secrets and keys, never
their values."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from charging_analytics.gateway.config import load_tenants_file
from charging_analytics.gateway.delivery import producer_config
from charging_analytics.gateway.kube_tenants import tenants_from_resources
from charging_analytics.spec import GatewaySpec
from testbed import specs

STATIONS = [
    {
        "id": "ST-1",
        "connectors": [{"id": 1, "standard": "IEC_62196_T2_COMBO"}, {"id": 2, "standard": "CHADEMO"}],
    },
    {"id": "ST-2", "connectors": [{"id": 1, "standard": "Type2"}]},
]
KAFKA = {"bootstrapServers": ["kafka:9092"], "eventsTopic": "ocpp.acme.events"}


def resource(
    name: str = "acme", *, tenant: str = "acme", created: str = "2026-01-01T00:00:00Z", **spec: Any
) -> Any:
    gateway = {"stationsSecretRef": {"name": "acme-stations"}, "stations": copy.deepcopy(STATIONS)}
    body = specs.spec_dict(tenant, bootstrap="kafka:9092", events_topic="ocpp.acme.events", alerts=None)
    body["gateway"] = gateway
    body.update(spec)  # a key given as None stays, as None
    return specs.resource(name, "ns", body, creationTimestamp=created)


SECRETS = {
    "ns": {"acme-stations": {"ST-1": b"pw-1", "ST-2": b"pw-2"}, "sasl": {"u": b"pipeline", "p": b"s3cr3t"}}
}


def test_a_file_and_a_resource_describing_one_tenant_give_the_same_tenant(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump({"ST-1": "pw-1", "ST-2": "pw-2"}))
    (tmp_path / "gw.yaml").write_text(
        yaml.safe_dump(
            {
                "state": {"bootstrapServers": ["kafka:9092"]},
                "tenants": [
                    {"tenant": "acme", "kafka": KAFKA, "credentialsFile": "acme.yaml", "stations": STATIONS}
                ],
            }
        )
    )
    from_file = load_tenants_file(tmp_path / "gw.yaml").tenants
    from_resources, problems = tenants_from_resources([resource()], SECRETS)
    assert problems == []
    assert from_resources == from_file
    assert from_file["acme"].stations["ST-1"].connector_types == {1: "CCS", 2: "CHAdeMO"}


def test_sasl_credentials_come_from_the_referenced_secret_into_the_producer() -> None:
    kafka = {
        **KAFKA,
        "security": {
            "protocol": "SASL_SSL",
            "saslMechanism": "SCRAM-SHA-512",
            "credentialsSecretRef": {"name": "sasl", "usernameKey": "u", "passwordKey": "p"},
        },
    }
    tenants, problems = tenants_from_resources([resource(kafka=kafka)], SECRETS)
    assert problems == []
    conf = producer_config(tenants["acme"].kafka, tenants["acme"].kafka_credential)
    assert conf == {
        "bootstrap.servers": "kafka:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "pipeline",
        "sasl.password": "s3cr3t",
    }
    assert "s3cr3t" not in repr(tenants["acme"])

    missing = copy.deepcopy(SECRETS)
    del missing["ns"]["sasl"]["p"]
    tenants, problems = tenants_from_resources([resource(kafka=kafka)], missing)
    assert tenants == {}  # without its credentials nothing could be published
    assert [str(p) for p in problems] == [
        "ns/acme: spec.kafka.security.credentialsSecretRef: Secret sasl has no key p"
    ]


def test_a_station_without_a_password_is_left_out_and_named() -> None:
    secrets = {"ns": {"acme-stations": {"ST-1": b"pw-1"}}}
    tenants, problems = tenants_from_resources([resource()], secrets)
    assert sorted(tenants["acme"].stations) == ["ST-1"]
    assert [str(p) for p in problems] == [
        "ns/acme: spec.gateway.stations: no password in Secret acme-stations for ST-2 "
        "(refused until there is one)"
    ]
    assert all("pw-1" not in str(p) for p in problems)


def test_a_missing_stations_secret_serves_the_tenant_without_stations() -> None:
    tenants, problems = tenants_from_resources([resource()], {})
    assert tenants["acme"].stations == {}
    assert [str(p) for p in problems] == [
        "ns/acme: spec.gateway.stationsSecretRef: Secret acme-stations not found"
    ]


@pytest.mark.parametrize(
    "body",
    [
        resource(gateway=None),
        resource(
            gateway={"enabled": False, "stationsSecretRef": {"name": "acme-stations"}, "stations": STATIONS}
        ),
    ],
    ids=["no-gateway-section", "disabled"],
)
def test_a_resource_without_an_enabled_gateway_section_serves_nothing(body: Any) -> None:
    if body["spec"]["gateway"] is None:
        del body["spec"]["gateway"]
    assert tenants_from_resources([body], SECRETS) == ({}, [])


def test_a_resource_being_deleted_is_no_longer_served() -> None:
    body = resource()
    body["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    assert tenants_from_resources([body], SECRETS) == ({}, [])


def test_two_resources_claiming_one_tenant_serve_the_older_only() -> None:
    newer = resource("acme-copy", created="2026-02-01T00:00:00Z")
    newer["spec"]["kafka"]["eventsTopic"] = "elsewhere"
    tenants, problems = tenants_from_resources([newer, resource()], SECRETS)
    assert tenants["acme"].topic == "ocpp.acme.events"
    assert [str(p) for p in problems] == ["ns/acme-copy: tenant acme is already served for ns/acme"]


def test_an_invalid_resource_is_a_problem_naming_the_field() -> None:
    body = resource()
    body["spec"]["gateway"]["stations"][0]["connectors"][0]["standard"] = "DOMESTIC_F"
    tenants, problems = tenants_from_resources([body], SECRETS)
    assert tenants == {}
    assert len(problems) == 1
    assert str(problems[0]).startswith(
        "ns/acme: spec.gateway.stations[0].connectors[0].standard: Input should be"
    )


def test_duplicate_station_and_connector_ids_are_refused_by_the_spec() -> None:
    with pytest.raises(ValueError, match=r"stations: station ids must be unique"):
        GatewaySpec.model_validate(
            {"stationsSecretRef": {"name": "s"}, "stations": [STATIONS[0], STATIONS[0]]}
        )
    twice = {"id": "ST-9", "connectors": [{"id": 1, "standard": "CCS"}, {"id": 1, "standard": "CCS"}]}
    with pytest.raises(ValueError, match=r"connectors: connector ids must be unique"):
        GatewaySpec.model_validate({"stationsSecretRef": {"name": "s"}, "stations": [twice]})
