"""The operator and the RisingWave version it finds, end to end (real apiserver, Kafka, PostgreSQL;
the RisingWave double imitating the version)."""

from __future__ import annotations

import time

import psycopg
import pytest

from charging_analytics import constants as c
from charging_analytics.rw.capabilities import FLOOR
from testbed.kafka import list_topics
from testbed.polling import wait_for
from tests.service.harness import Harness

#: What a client sends before anything else: the version probe and session settings.
_PROBES = ("SELECT VERSION()", "SET ")


@pytest.mark.parametrize("risingwave_version", ["2.2.6"])
def test_risingwave_below_the_floor_stalls_the_tenant_and_nothing_is_applied(harness: Harness) -> None:
    body = harness.tenant("old", postgres_sink=True)
    harness.alerts_db_secret("old")
    tenant = body["spec"]["tenant"]
    with harness.operator():
        harness.create(body)
        obj = harness.wait_condition("old", c.COND_STALLED, "True", timeout=60)
        time.sleep(2)  # a retry happens within the backoff; it must apply nothing either
        statements = harness.rw.statements
    stalled = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_STALLED)
    assert stalled["reason"] == "UnsupportedRisingWaveVersion"
    assert "2.2.6" in stalled["message"]
    assert str(FLOOR) in stalled["message"]
    ready = next(cond for cond in obj["status"]["conditions"] if cond["type"] == c.COND_READY)
    assert ready["status"] == "False"
    events = wait_for(
        lambda: [e for e in harness.events() if e["reason"] == "UnsupportedRisingWaveVersion"] or None,
        20,
        "UnsupportedRisingWaveVersion event",
    )
    assert "2.2.6" in events[0]["message"]
    # nothing at all reached RisingWave but the version probe and session settings: no ledger
    # bootstrap, no secret probe, no catalog read, no DDL
    assert statements
    assert [s for s in statements if not s.lstrip().upper().startswith(_PROBES)] == []
    assert "cha_system" not in harness.rw.schemas()
    assert tenant not in harness.rw.schemas()
    # nor anywhere else: the alerts topic and the PostgreSQL alert table were not created
    assert f"ocpp.{tenant}.alerts" not in list_topics(harness.kafka)
    with psycopg.connect(harness.pg.alerts_conninfo()) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert f"{tenant}_alerts" not in tables
