"""The control plane is a real kube-apiserver: it serves the pinned version, establishes the
generated CRD, defaults and accepts the examples, rejects invalid resources through the CRD's
schema and CEL rules, keeps status in its subresource and enforces RBAC.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml
from kubernetes import client as k8s

from charging_analytics import constants as c
from charging_analytics.crd import build_crd
from charging_analytics.spec import (
    BOOTSTRAP_SERVER_PATTERN,
    CURRENCY_PATTERN,
    DURATION_PATTERN,
    FILE_PATH_PATTERN,
    HOST_PATTERN,
    K8S_NAME_PATTERN,
    KAFKA_TOPIC_PATTERN,
    SECRET_KEY_PATTERN,
    TENANT_PATTERN,
    AnalyticsSpec,
    ChargingAnalytics,
    ChargingAnalyticsSpec,
    GatewaySpec,
    GatewayStation,
    KafkaSecuritySpec,
    NodeTlsFiles,
    PostgresAlertSink,
    PricePerKwh,
    RisingWaveSpec,
    Rule,
    TlsSecretRef,
)
from testbed.controlplane import ControlPlane, KubeApiError, KubeRest
from testbed.polling import STARTUP, wait_for
from testbed.tools import kubernetes_version

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.CRD_NAME}"


def cr_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def example(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / f"{name}.yaml").read_text()) if d]


def example_cr(name: str) -> dict[str, Any]:
    return next(d for d in example(name) if d["kind"] == c.KIND)


def rule(model: type[pydantic.BaseModel], field: str, index: int = 0) -> Rule:
    """The cross-field rule of ``model`` reported on ``field`` (its CEL and its message)."""
    rules: tuple[Rule, ...] = getattr(model, "rules", ())
    matching = [r for r in rules if r.field == field]
    assert len(matching) > index, f"{model.__name__} has no rule #{index} on {field}"
    return matching[index]


def get_status_condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((x for x in obj.get("status", {}).get("conditions", []) if x["type"] == type_), None)


# --------------------------------------------------------------------------------------------
# The server itself
# --------------------------------------------------------------------------------------------


def test_apiserver_serves_pinned_kubernetes_version(
    control_plane: ControlPlane, kube_api: k8s.ApiClient
) -> None:
    assert control_plane.rest.version()["gitVersion"] == kubernetes_version()
    # The kubernetes client fixture talks to the same server with the admin kubeconfig.
    assert k8s.VersionApi(kube_api).get_code().git_version == kubernetes_version()
    names = {ns.metadata.name for ns in k8s.CoreV1Api(kube_api).list_namespace().items if ns.metadata}
    assert {"default", "kube-system"} <= names


def test_crd_is_established_and_served_with_short_name(control_plane: ControlPlane) -> None:
    crd = control_plane.rest.get(CRD_PATH)
    conditions = {x["type"]: x["status"] for x in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    served = control_plane.rest.get(f"/apis/{c.GROUP}/{c.VERSION}")
    by_name = {r["name"]: r for r in served["resources"]}
    assert by_name[c.PLURAL]["kind"] == c.KIND
    assert by_name[c.PLURAL]["shortNames"] == list(c.SHORT_NAMES)
    assert by_name[c.PLURAL]["namespaced"] is True
    assert f"{c.PLURAL}/status" in by_name
    # What the server stores is what the generator emits (CEL rules included).
    stored = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    generated = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert stored == generated, "crds/ is stale or the server rewrote the schema: regenerate the CRD"


# --------------------------------------------------------------------------------------------
# Valid resources
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["acme", "voltbay"])
def test_example_is_accepted_and_server_defaults_match_the_model(
    control_plane: ControlPlane, namespace: str, name: str
) -> None:
    applied = control_plane.apply_manifest(example(name), namespace)
    assert [o["kind"] for o in applied][-1] == c.KIND
    stored = control_plane.rest.get(cr_path(namespace, name))
    assert stored["spec"]["tenant"] == name
    assert stored["metadata"]["generation"] == 1
    # The API server's defaulting (from the CRD) and the Pydantic model's defaults agree.
    local = ChargingAnalytics.model_validate(example_cr(name))
    server = ChargingAnalytics.model_validate(stored)
    assert server.spec == local.spec


def test_voltbay_gets_defaults_filled_in_by_the_server(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.apply_manifest(example("voltbay"), namespace)
    spec = control_plane.rest.get(cr_path(namespace, "voltbay"))["spec"]
    assert spec["mode"] == "Apply"
    assert spec["kafka"]["security"] == {"protocol": "PLAINTEXT"}
    assert spec["analytics"]["stateRetention"] == "24h"
    assert spec["alerts"]["sinks"]["kafka"]["partitions"] == 1
    assert spec["readOnlyUser"] == {"enabled": False}


def test_server_side_dry_run_validates_without_persisting(
    control_plane: ControlPlane, namespace: str
) -> None:
    out = control_plane.apply_manifest([example_cr("voltbay")], namespace, dry_run=True)
    assert out[0]["spec"]["tenant"] == "voltbay"
    with pytest.raises(KubeApiError) as err:
        control_plane.rest.get(cr_path(namespace, "voltbay"))
    assert err.value.status == 404


# --------------------------------------------------------------------------------------------
# Invalid resources: rejected by the real API server, naming the field
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invalid:
    id: str
    mutate: Callable[[dict[str, Any]], None]
    field: str
    message: str
    status: int = 422
    #: Other fields the same manifest legitimately breaks (a rule that depends on this one).
    also: tuple[str, ...] = ()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc["spec"]
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value

    return mutate


def _all(*mutations: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        for m in mutations:
            m(doc)

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc["spec"]
        *parents, leaf = path.split(".")
        for key in parents:
            node = node[key]
        del node[leaf]

    return mutate


def _should_match(pattern: str) -> str:
    return f"should match '{pattern}'"


INVALID = [
    Invalid("tenant-pattern", _set("tenant", "Acme-1"), "spec.tenant", _should_match(TENANT_PATTERN)),
    Invalid(
        "tenant-reserved-public",
        _set("tenant", "public"),
        "spec.tenant",
        rule(ChargingAnalyticsSpec, "tenant").message,
    ),
    Invalid(
        "tenant-reserved-pg-prefix",
        _set("tenant", "pg_stats"),
        "spec.tenant",
        rule(ChargingAnalyticsSpec, "tenant").message,
    ),
    Invalid(
        "startup-mode-timestamp",
        _set("kafka.startupMode", "timestamp"),
        "spec.kafka.startupMode",
        'Unsupported value: "timestamp"',
    ),
    Invalid(
        "bootstrap-servers-empty",
        _set("kafka.bootstrapServers", []),
        "spec.kafka.bootstrapServers",
        "should have at least 1 items",
    ),
    Invalid(
        "bootstrap-server-without-port",
        _set("kafka.bootstrapServers", ["kafka-0.kafka.svc"]),
        "spec.kafka.bootstrapServers[0]",
        _should_match(BOOTSTRAP_SERVER_PATTERN),
    ),
    Invalid(
        "events-topic-with-space",
        _set("kafka.eventsTopic", "ocpp events"),
        "spec.kafka.eventsTopic",
        _should_match(KAFKA_TOPIC_PATTERN),
    ),
    Invalid(
        "sasl-ssl-without-credentials",
        _set("kafka.security", {"protocol": "SASL_SSL", "saslMechanism": "SCRAM-SHA-512"}),
        "spec.kafka.security.protocol",
        rule(KafkaSecuritySpec, "protocol", 0).message,
    ),
    Invalid(
        "sasl-mechanism-with-plaintext",
        _set("kafka.security", {"protocol": "PLAINTEXT", "saslMechanism": "PLAIN"}),
        "spec.kafka.security.protocol",
        rule(KafkaSecuritySpec, "protocol", 1).message,
    ),
    Invalid(
        "availability-window-not-multiple-of-slide",
        _all(_set("analytics.availabilityWindow", "15m"), _set("analytics.availabilitySlide", "7m")),
        "spec.analytics.availabilityWindow",
        rule(AnalyticsSpec, "availabilityWindow").message,
    ),
    Invalid(
        "state-retention-shorter-than-revenue-window",
        _all(
            _set("analytics.revenueWindow", "1h"),
            _set("analytics.stateRetention", "30m"),
            _set("alerts.stalledSessionMinutes", 10),
            _set("alerts.connectorDownMinutes", 20),
        ),
        "spec.analytics.stateRetention",
        rule(AnalyticsSpec, "stateRetention").message,
    ),
    Invalid(
        "down-threshold-shorter-than-availability-window",
        _all(_set("analytics.availabilityWindow", "1h"), _set("alerts.connectorDownMinutes", 20)),
        "spec.alerts.connectorDownMinutes",
        rule(ChargingAnalyticsSpec, "alerts.connectorDownMinutes").message,
    ),
    Invalid(
        "down-threshold-not-shorter-than-retention",
        _all(
            _set("analytics.stateRetention", "1h"),
            _set("alerts.stalledSessionMinutes", 10),
            _set("alerts.connectorDownMinutes", 60),
        ),
        "spec.alerts.connectorDownMinutes",
        rule(ChargingAnalyticsSpec, "alerts.connectorDownMinutes", 1).message,
    ),
    Invalid(
        "up-statuses-repeated",
        _set("analytics.upStatuses", ["Available", "Charging", "Available"]),
        "spec.analytics.upStatuses",
        rule(AnalyticsSpec, "upStatuses").message,
    ),
    Invalid(
        "gateway-station-ids-repeated",
        _set(
            "gateway",
            {
                "stationsSecretRef": {"name": "stations"},
                "stations": [
                    {"id": "ST-1", "connectors": [{"id": 1, "standard": "CCS"}]},
                    {"id": "ST-1", "connectors": [{"id": 2, "standard": "Type2"}]},
                ],
            },
        ),
        "spec.gateway.stations",
        rule(GatewaySpec, "stations").message,
    ),
    Invalid(
        "gateway-connector-ids-repeated",
        _set(
            "gateway",
            {
                "stationsSecretRef": {"name": "stations"},
                "stations": [
                    {
                        "id": "ST-1",
                        "connectors": [{"id": 1, "standard": "CCS"}, {"id": 1, "standard": "Type2"}],
                    }
                ],
            },
        ),
        "spec.gateway.stations[0].connectors",
        rule(GatewayStation, "connectors").message,
    ),
    Invalid(
        "availability-slide-not-whole-minutes",
        _all(_set("analytics.availabilityWindow", "300s"), _set("analytics.availabilitySlide", "30s")),
        "spec.analytics.availabilitySlide",
        rule(AnalyticsSpec, "availabilitySlide", 1).message,
    ),
    Invalid(
        "dashboards-without-read-only-user",
        _set("dashboards.enabled", True),
        "spec.dashboards.enabled",
        rule(ChargingAnalyticsSpec, "dashboards.enabled").message,
    ),
    Invalid(
        "dashboards-instance-selector-empty",
        _all(
            _set("readOnlyUser.enabled", True),
            _set("dashboards.enabled", True),
            _set("dashboards.instanceSelector.matchLabels", {}),
        ),
        "spec.dashboards.instanceSelector.matchLabels",
        "should have at least 1",
    ),
    Invalid(
        "duration-without-unit",
        _set("analytics.revenueWindow", "15"),
        "spec.analytics.revenueWindow",
        _should_match(DURATION_PATTERN),
    ),
    Invalid(
        "stalled-session-minutes-zero",
        _set("alerts.stalledSessionMinutes", 0),
        "spec.alerts.stalledSessionMinutes",
        "should be greater than or equal to 1",
    ),
    Invalid(
        "stalled-session-not-shorter-than-retention",
        _all(
            _set("alerts.stalledSessionMinutes", 120),
            _set("analytics.stateRetention", "2h"),
            _set("analytics.revenueWindow", "1h"),
        ),
        "spec.alerts.stalledSessionMinutes",
        rule(ChargingAnalyticsSpec, "alerts.stalledSessionMinutes").message,
    ),
    Invalid(
        "availability-below-percent-zero",
        _set("alerts.availabilityBelowPercent", 0),
        "spec.alerts.availabilityBelowPercent",
        "should be greater than 0",
    ),
    Invalid(
        "price-negative",
        _set("analytics.tariffs.pricePerKwh.CCS", -0.1),
        "spec.analytics.tariffs.pricePerKwh.CCS",
        "should be greater than or equal to 0",
    ),
    Invalid(
        "currency-euro",
        _set("analytics.tariffs.currency", "euro"),
        "spec.analytics.tariffs.currency",
        "Too long: may not be more than 3 bytes",
    ),
    Invalid(
        "currency-lowercase",
        _set("analytics.tariffs.currency", "eur"),
        "spec.analytics.tariffs.currency",
        _should_match(CURRENCY_PATTERN),
    ),
    Invalid("kafka-missing", _drop("kafka"), "spec.kafka", "Required value"),
    Invalid(
        "postgres-sink-without-credentials",
        _set("alerts.sinks.postgres", {"host": "db", "database": "alerts"}),
        "spec.alerts.sinks.postgres.credentialsSecretRef",
        "Required value",
    ),
    Invalid(
        "tenant-reserved-operator-ledger-schema",
        _set("tenant", "cha_system"),
        "spec.tenant",
        rule(ChargingAnalyticsSpec, "tenant").message,
    ),
    *(
        Invalid(
            f"price-five-decimals-{connector.lower()}",
            _set(f"analytics.tariffs.pricePerKwh.{connector}", 0.12345),
            f"spec.analytics.tariffs.pricePerKwh.{connector}",
            rule(PricePerKwh, connector).message,
        )
        for connector in ("CCS", "CHAdeMO", "Type2")
    ),
    Invalid(
        "availability-slide-zero",
        _all(_set("analytics.availabilitySlide", "0s"), _set("analytics.availabilityWindow", "15m")),
        "spec.analytics.availabilitySlide",
        rule(AnalyticsSpec, "availabilitySlide").message,
        also=("spec.analytics.availabilityWindow",),
    ),
    Invalid(
        "revenue-window-zero",
        _set("analytics.revenueWindow", "0m"),
        "spec.analytics.revenueWindow",
        rule(AnalyticsSpec, "revenueWindow").message,
    ),
    Invalid(
        "events-topic-dot",
        _set("kafka.eventsTopic", "."),
        "spec.kafka.eventsTopic",
        _should_match(KAFKA_TOPIC_PATTERN),
    ),
    Invalid(
        "events-topic-dot-dot",
        _set("kafka.eventsTopic", ".."),
        "spec.kafka.eventsTopic",
        _should_match(KAFKA_TOPIC_PATTERN),
    ),
    Invalid(
        "alerts-topic-dot",
        _set("alerts.sinks.kafka.topic", "."),
        "spec.alerts.sinks.kafka.topic",
        _should_match(KAFKA_TOPIC_PATTERN),
    ),
    Invalid(
        "bootstrap-server-port-zero",
        _set("kafka.bootstrapServers", ["kafka-0.kafka.svc:0"]),
        "spec.kafka.bootstrapServers[0]",
        _should_match(BOOTSTRAP_SERVER_PATTERN),
    ),
    Invalid(
        "bootstrap-server-port-too-large",
        _set("kafka.bootstrapServers", ["kafka-0.kafka.svc:65536"]),
        "spec.kafka.bootstrapServers[0]",
        _should_match(BOOTSTRAP_SERVER_PATTERN),
    ),
    Invalid(
        "bootstrap-server-empty-label",
        _set("kafka.bootstrapServers", ["kafka..svc:9092"]),
        "spec.kafka.bootstrapServers[0]",
        _should_match(BOOTSTRAP_SERVER_PATTERN),
    ),
    Invalid(
        "risingwave-host-empty-label",
        _set("risingwave", {"host": "rw..svc"}),
        "spec.risingwave.host",
        _should_match(HOST_PATTERN),
    ),
    Invalid(
        "risingwave-port-zero",
        _set("risingwave", {"host": "rw", "port": 0}),
        "spec.risingwave.port",
        "should be greater than or equal to 1",
    ),
    Invalid(
        "read-only-secret-name-empty-label",
        _set("readOnlyUser", {"enabled": True, "secretName": "a..b"}),
        "spec.readOnlyUser.secretName",
        _should_match(K8S_NAME_PATTERN),
    ),
    Invalid(
        "secret-key-dot-dot",
        _set(
            "alerts.sinks.postgres",
            {"host": "db", "database": "alerts", "credentialsSecretRef": {"name": "db", "passwordKey": ".."}},
        ),
        "spec.alerts.sinks.postgres.credentialsSecretRef.passwordKey",
        _should_match(SECRET_KEY_PATTERN),
    ),
    Invalid(
        "tls-certificate-without-key",
        _set(
            "kafka.security", {"protocol": "SSL", "tlsSecretRef": {"name": "k", "certificateKey": "tls.crt"}}
        ),
        "spec.kafka.security.tlsSecretRef.certificateKey",
        rule(TlsSecretRef, "certificateKey").message,
    ),
    Invalid(
        "tls-secret-ref-naming-no-key",
        _set("kafka.security", {"protocol": "SSL", "tlsSecretRef": {"name": "k"}}),
        "spec.kafka.security.tlsSecretRef.caKey",
        rule(TlsSecretRef, "caKey").message,
    ),
    Invalid(
        "kafka-tls-with-plaintext",
        _set("kafka.security", {"protocol": "PLAINTEXT", "tlsSecretRef": {"name": "k", "caKey": "ca.crt"}}),
        "spec.kafka.security.tlsSecretRef",
        rule(KafkaSecuritySpec, "tlsSecretRef").message,
    ),
    Invalid(
        "risingwave-tls-with-sslmode-disable",
        _set(
            "risingwave", {"host": "rw", "sslmode": "disable", "tlsSecretRef": {"name": "r", "caKey": "ca"}}
        ),
        "spec.risingwave.tlsSecretRef",
        rule(RisingWaveSpec, "tlsSecretRef").message,
    ),
    *(
        Invalid(
            f"alerts-db-{field.lower()}-with-sslmode-disable",
            _set(
                "alerts.sinks.postgres",
                {
                    "host": "db",
                    "database": "alerts",
                    "sslmode": "disable",
                    "credentialsSecretRef": {"name": "db"},
                    field: value,
                },
            ),
            f"spec.alerts.sinks.postgres.{field}",
            rule(PostgresAlertSink, field).message,
        )
        for field, value in (
            ("tlsSecretRef", {"name": "db-tls", "caKey": "ca.crt"}),
            ("sinkTlsFiles", {"caPath": "/etc/pg/ca.pem"}),
        )
    ),
    Invalid(
        "sink-tls-files-certificate-without-key",
        _set(
            "alerts.sinks.postgres",
            {
                "host": "db",
                "database": "alerts",
                "sslmode": "verify-full",
                "credentialsSecretRef": {"name": "db"},
                "sinkTlsFiles": {"certificatePath": "/etc/pg/tls.crt"},
            },
        ),
        "spec.alerts.sinks.postgres.sinkTlsFiles.certificatePath",
        rule(NodeTlsFiles, "certificatePath").message,
    ),
    Invalid(
        "sink-tls-files-naming-no-file",
        _set(
            "alerts.sinks.postgres",
            {
                "host": "db",
                "database": "alerts",
                "sslmode": "verify-full",
                "credentialsSecretRef": {"name": "db"},
                "sinkTlsFiles": {},
            },
        ),
        "spec.alerts.sinks.postgres.sinkTlsFiles.caPath",
        rule(NodeTlsFiles, "caPath").message,
    ),
    Invalid(
        "sink-tls-file-path-relative",
        _set(
            "alerts.sinks.postgres",
            {
                "host": "db",
                "database": "alerts",
                "sslmode": "verify-full",
                "credentialsSecretRef": {"name": "db"},
                "sinkTlsFiles": {"caPath": "ca.pem?x=1"},
            },
        ),
        "spec.alerts.sinks.postgres.sinkTlsFiles.caPath",
        _should_match(FILE_PATH_PATTERN),
    ),
    # Strict field validation is a decoding error: 400 BadRequest, not 422 Invalid.
    Invalid(
        "unknown-field",
        _set("kafka.partitionCount", 3),
        "spec.kafka.partitionCount",
        'strict decoding error: unknown field "spec.kafka.partitionCount"',
        status=400,
    ),
]


def invalid_doc(case: Invalid) -> dict[str, Any]:
    doc = copy.deepcopy(example_cr("voltbay"))
    doc["metadata"]["name"] = f"bad-{case.id}"[:63]
    case.mutate(doc)
    return doc


def test_enough_invalid_cases_are_checked() -> None:
    assert len([case for case in INVALID if case.status == 422]) >= 12


def _rules_by_model(model: type[pydantic.BaseModel]) -> Iterator[tuple[type[pydantic.BaseModel], Rule]]:
    seen: set[type] = set()
    stack = [model]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for r in getattr(current, "rules", ()):
            yield current, r
        for info in current.model_fields.values():
            stack.extend(_nested_models(info.annotation))


def _nested_models(annotation: Any) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]


def test_every_rule_of_the_model_has_a_case_the_apiserver_must_reject() -> None:
    """Each cross-field rule (there is no other kind of Python-only check, see test_crd) is
    proven at admission by a case below that expects exactly its message on its field."""
    uncovered = []
    for model, r in _rules_by_model(ChargingAnalyticsSpec):
        if not any(case.message == r.message and case.field.endswith(f".{r.field}") for case in INVALID):
            uncovered.append(f"{model.__name__}.{r.field}: {r.message}")
    assert uncovered == []


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.id)
def test_invalid_resource_is_rejected_naming_the_field(
    control_plane: ControlPlane, namespace: str, case: Invalid
) -> None:
    doc = invalid_doc(case)
    with pytest.raises(KubeApiError) as err:
        control_plane.rest.create(doc, namespace)
    exc = err.value
    assert exc.status == case.status, exc.body
    assert case.message in exc.message
    if case.status == 422:
        assert exc.reason == "Invalid"
        named = [cause for cause in exc.causes if cause.get("field") == case.field]
        assert any(case.message in cause["message"] for cause in named), exc.causes
        # Nothing else is blamed, except the object holding the field (a CEL rule of the parent
        # can fail to evaluate on the invalid value).
        assert all(case.field.startswith(f) or f in case.also for f in exc.fields), exc.causes
    else:
        assert case.field in exc.message
    with pytest.raises(KubeApiError) as missing:
        control_plane.rest.get(cr_path(namespace, doc["metadata"]["name"]))
    assert missing.value.status == 404


@pytest.mark.parametrize("case", INVALID, ids=lambda case: case.id)
def test_python_model_rejects_the_same_resource(case: Invalid) -> None:
    with pytest.raises(pydantic.ValidationError):
        ChargingAnalytics.model_validate(invalid_doc(case))


def test_tenant_cannot_change_on_update(control_plane: ControlPlane, namespace: str) -> None:
    doc = example_cr("voltbay")
    control_plane.apply_manifest([doc], namespace)
    doc["spec"]["tenant"] = "voltbay_two"
    with pytest.raises(KubeApiError) as err:
        control_plane.apply_manifest([doc], namespace)
    assert err.value.status == 422
    assert err.value.fields == ["spec.tenant"]
    assert "tenant is immutable" in err.value.message
    # Other fields still update.
    doc["spec"]["tenant"] = "voltbay"
    doc["spec"]["mode"] = "Plan"
    (updated,) = control_plane.apply_manifest([doc], namespace)
    assert updated["spec"]["mode"] == "Plan"
    assert updated["metadata"]["generation"] == 2


# --------------------------------------------------------------------------------------------
# Status subresource and printer columns
# --------------------------------------------------------------------------------------------


def _ready(status: str = "True", reason: str = "Reconciled") -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": "all objects ready",
        "lastTransitionTime": now,
        "observedGeneration": 1,
    }


def test_status_subresource_changes_status_only(control_plane: ControlPlane, namespace: str) -> None:
    rest = control_plane.rest
    control_plane.apply_manifest([example_cr("voltbay")], namespace)
    patched = rest.merge_patch(
        cr_path(namespace, "voltbay", "status"),
        {"spec": {"mode": "Plan"}, "status": {"observedGeneration": 1, "conditions": [_ready()]}},
    )
    assert patched["spec"]["mode"] == "Apply"  # spec changes through /status are ignored
    assert get_status_condition(patched, "Ready") is not None
    assert patched["metadata"]["generation"] == 1
    # ... and status changes through the main resource are ignored.
    main = rest.merge_patch(cr_path(namespace, "voltbay"), {"status": {"observedGeneration": 7}})
    assert main["status"]["observedGeneration"] == 1
    stored = rest.get(cr_path(namespace, "voltbay"))
    assert stored["status"]["conditions"][0]["reason"] == "Reconciled"


def test_a_watch_yields_the_changes_after_a_listing_and_can_be_left_early(
    control_plane: ControlPlane, namespace: str
) -> None:
    rest = control_plane.rest
    control_plane.apply_manifest([example_cr("voltbay")], namespace)
    listing = rest.get(cr_path(namespace))
    rest.merge_patch(cr_path(namespace, "voltbay", "status"), {"status": {"observedGeneration": 1}})
    rest.merge_patch(cr_path(namespace, "voltbay"), {"metadata": {"labels": {"watched": "yes"}}})
    seen = []
    for event in rest.watch(cr_path(namespace), listing["metadata"]["resourceVersion"], timeout_seconds=5):
        item = event["object"]
        seen.append((event["type"], item["status"].get("observedGeneration"), item["metadata"].get("labels")))
        if len(seen) == 2:
            break  # leaving the stream early closes its connection
    assert seen == [("MODIFIED", 1, None), ("MODIFIED", 1, {"watched": "yes"})]
    assert rest.get(cr_path(namespace, "voltbay"))["metadata"]["labels"] == {"watched": "yes"}


def test_status_schema_rejects_unknown_condition_status(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.apply_manifest([example_cr("voltbay")], namespace)
    with pytest.raises(KubeApiError) as err:
        control_plane.rest.merge_patch(
            cr_path(namespace, "voltbay", "status"), {"status": {"conditions": [_ready(status="Maybe")]}}
        )
    assert err.value.status == 422
    assert err.value.fields == ["status.conditions[0].status"]


def test_printer_columns_show_tenant_and_ready(control_plane: ControlPlane, namespace: str) -> None:
    rest = control_plane.rest
    control_plane.apply_manifest([example_cr("voltbay")], namespace)
    rest.merge_patch(cr_path(namespace, "voltbay", "status"), {"status": {"conditions": [_ready()]}})
    table = rest.get(cr_path(namespace), headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    columns = [(col["name"], col.get("priority", 0)) for col in table["columnDefinitions"]]
    assert columns == [
        ("Name", 0),
        ("Tenant", 0),
        ("Mode", 1),
        ("Ready", 0),
        ("Reason", 0),
        ("Drifted", 1),
        ("Age", 0),
    ]
    (row,) = table["rows"]
    assert row["cells"][:5] == ["voltbay", "voltbay", "Apply", "True", "Reconciled"]


# --------------------------------------------------------------------------------------------
# Identities and RBAC (make_user_kubeconfig)
# --------------------------------------------------------------------------------------------


def test_user_kubeconfig_authenticates_a_non_admin_subject_to_rbac(
    control_plane: ControlPlane, namespace: str
) -> None:
    kubeconfig = control_plane.make_user_kubeconfig("alice", ["tenant-viewers"])
    alice = KubeRest.from_kubeconfig(kubeconfig)
    review = alice.post(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == "alice"
    assert "tenant-viewers" in review["status"]["userInfo"]["groups"]
    assert "system:masters" not in review["status"]["userInfo"]["groups"]

    with pytest.raises(KubeApiError) as err:
        alice.get(cr_path(namespace))
    assert err.value.status == 403
    assert 'User "alice"' in err.value.message

    control_plane.apply_manifest(
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "cha-viewer"},
                "rules": [{"apiGroups": [c.GROUP], "resources": [c.PLURAL], "verbs": ["get", "list"]}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "cha-viewers"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cha-viewer"},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "tenant-viewers"}
                ],
            },
        ],
        namespace,
    )
    # The RBAC authorizer reads bindings from an informer: allow it to catch up.
    listing = wait_for(lambda: alice.get(cr_path(namespace)), 15, "RBAC grant to take effect", poll=STARTUP)
    assert listing["items"] == []
    with pytest.raises(KubeApiError) as denied:
        alice.create(example_cr("voltbay"), namespace)
    assert denied.value.status == 403


# --------------------------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------------------------


@pytest.mark.k8s
def test_control_plane_stops_both_processes_and_removes_its_directory() -> None:
    plane = ControlPlane().start()
    pids, workdir = plane.pids, plane.workdir
    assert len(pids) == 2
    assert workdir is not None
    assert plane.rest.version()["gitVersion"] == kubernetes_version()
    plane.stop()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # no process left in its group
    assert not workdir.exists()


@pytest.mark.parametrize("price", [1, 0, 1000, 0.0001, 999.9999])
def test_whole_and_four_decimal_prices_are_admitted(
    control_plane: ControlPlane, namespace: str, price: float
) -> None:
    doc = copy.deepcopy(example_cr("voltbay"))
    doc["metadata"]["name"] = f"price-{str(price).replace('.', '-')}"
    doc["spec"]["analytics"]["tariffs"]["pricePerKwh"]["CCS"] = price
    control_plane.rest.create(doc, namespace)
    assert ChargingAnalytics.model_validate(doc).spec.analytics.tariffs.price_per_kwh.ccs == price
