"""The operator against the real apiserver (KopfRunner), Kafka, PostgreSQL and the RisingWave double:
create, update, delete, and what the status says along the way."""

from __future__ import annotations

import base64
import re

import pytest

from charging_analytics import constants as c
from charging_analytics.rw.capabilities import FLOOR, NEWEST_KNOWN
from testbed.kafka import list_topics
from testbed.polling import wait_for
from tests.service.harness import Harness

# Every lifecycle test runs on the oldest supported RisingWave and on the newest known one.
pytestmark = pytest.mark.parametrize("risingwave_version", [str(FLOOR), str(NEWEST_KNOWN)])

PIPELINE = {
    "ocpp_events", "sessions", "completed_sessions", "active_sessions", "active_sessions_live",
    "station_revenue", "stalled_sessions", "status_intervals", "status_minutes",
    "connector_status_time", "connector_uptime", "connector_status", "connector_status_live",
    "connector_down", "connector_faults", "low_availability", "alerts", "alerts_to_kafka",
}  # fmt: skip


_TARGET = re.compile(
    r"^(?:CREATE (?:MATERIALIZED VIEW|VIEW|SINK|SOURCE|TABLE|SECRET)(?: IF NOT EXISTS)?"
    r"|DROP (?:MATERIALIZED VIEW|VIEW|SINK|SOURCE|TABLE|SECRET)(?: IF EXISTS)?"
    r"|ALTER (?:MATERIALIZED VIEW|VIEW|SINK|SOURCE))"
    r' "(?P<schema>[^"]+)"\."(?P<name>[^"]+)"'
)


def _touched(harness: Harness, tenant: str) -> set[str]:
    """Objects of ``tenant`` that DDL acted on (shadows count as their base object)."""
    out: set[str] = set()
    for statement in _ddl(harness):
        m = _TARGET.match(statement)
        assert m is not None, statement
        if m["schema"] == tenant:
            out.add(m["name"].removesuffix("__next"))
    return out


def _ddl(harness: Harness) -> list[str]:
    """DDL the double executed since the last clear (ledger writes and catalog reads left out)."""
    return [
        s for s in harness.rw.statements
        if s.lstrip().upper().startswith(("CREATE", "DROP", "ALTER"))
    ]  # fmt: skip


