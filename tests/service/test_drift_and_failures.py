"""Drift, unavailability, missing prerequisites and tenant conflicts, end to end."""

from __future__ import annotations

import time

from charging_analytics import constants as c
from charging_analytics.operator import metrics
from charging_analytics.operator.main import DRIFT_CHECK
from testbed.polling import wait_for
from tests.service.harness import Harness, Reconciles


def _errors(reason: str) -> float:
    value: float = metrics.RECONCILE_ERRORS.labels(reason)._value.get()
    return value


def test_dropped_view_is_reported_then_corrected(harness: Harness) -> None:
    body = harness.tenant("acme", onDrift="Correct")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.execute(f'DROP MATERIALIZED VIEW "{tenant}"."alerts" CASCADE')
        wait_for(
            lambda: any(e["reason"] == "DriftCorrected" for e in harness.events()), 30, "DriftCorrected event"
        )
        obj = harness.wait_condition("acme", c.COND_DRIFTED, "False")
    assert f"{tenant}.alerts" in harness.rw_objects(tenant)
    assert f"{tenant}.alerts_to_kafka" in harness.rw_objects(tenant)  # dropped by the CASCADE, rebuilt
    ready = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_READY)
    assert ready["status"] == "True"
    message = next(e["message"] for e in harness.events() if e["reason"] == "DriftCorrected")
    assert f"{tenant}.alerts is missing" in message


def test_drift_under_report_is_flagged_but_not_touched(harness: Harness) -> None:
    body = harness.tenant("acme", onDrift="Report")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.execute(f'DROP SINK "{tenant}"."alerts_to_kafka"')
        obj = harness.wait_condition("acme", c.COND_DRIFTED, "True", timeout=30)
        time.sleep(3)  # more than a drift interval: the operator must still leave it alone
    assert f"{tenant}.alerts_to_kafka" not in harness.rw_objects(tenant)
    drifted = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_DRIFTED)
    assert drifted["message"] == f"Sink {tenant}.alerts_to_kafka is missing"


def test_view_replaced_behind_the_operators_back_is_detected_as_modified(harness: Harness) -> None:
    body = harness.tenant("acme", onDrift="Report")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.wait_condition("acme", c.COND_DRIFTED, "False")
        harness.rw.execute(f'DROP VIEW "{tenant}"."active_sessions_live"')
        harness.rw.execute(
            f'CREATE VIEW "{tenant}"."active_sessions_live" AS '
            f'SELECT session_id FROM "{tenant}"."active_sessions"'
        )
        obj = harness.wait_condition("acme", c.COND_DRIFTED, "True", timeout=30)
    drifted = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_DRIFTED)
    assert f"View {tenant}.active_sessions_live is modified" in drifted["message"]


def test_unreachable_risingwave_stalls_with_backoff_then_recovers(harness: Harness) -> None:
    harness.rw.unreachable = True
    before = _errors("RisingWaveUnavailable")
    with harness.operator():
        harness.create(harness.tenant("acme"))
        obj = harness.wait_condition("acme", c.COND_STALLED, "True", reason="RisingWaveUnavailable")
        window_start = time.monotonic()
        time.sleep(8)
        attempts = _errors("RisingWaveUnavailable") - before
        elapsed = time.monotonic() - window_start
        harness.rw.unreachable = False
        harness.wait_ready("acme", timeout=60)
    # backoff 1, 2, 4, 4 s (+ a drift pass every 2 s): a handful of attempts, not a hot loop
    assert 1 <= attempts <= 2 * elapsed, attempts
    ready = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_READY)
    assert ready["status"] == "False"
    # a true bound: the backoff is capped by the drift interval (2 s here), which retries too
    bound = int(ready["message"].rsplit("next attempt within ", 1)[1].rstrip("s)"))
    assert bound <= 2
    # Events carry no delay, and an identical one is not posted again: one Event, not one per attempt
    unavailable = [e for e in harness.events() if e["reason"] == "RisingWaveUnavailable"]
    assert attempts >= 2
    assert len(unavailable) == 1, [e["message"] for e in unavailable]
    assert "retrying" not in unavailable[0]["message"]


def test_missing_secret_stalls_naming_it_until_it_is_created(harness: Harness) -> None:
    body = harness.tenant("acme", postgres_sink=True)
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("acme", c.COND_STALLED, "True", reason="SecretMissing")
        stalled = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_STALLED)
        assert f"Secret {harness.ns}/acme-alerts-db not found" in stalled["message"]
        assert "spec.alerts.sinks.postgres.credentialsSecretRef" in stalled["message"]
        harness.alerts_db_secret("acme")
        harness.wait_ready("acme", timeout=60)


def test_secret_without_the_referenced_key_stalls_naming_the_key(harness: Harness) -> None:
    harness.secret("acme-alerts-db", {"user": "x", "password": "y"})
    with harness.operator():
        harness.create(harness.tenant("acme", postgres_sink=True))
        obj = harness.wait_condition("acme", c.COND_STALLED, "True", reason="SecretKeyMissing")
    stalled = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_STALLED)
    assert "has no key 'username'" in stalled["message"]


def test_missing_events_topic_stalls_naming_the_topic_until_it_exists(harness: Harness) -> None:
    body = harness.tenant("acme", create_topic_=False)
    topic = body["spec"]["kafka"]["eventsTopic"]
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("acme", c.COND_STALLED, "True", reason="EventsTopicMissing")
        stalled = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_STALLED)
        assert f"events topic {topic!r} does not exist" in stalled["message"]
        assert harness.rw_objects(body["spec"]["tenant"]) == set()  # nothing half-applied
        harness.ensure_topic(topic)
        harness.wait_ready("acme", timeout=60)


def test_second_resource_claiming_a_tenant_is_refused_and_the_first_untouched(harness: Harness) -> None:
    first = harness.tenant("first")
    tenant = first["spec"]["tenant"]
    second = harness.tenant("second", tenant=tenant, alerts={"stalledSessionMinutes": 30})
    with harness.operator():
        harness.create(first)
        harness.wait_ready("first")
        definition = harness.rw.object(f"{tenant}.stalled_sessions").definition
        harness.rw.clear_statements()
        harness.create(second)
        obj = harness.wait_condition("second", c.COND_STALLED, "True", reason="TenantConflict")
        time.sleep(2)
        harness.wait_ready("first")
    stalled = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_STALLED)
    assert f"already owned by {harness.ns}/first" in stalled["message"]
    ddl = [
        s
        for s in harness.rw.statements
        if s.lstrip().upper().startswith(("CREATE", "DROP", "ALTER", "INSERT", "DELETE"))
    ]
    assert ddl == []
    assert harness.rw.object(f"{tenant}.stalled_sessions").definition == definition


def test_drift_passes_that_find_nothing_leave_no_log_line(harness: Harness, reconciles: Reconciles) -> None:
    """A quiet pass per resource per interval would be a log line per resource per interval (Kopf
    logs one after each pass of a timer); Kopf's other lines (the create handler's success) stay."""
    with harness.operator():
        harness.create(harness.tenant("acme"))
        harness.wait_ready("acme")
        reconciles.wait_more("acme", 3)
    output = harness.outputs[-1]
    assert "Handler 'on_create' succeeded." in output
    # Kopf logs the drift daemon's exit when the operator stops, once per resource
    lines = [line for line in output.splitlines() if DRIFT_CHECK in line]
    assert len(lines) == 1, lines
    assert lines[0].endswith(f"/acme] Daemon {DRIFT_CHECK!r} succeeded."), lines
