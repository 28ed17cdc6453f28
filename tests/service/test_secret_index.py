"""Which resources a Secret change reconciles comes from Kopf's index of the resources' specs, so it
is complete right after a restart (before any resource has reconciled) and forgets deleted ones."""

from __future__ import annotations

from typing import Any

import pytest

from charging_analytics.operator.main import secrets_used
from charging_analytics.operator.quiet import ValidatedSpecs
from charging_analytics.operator.service import Outcome, Resource, Service
from testbed.polling import wait_for
from tests.service.harness import Harness


def test_the_index_lists_every_secret_a_spec_reads_and_the_read_only_users() -> None:
    spec = {
        "tenant": "acme",
        "kafka": {
            "bootstrapServers": ["k:9092"],
            "eventsTopic": "ocpp.acme.events",
            "security": {
                "protocol": "SASL_SSL",
                "saslMechanism": "SCRAM-SHA-512",
                "credentialsSecretRef": {"name": "kafka-creds"},
                "tlsSecretRef": {"name": "kafka-ca", "caKey": "ca.crt"},
            },
        },
        "analytics": {
            "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 0.5, "CHAdeMO": 0.4, "Type2": 0.3}}
        },
        "alerts": {
            "sinks": {
                "postgres": {
                    "host": "pg",
                    "database": "alerts",
                    "table": "acme_alerts",
                    "credentialsSecretRef": {"name": "pg-creds"},
                }
            }
        },
        "readOnlyUser": {"enabled": True},
    }
    every = {"kafka-creds", "kafka-ca", "pg-creds", "acme-readonly"}
    assert secrets_used("ns", "acme", spec) == every
    assert secrets_used("ns", "acme", {"tenant": "acme", "no such field": 1}) == set()

    # with the service's validated specs, the spec is validated once while it stays the same
    specs = ValidatedSpecs()
    assert secrets_used("ns", "acme", spec, specs) == every
    model = specs.model("ns/acme", spec)
    assert secrets_used("ns", "acme", dict(spec), specs) == every
    assert specs.model("ns/acme", spec) is model
    changed = {**spec, "readOnlyUser": {"enabled": False}}
    assert secrets_used("ns", "acme", changed, specs) == {"kafka-creds", "kafka-ca", "pg-creds"}
    assert secrets_used("ns", "acme", {"tenant": "acme", "no such field": 1}, specs) == set()


def _alerts_secret(harness: Harness, name: str, rotation: str) -> None:
    """The tenant's alerts database Secret with the same credentials and a changed marker key (a
    rotation the database still accepts)."""
    harness.secret(
        f"{name}-alerts-db",
        {"username": harness.pg.alerts_user, "password": harness.pg.alerts_password, "rotation": rotation},
    )


def test_after_a_restart_a_secret_change_reconciles_a_resource_that_has_not_reconciled_since(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("acme", "other"):
        _alerts_secret(harness, name, "0")
    with harness.operator():
        for name in ("acme", "other"):
            harness.create(harness.tenant(name, postgres_sink=True))
        for name in ("acme", "other"):
            harness.wait_ready(name)

    seen: list[tuple[str, str]] = []
    original = Service.reconcile

    async def resume_deferred(self: Service, res: Resource, *, origin: str) -> Any:
        seen.append((origin, res.name))
        if origin == "resume":
            return Outcome()  # as if the resume pass had not reached the resource yet
        return await original(self, res, origin=origin)

    monkeypatch.setattr(Service, "reconcile", resume_deferred)
    with harness.operator():
        wait_for(lambda: {("resume", "acme"), ("resume", "other")} <= set(seen), 30, "both resumed")
        assert [s for s in seen if s[0] != "resume"] == []  # nothing has really reconciled

        _alerts_secret(harness, "acme", "1")
        wait_for(lambda: ("secret", "acme") in seen, 30, "a reconcile of acme triggered by its Secret")
        assert ("secret", "other") not in seen  # only the resource that reads the Secret

        harness.delete("acme")
        harness.wait_gone("acme")
        before = len([s for s in seen if s == ("secret", "acme")])
        _alerts_secret(harness, "acme", "2")
        # Kopf sees the namespace's Secret changes in order: once other's is handled, acme's was
        _alerts_secret(harness, "other", "1")
        wait_for(lambda: ("secret", "other") in seen, 30, "a reconcile of other triggered by its Secret")
        assert len([s for s in seen if s == ("secret", "acme")]) == before
