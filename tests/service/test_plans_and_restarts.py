"""Plan mode, approvals of destructive plans, interrupted applies, and credential hygiene."""

from __future__ import annotations

import json
import logging

import pytest

from charging_analytics import constants as c
from testbed.polling import wait_for
from tests.service.harness import KAFKA_PASSWORD, Harness


def _ddl(harness: Harness) -> list[str]:
    return [s for s in harness.rw.statements if s.lstrip().upper().startswith(("CREATE", "DROP", "ALTER"))]


def test_plan_mode_publishes_the_plan_and_changes_nothing(harness: Harness) -> None:
    body = harness.tenant("acme", mode="Plan")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("acme", c.COND_READY, "True", reason="PlanReady")
        event = wait_for(
            lambda: next((e for e in harness.events() if e["reason"] == "PlanReady"), None),
            20,
            "PlanReady event",
        )
    plan = obj["status"]["plan"]
    assert event["message"] == f"plan {plan['hash']}: 2 bootstrap, 1 claim, {plan['actions'] - 3} create"
    assert plan["actions"] == len(plan["statements"]) > 10
    assert any(
        s.startswith(f'CREATE SOURCE IF NOT EXISTS "{tenant}"."ocpp_events"') for s in plan["statements"]
    )
    assert plan["hash"] == obj["status"]["planHash"]
    assert _ddl(harness) == []
    assert harness.rw_objects(tenant) == set()
    # a healthy Plan-mode tenant reads coherently: Ready, and its objects pending, not "Missing"
    assert {o["state"] for o in obj["status"]["objects"]} == {"Pending"}
    ready = next(x for x in obj["status"]["conditions"] if x["type"] == "Ready")
    assert "nothing was applied" in ready["message"]


def test_plan_mode_then_apply_mode_applies_the_published_plan(harness: Harness) -> None:
    body = harness.tenant("acme", mode="Plan")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_condition("acme", c.COND_READY, "True", reason="PlanReady")
        harness.patch_spec("acme", {"mode": "Apply"})
        obj = harness.wait_ready("acme")
    assert f"{tenant}.alerts" in harness.rw_objects(tenant)
    assert obj["status"].get("plan") is None


def test_destructive_plan_waits_for_approval_and_refuses_a_stale_one(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    new_topic = f"ocpp.{tenant}.events.v2"
    harness.ensure_topic(new_topic)
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        harness.patch_spec("acme", {"kafka": {"eventsTopic": new_topic}})
        obj = harness.wait_condition("acme", c.COND_READY, "False", reason="ApprovalPending")
        plan = obj["status"]["plan"]
        assert plan["destructive"] is True
        assert _ddl(harness) == []

        harness.annotate("acme", c.ANNOTATION_APPROVED_PLAN, "sha256:000000000000000000000000")
        stale = wait_for(
            lambda: "is stale" in (harness.condition("acme", c.COND_READY) or {}).get("message", ""),
            30,
            "stale approval to be reported",
        )
        assert stale
        assert _ddl(harness) == []

        harness.annotate("acme", c.ANNOTATION_APPROVED_PLAN, plan["hash"])
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
    assert f"topic = '{new_topic}'" in harness.rw.object(f"{tenant}.ocpp_events").definition
    assert harness.rw_objects(tenant) >= {f"{tenant}.alerts", f"{tenant}.alerts_to_kafka"}


def test_operator_restarted_after_a_failed_statement_converges(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    harness.rw.fail_next(
        "CREATE MATERIALIZED VIEW", "internal error: compute node lost", after=True, disconnect=True
    )
    with harness.operator():
        harness.create(body)
        harness.wait_condition("acme", c.COND_STALLED, "True", timeout=30)
    # a new operator process: it resumes the resource and finishes the interrupted apply
    with harness.operator():
        harness.wait_ready("acme", timeout=60)
    objects = harness.rw_objects(tenant)
    assert len(objects) == 18  # the source, 16 views and the Kafka sink
    assert not any(o.endswith("__next") for o in objects)


def test_interrupted_view_rebuild_converges_on_the_next_reconcile(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        # the swap of the rebuilt view fails once: a shadow is left behind
        harness.rw.fail_next("SWAP WITH", "internal error: meta unavailable")
        harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": 45}})
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied", timeout=60)
    objects = harness.rw_objects(tenant)
    assert not any(o.endswith("__next") for o in objects)
    assert "INTERVAL '2700 seconds'" in harness.rw.object(f"{tenant}.stalled_sessions").definition
    assert len(objects) == 18  # the source, 16 views and the Kafka sink


def test_no_credential_reaches_logs_events_status_or_plans(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    harness.secret("sasl-kafka", {"username": "pipeline", "password": KAFKA_PASSWORD})
    harness.alerts_db_secret("planned")
    harness.alerts_db_secret("applied")
    db_password = harness.pg.alerts_password
    sasl = harness.tenant(
        "sasl",
        mode="Plan",
        kafka={
            "security": {
                "protocol": "SASL_PLAINTEXT",
                "saslMechanism": "PLAIN",
                "credentialsSecretRef": {"name": "sasl-kafka"},
            }
        },
    )
    planned = harness.tenant("planned", postgres_sink=True, mode="Plan")
    applied = harness.tenant("applied", postgres_sink=True)
    with harness.operator():
        for body in (sasl, planned, applied):
            harness.create(body)
        # the SASL handshake cannot succeed against the PLAINTEXT test broker: Stalled, with a message
        harness.wait_condition("sasl", c.COND_STALLED, "True", timeout=60)
        harness.wait_condition("planned", c.COND_READY, "True", reason="PlanReady")
        harness.wait_ready("applied")
        wait_for(lambda: any(e["reason"] == "Applied" for e in harness.events()), 20, "Applied event")
        statuses = [harness.get(name) for name in ("sasl", "planned", "applied")]
    plan_sql = "\n".join(statuses[1]["status"]["plan"]["statements"])  # type: ignore[index]
    assert "password = '[redacted]'" in plan_sql
    # the credential did reach RisingWave (inline fallback: no secret store in the double by default) ...
    assert any(db_password in statement for statement in harness.rw.statements)
    # ... and nowhere else
    texts = [json.dumps(statuses), json.dumps(harness.events()), caplog.text, *harness.outputs]
    for text in texts:
        assert KAFKA_PASSWORD not in text
        assert db_password not in text
