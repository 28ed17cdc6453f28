"""What a tenant costs RisingWave, counted by statement kind at the double (real apiserver, Kafka).

A fresh tenant costs its DDL plus at most three other statements (ledger writes and FLUSH); a
no-op reconcile costs only the shared catalog snapshot; a threshold change costs the DDL of the
rebuilt subgraph plus at most three others. No reconcile sends the pool's empty health-check
query: connections are checked only after an error or a long idle time.
"""

from __future__ import annotations

import time

from charging_analytics import constants as c
from charging_analytics.render import RenderOptions, render
from charging_analytics.spec import ChargingAnalyticsSpec
from testbed.polling import wait_for
from tests.service.harness import Harness

#: Catalog and ledger reads the client's snapshot makes (and nothing else reads).
SNAPSHOT_SOURCES = ("rw_catalog.", '"cha_system"."ledger"')


def _counts(harness: Harness) -> dict[str, int]:
    counts: dict[str, int] = harness.rw.statement_counts()
    return counts


def _tenant_ddl(harness: Harness) -> list[str]:
    """DDL statements except the one-time ledger bootstrap (``cha_system``)."""
    return [
        s
        for s in harness.rw.statements
        if s.lstrip().upper().startswith(("CREATE", "DROP", "ALTER", "GRANT"))
        and "cha_system" not in s
    ]


def test_fresh_tenant_costs_its_ddl_and_at_most_three_other_statements(harness: Harness) -> None:
    body = harness.tenant("acme", readOnlyUser={"enabled": True})
    spec = ChargingAnalyticsSpec.model_validate(body["spec"])
    objects = render(spec, RenderOptions())
    grants = 3  # USAGE on the schema, SELECT on all MVs, SELECT on all views
    harness.rw.clear_statements()
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        counts = _counts(harness)
    print("fresh tenant, statements by kind:", counts)  # the figures (shown with -s)
    ddl = _tenant_ddl(harness)
    assert len(ddl) == len(objects) + grants, ddl
    bootstrap = counts["ddl"] - len(ddl)
    assert bootstrap == 2  # CREATE SCHEMA cha_system, CREATE TABLE cha_system.ledger (once per endpoint)
    assert counts["dml"] + counts["flush"] <= 3
    assert counts["flush"] <= 1
    assert counts["empty"] == 0


def test_no_op_reconcile_costs_only_the_shared_snapshot(harness: Harness) -> None:
    body = harness.tenant("acme")
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        started = time.monotonic()
        # drift passes (every 2 s in tests) reconcile with the shared snapshot (1 s cache)
        wait_for(lambda: time.monotonic() - started > 5, 10, "a few drift passes")
        counts = _counts(harness)
        statements = harness.rw.statements
        assert harness.condition("acme", c.COND_READY)["reason"] == "UpToDate"  # type: ignore[index]
    print("no-op reconciles, statements by kind:", counts)
    assert counts["ddl"] == counts["dml"] == counts["flush"] == counts["empty"] == 0
    assert counts["select"] > 0  # the timer did reconcile
    assert all(any(src in s for src in SNAPSHOT_SOURCES) for s in statements), statements


def test_threshold_change_costs_the_rebuilt_subgraph_and_at_most_three_other_statements(
    harness: Harness,
) -> None:
    body = harness.tenant("acme", readOnlyUser={"enabled": True})
    with harness.operator():
        harness.create(body)
        harness.wait_ready("acme")
        harness.rw.clear_statements()
        harness.patch_spec("acme", {"alerts": {"availabilityBelowPercent": 65}})
        harness.wait_ready("acme")
        counts = _counts(harness)
    ddl = [" ".join(s.split()[:3]) for s in _tenant_ddl(harness)]
    print("threshold change, statements by kind:", counts)
    # low_availability and alerts (which reads it) are rebuilt as shadows and swapped in; the sink
    # on alerts is recreated (it stays bound to the old object otherwise); grants follow rebuilds
    assert sorted(ddl) == sorted(
        [
            "CREATE MATERIALIZED VIEW",
            "CREATE MATERIALIZED VIEW",
            "ALTER MATERIALIZED VIEW",
            "ALTER MATERIALIZED VIEW",
            "DROP SINK IF",
            "DROP MATERIALIZED VIEW",
            "DROP MATERIALIZED VIEW",
            "CREATE SINK IF",
            "GRANT USAGE ON",
            "GRANT SELECT ON",
            "GRANT SELECT ON",
        ]
    )
    assert counts["ddl"] == len(ddl)
    assert counts["dml"] + counts["flush"] <= 3
    assert counts["flush"] <= 1
    assert counts["empty"] == 0
    rebuilt = harness.rw.object(f"{body['spec']['tenant']}.low_availability")
    assert rebuilt is not None
    assert "65" in rebuilt.definition
