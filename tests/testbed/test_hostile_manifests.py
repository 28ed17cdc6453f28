"""Manifests that can never work are refused at admission, by the model and by the real API server.

Each case takes a valid tenant and puts, into one field, a value no broker, database, cluster or
the operator itself can ever use: a Kafka topic Kafka refuses, port 0, a host or Secret name with
an empty DNS label, a Secret key Kubernetes refuses, a price RisingWave would round, or a schema
name the operator or RisingWave owns. Run as a script, it prints how many of them the Python
model accepts (``python3 -m tests.testbed.test_hostile_manifests``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest

from charging_analytics.spec import ChargingAnalytics
from testbed.controlplane import ControlPlane, KubeApiError
from testbed.specs import resource, spec_dict

KAFKA, DB = {"name": "kafka"}, {"name": "db"}
BASE: dict[str, Any] = resource(
    "hostile",
    None,
    spec_dict(
        "hostile",
        bootstrap="kafka-0.kafka.svc:9092",
        events_topic="ocpp.events",
        risingwave={"host": "rw.example", "port": 4566, "credentialsSecretRef": {"name": "rw"}},
        kafka={"security": {"protocol": "SASL_SSL", "saslMechanism": "PLAIN", "credentialsSecretRef": KAFKA}},
        alerts={
            "stalledSessionMinutes": None,
            "sinks": {
                "kafka": {"topic": "ocpp.alerts"},
                "postgres": {"host": "db.example", "database": "alerts", "credentialsSecretRef": DB},
            },
        },
        readOnlyUser={"enabled": True, "secretName": "reader"},
    ),
)

TOPIC_FIELDS = ("kafka.eventsTopic", "alerts.sinks.kafka.topic")
BAD_TOPICS = (".", "..", "...")
HOST_FIELDS = ("risingwave.host", "alerts.sinks.postgres.host")
BAD_HOSTS = ("a..b", "a.-b", "a-.b", "a.", "x" * 64 + ".example")
SECRET_NAME_FIELDS = (
    "risingwave.credentialsSecretRef.name",
    "kafka.security.credentialsSecretRef.name",
    "alerts.sinks.postgres.credentialsSecretRef.name",
    "readOnlyUser.secretName",
)
BAD_SECRET_NAMES = ("a..b", "a.-b", "a-.b", "a.")
SECRET_KEY_FIELDS = tuple(
    f"{ref}.{key}"
    for ref in (
        "risingwave.credentialsSecretRef",
        "kafka.security.credentialsSecretRef",
        "alerts.sinks.postgres.credentialsSecretRef",
    )
    for key in ("usernameKey", "passwordKey")
)
BAD_SECRET_KEYS = (".", "..", "..data")
PORT_FIELDS = ("risingwave.port", "alerts.sinks.postgres.port")
BAD_BOOTSTRAP = ("kafka:0", "kafka:00", "kafka:65536", "kafka:99999", "kafka..svc:9092", "kafka.:9092")
PRICE_FIELDS = tuple(f"analytics.tariffs.pricePerKwh.{k}" for k in ("CCS", "CHAdeMO", "Type2"))
BAD_PRICES = (0.12345, 0.00001, 1e-12)


@dataclass(frozen=True)
class Hostile:
    field: str
    value: Any

    @property
    def id(self) -> str:
        return f"{self.field}={self.value!r}"[:80]

    def manifest(self) -> dict[str, Any]:
        doc = copy.deepcopy(BASE)
        node = doc["spec"]
        *parents, leaf = self.field.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = self.value
        return doc


def hostile_manifests() -> Iterator[Hostile]:
    for f in TOPIC_FIELDS:
        yield from (Hostile(f, v) for v in BAD_TOPICS)
    for f in HOST_FIELDS:
        yield from (Hostile(f, v) for v in BAD_HOSTS)
    for f in SECRET_NAME_FIELDS:
        yield from (Hostile(f, v) for v in BAD_SECRET_NAMES)
    for f in SECRET_KEY_FIELDS:
        yield from (Hostile(f, v) for v in BAD_SECRET_KEYS)
    for f in PORT_FIELDS:
        yield Hostile(f, 0)
    yield from (Hostile("kafka.bootstrapServers", [v]) for v in BAD_BOOTSTRAP)
    for f in PRICE_FIELDS:
        yield from (Hostile(f, v) for v in BAD_PRICES)
    yield from (Hostile("tenant", t) for t in ("cha_system", "pg_toast", "rw_catalog", "public"))


CASES = list(hostile_manifests())


def model_accepts(case: Hostile) -> bool:
    try:
        ChargingAnalytics.model_validate(case.manifest())
    except pydantic.ValidationError:
        return False
    return True


def test_the_base_manifest_is_valid() -> None:
    ChargingAnalytics.model_validate(BASE)
    assert len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_model_refuses_a_manifest_that_can_never_work(case: Hostile) -> None:
    assert not model_accepts(case)


def test_apiserver_refuses_every_manifest_that_can_never_work_naming_the_field(
    control_plane: ControlPlane, namespace: str
) -> None:
    control_plane.rest.create(BASE, namespace)  # the base itself is admitted
    accepted: list[str] = []
    refusals: list[tuple[Hostile, KubeApiError]] = []
    for index, case in enumerate(CASES):
        doc = case.manifest()
        doc["metadata"]["name"] = f"hostile-{index}"
        try:
            control_plane.rest.create(doc, namespace)
        except KubeApiError as err:
            refusals.append((case, err))
            continue
        accepted.append(case.id)
    assert accepted == []
    for case, refusal in refusals:
        assert refusal.status == 422, refusal.body
        leaf = f"spec.{case.field}"
        assert any(cause.get("field", "").startswith(leaf) for cause in refusal.causes), refusal.causes


if __name__ == "__main__":  # pragma: no cover - a figure for reports
    taken = [case.id for case in CASES if model_accepts(case)]
    print(f"{len(taken)} of {len(CASES)} manifests that can never work pass the model")
    for item in taken:
        print(f"  accepted: {item}")