def test_new_tenant_becomes_ready_with_exactly_its_pipeline(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        obj = harness.wait_ready("acme")
        reasons = wait_for(
            lambda: {"Applied", "TopicCreated"} <= (r := {e["reason"] for e in harness.events()}) and r,
            20,
            "Applied and TopicCreated events",
        )
    assert harness.rw_objects(tenant) == {f"{tenant}.{n}" for n in PIPELINE}
    status = obj["status"]
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert {o["name"].split(".", 1)[-1] for o in status["objects"]} == PIPELINE | {tenant}
    assert all(o["state"] == "Ready" for o in status["objects"])
    conds = {cond["type"]: cond for cond in status["conditions"]}
    assert conds["Stalled"]["status"] == "False"
    assert conds["Reconciling"]["status"] == "False"
    assert conds["Drifted"]["status"] == "False"
    assert all(cond["observedGeneration"] == obj["metadata"]["generation"] for cond in conds.values())
    # the alerts topic was created by the operator
    assert f"ocpp.{tenant}.alerts" in list_topics(harness.kafka)
    assert "EventsTopicMissing" not in reasons


def test_threshold_change_rebuilds_only_the_stalled_subgraph_and_repoints_sinks(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": 25}})
        obj = harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
    ddl = _ddl(harness)
    assert _touched(harness, tenant) == {"stalled_sessions", "alerts", "alerts_to_kafka"}
    assert any(s.startswith(f'ALTER MATERIALIZED VIEW "{tenant}"."stalled_sessions" SWAP WITH') for s in ddl)
    assert any(s.startswith(f'CREATE SINK IF NOT EXISTS "{tenant}"."alerts_to_kafka"') for s in ddl)
    assert "INTERVAL '1500 seconds'" in harness.rw.object(f"{tenant}.stalled_sessions").definition
    assert obj["status"]["observedGeneration"] == 2
    assert harness.rw_objects(tenant) == {f"{tenant}.{n}" for n in PIPELINE}  # no shadow left


def test_tariff_change_rebuilds_revenue_views_only(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        harness.patch_spec("acme", {"analytics": {"tariffs": {"pricePerKwh": {"CCS": 0.79}}}})
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
    assert _touched(harness, tenant) == {"completed_sessions", "station_revenue"}
    assert "0.79" in harness.rw.object(f"{tenant}.completed_sessions").definition


def test_removed_sink_is_dropped_and_nothing_else_changes(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        harness.patch_spec("acme", {"alerts": {"sinks": {"kafka": None}}})
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
    assert _ddl(harness) == [f'DROP SINK IF EXISTS "{tenant}"."alerts_to_kafka"']
    assert harness.rw_objects(tenant) == {f"{tenant}.{n}" for n in PIPELINE - {"alerts_to_kafka"}}


@pytest.mark.parametrize("policy", ["Delete", "Orphan"])
def test_delete_follows_the_deletion_policy(harness: Harness, policy: str) -> None:
    body = harness.tenant("acme", deletionPolicy=policy)
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.delete("acme")
        harness.wait_gone("acme")
    left = harness.rw_objects(tenant)
    if policy == "Delete":
        assert left == set()
        assert tenant not in harness.rw.schemas()
    else:
        assert left == {f"{tenant}.{n}" for n in PIPELINE}
    with harness.rw.connect() as conn:
        rows = conn.execute(f"SELECT object_name FROM cha_system.ledger WHERE tenant = '{tenant}'").fetchall()
    assert rows == []  # the tenant is released either way: a new resource may adopt it


def test_observed_generation_tracks_every_update(harness: Harness) -> None:
    with harness.operator():
        harness.create(harness.tenant("acme"))
        harness.wait_ready("acme")
        for generation, minutes in ((2, 15), (3, 20)):
            harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": minutes}})
            obj = harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
            assert obj["metadata"]["generation"] == generation
            assert obj["status"]["observedGeneration"] == generation


def test_postgres_sink_target_table_is_created_with_its_key(harness: Harness) -> None:
    harness.alerts_db_secret("acme")
    body = harness.tenant("acme", postgres_sink=True)
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
    with harness.pg.connect(dbname=harness.pg.alerts_db) as conn:
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = %s::regclass",
            (f"public.{tenant}_alerts",),
        ).fetchall()
    assert key == [("alert_id",)]
    assert f"{tenant}.alerts_to_postgres" in harness.rw_objects(tenant)


def test_suspended_resource_is_left_alone(harness: Harness) -> None:
    body = harness.tenant("acme", suspend=True)
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("acme", c.COND_READY, "False", reason="Suspended")
        assert obj["status"]["observedGeneration"] == 1
        harness.patch_spec("acme", {"suspend": False})
        harness.wait_ready("acme")
    assert harness.rw_objects(tenant) == {f"{tenant}.{n}" for n in PIPELINE}


def test_status_and_events_report_progress_to_humans(harness: Harness) -> None:
    with harness.operator():
        harness.create(harness.tenant("acme"))
        harness.wait_ready("acme")
        wait_for(lambda: any(e["reason"] == "Applied" for e in harness.events()), 20, "Applied event")
    obj = harness.get("acme")
    assert obj is not None
    ready = next(cond for cond in obj["status"]["conditions"] if cond["type"] == "Ready")
    assert ready["reason"] in {"Applied", "UpToDate"}
    assert "objects in RisingWave match the spec" in ready["message"]
    assert obj["status"]["endpoint"] == harness.rw.endpoint.key


def test_read_only_user_gets_select_on_its_schema_and_credentials_in_a_secret(harness: Harness) -> None:
    body = harness.tenant("acme", readOnlyUser={"enabled": True})
    tenant = body["spec"]["tenant"]
    user = f"{tenant}_reader"
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        secret = harness.rest.get(f"/api/v1/namespaces/{harness.ns}/secrets/acme-readonly")
        harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": 12}})
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied")
        after_swap = harness.rw.privileges(user)
        harness.delete("acme")
        harness.wait_gone("acme")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["username"] == user
    assert len(data["password"]) >= 24
    assert data["schema"] == tenant
    assert secret["metadata"]["ownerReferences"][0]["kind"] == c.KIND
    # the rebuilt view is readable too: grants follow every rebuild
    assert ("SELECT", "materialized view", f"{tenant}.stalled_sessions") in after_swap
    assert ("SELECT", "view", f"{tenant}.active_sessions_live") in after_swap
    assert ("USAGE", "schema", tenant) in after_swap
    assert {kind for _, kind, _ in after_swap} == {"schema", "materialized view", "view"}
    assert user not in harness.rw.users()  # dropped with the tenant


def test_backfill_progress_is_published_while_a_rebuilt_view_backfills(harness: Harness) -> None:
    body = harness.tenant("acme")
    tenant = body["spec"]["tenant"]
    seen: list[dict[str, object]] = []

    def building() -> bool:
        obj = harness.get("acme") or {}
        reconciling = next(
            (x for x in (obj.get("status") or {}).get("conditions") or [] if x["type"] == c.COND_RECONCILING),
            None,
        )
        progress = [o for o in (obj.get("status") or {}).get("objects") or [] if o.get("backfillProgress")]
        if reconciling and reconciling["status"] == "True" and progress:
            seen.extend(progress)
            return True
        return False

    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.set_backfill(seconds=3)
        harness.patch_spec("acme", {"alerts": {"stalledSessionMinutes": 33}})
        wait_for(building, 20, "Reconciling=True with backfill progress")
        harness.wait_condition("acme", c.COND_READY, "True", reason="Applied", timeout=60)
    assert seen[0]["name"] == f"{tenant}.stalled_sessions"
    assert seen[0]["state"] == "Creating"
    assert str(seen[0]["backfillProgress"]).endswith("%")
