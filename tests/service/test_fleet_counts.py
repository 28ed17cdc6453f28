"""What a small fleet costs once it is Ready, and after a restart: counts, not timings.

Real apiserver (requests counted by its own ``apiserver_request_total``), real Kafka broker, the
RisingWave double (statements recorded by kind). The operator runs in this process (KopfRunner),
so its ``cha_*`` counters are read from the Prometheus registry. In tests the drift interval is
2 s and the shared snapshot's age 1 s (``conftest.py``).

- steady state: no API write, no DDL (nor ledger DML or FLUSH), no Kafka client and no Kafka
  request on the timer passes of Ready tenants, and catalog reads bounded by the snapshot's age
  however many tenants there are; a timer pass of an unchanged tenant neither renders nor plans
  (it reuses its last up-to-date pass), while a tenant whose objects changed is planned again;
- restart: the resume pass of the whole fleet reads the catalog once, writes nothing anywhere
  (RisingWave or status), and computes no credential digest for an unchanged Secret, while a
  rotated Secret is still detected and applied.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import REGISTRY

from charging_analytics.operator import service as service_module
from charging_analytics.operator.settings import OperatorSettings
from testbed.controlplane import WRITE_VERBS, request_delta
from testbed.polling import wait_for
from tests.service.harness import Harness

TENANTS = 6
#: Catalog reads a burst of creates may cost, whatever its size (see the burst test): a read per
#: create would be 10 and 20; shared reads are 1-5 on a quiet machine and a few more on a busy one.
BURST_READ_BOUND = 8
#: What the operator reads and writes; the API server's own requests (leases...) are not its.
OPERATOR_RESOURCES = ("charginganalytics", "charginganalytics/status", "secrets", "events")


def _metric(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _counters(harness: Harness) -> dict[str, float]:
    return {
        "catalog_reads": _metric("cha_catalog_reads_total", {"endpoint": harness.rw.endpoint.key}),
        "kafka_clients": _metric("cha_kafka_admin_clients_opened_total"),
        "kafka_checks": _metric("cha_kafka_checks_total"),
        "reconciles": sum(
            _metric("cha_reconcile_duration_seconds_count", {"result": r})
            for r in ("ok", "backfilling", "stalled", "plan", "approval", "suspended")
        ),
    }


def _since(before: dict[str, float], harness: Harness) -> dict[str, float]:
    after = _counters(harness)
    return {k: after[k] - before[k] for k in after}


def _writes(delta: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    return {(v, r): n for (v, r), n in delta.items() if v in WRITE_VERBS and r in OPERATOR_RESOURCES}


def _fleet(harness: Harness, **overrides: Any) -> list[str]:
    names = [f"fleet-{i}" for i in range(TENANTS)]
    for name in names:
        harness.create(harness.tenant(name, **overrides))
    for name in names:
        harness.wait_ready(name, timeout=120)
    return names


def _settled(harness: Harness, passes: int) -> None:
    """Wait until every tenant has had ``passes`` more reconciles (timer passes, here)."""
    start = _counters(harness)["reconciles"]
    wait_for(
        lambda: _counters(harness)["reconciles"] - start >= passes * TENANTS,
        60,
        f"{passes} timer passes of each tenant",
    )


class Calls:
    """Counts the service's calls of a pure function (render, build_plan), by tenant."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, tenant: Callable[..., str]) -> None:
        self.tenants: list[str] = []
        original = getattr(service_module, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.tenants.append(tenant(*args))
            return original(*args, **kwargs)

        monkeypatch.setattr(service_module, name, counted)


def test_steady_state_writes_nothing_and_opens_no_kafka_connection(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    interval = OperatorSettings().drift_interval_seconds
    cache = OperatorSettings().catalog_cache_seconds
    renders = Calls(monkeypatch, "render", lambda spec, *_: spec.tenant)
    plans = Calls(monkeypatch, "build_plan", lambda desired, catalog, *_: catalog.tenant)
    with harness.operator(timeout=180):
        names = _fleet(harness)
        _settled(harness, 2)  # the first timer passes (randomly delayed) are behind us
        counters = _counters(harness)
        api = harness.rest.request_counts()
        harness.rw.clear_statements()
        rendered, planned = len(renders.tenants), len(plans.tenants)
        started = time.monotonic()
        _settled(harness, 3)
        seconds = time.monotonic() - started
        delta = _since(counters, harness)
        writes = _writes(request_delta(api, harness.rest.request_counts()))
        statements = harness.rw.statement_counts()
        quiet = (renders.tenants[rendered:], plans.tenants[planned:])

        # a view dropped behind the operator's back changes the tenant's catalog slice: its next
        # pass plans again (and restores the view), the other tenants' passes still do not
        tenant = harness.get(names[0])["spec"]["tenant"]  # type: ignore[index]
        harness.rw.execute(f'DROP VIEW "{tenant}"."active_sessions_live"')
        wait_for(
            lambda: f"{tenant}.active_sessions_live" in harness.rw_objects(tenant), 60, "the view restored"
        )
    print(f"steady state over {seconds:.1f} s:", delta, "statements:", statements, "API writes:", writes)
    assert delta["reconciles"] >= 3 * TENANTS  # the timers did run
    assert quiet == ([], []), "timer passes of unchanged tenants rendered or planned"
    assert tenant in plans.tenants[planned:]
    assert writes == {}
    assert statements["ddl"] == statements["dml"] == statements["flush"] == 0
    assert delta["kafka_clients"] == 0
    assert delta["kafka_checks"] == 0
    # one shared read per snapshot age at most, whatever the number of tenants (each snapshot is
    # a few SELECTs): bounded by the time, not by the 18+ timer passes
    assert 1 <= delta["catalog_reads"] <= seconds / cache + 2, (delta, seconds, interval)


@pytest.fixture
def counted_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every credential digest computed (its salt); each operator run's service starts with an empty
    digest cache, as a new process does."""
    calls: list[str] = []
    scrypt = hashlib.scrypt

    def counted(password: bytes, *, salt: bytes, **kw: Any) -> bytes:
        calls.append(salt.decode())
        return scrypt(password, salt=salt, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counted)  # render's digest is its only caller here
    return calls


def test_restart_reads_the_catalog_once_writes_nothing_and_computes_no_digest(
    harness: Harness, counted_scrypt: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The JDBC sinks embed each tenant's alert-database credential (digested into the sink's
    # hash). The table itself is not managed here, so the rotated password below need not be
    # the PostgreSQL server's (which other tests share).
    monkeypatch.setenv("CHA_MANAGE_POSTGRES_TABLE", "false")
    # a snapshot stays young for longer than any resume pass takes on a loaded machine, so the
    # count below does not depend on speed (one read per snapshot age is the rule)
    monkeypatch.setenv("CHA_CATALOG_CACHE_SECONDS", "60")
    names = [f"fleet-{i}" for i in range(TENANTS)]
    for name in names:
        harness.alerts_db_secret(name)
    with harness.operator(timeout=180):
        _fleet(harness, postgres_sink=True)
        _settled(harness, 2)  # the first timer passes record what the creates left
    first = len(counted_scrypt)
    assert first >= TENANTS * 2  # each tenant's alert-database user and password
    statuses = [harness.get(name)["status"] for name in names]  # type: ignore[index]
    for status in statuses:
        assert harness.pg.alerts_password not in json.dumps(status)
        assert {e["role"] for e in status["credentials"]} == {"alerts_db"}

    harness.rw.clear_statements()
    counters = _counters(harness)
    api = harness.rest.request_counts()
    with harness.operator(timeout=180):
        # the resume pass: one reconcile per tenant before the first (delayed) timer pass
        wait_for(
            lambda: _counters(harness)["reconciles"] - counters["reconciles"] >= TENANTS,
            60,
            "the resume pass",
        )
        delta = _since(counters, harness)
        statements = harness.rw.statement_counts()
        writes = _writes(request_delta(api, harness.rest.request_counts()))
        print("resume pass:", delta, "statements:", statements, "API writes:", writes)
        assert delta["catalog_reads"] == 1
        assert statements["ddl"] == statements["dml"] == 0
        assert len(counted_scrypt) == first  # every digest came from status: no scrypt
        # no status PATCH (nothing changed); Kopf's own resume bookkeeping aside
        assert ("PATCH", "charginganalytics/status") not in writes, writes

        # a rotated Secret is still noticed: its new value is digested and the sink rebuilt
        harness.rw.clear_statements()
        harness.secret(
            f"{names[0]}-alerts-db", {"username": harness.pg.alerts_user, "password": "rotated-pw-0"}
        )
        tenant = harness.get(names[0])["spec"]["tenant"]  # type: ignore[index]
        wait_for(
            lambda: any(
                s.lstrip().upper().startswith("CREATE SINK") and tenant in s for s in harness.rw.statements
            ),
            60,
            "the sink rebuilt with the rotated password",
        )
    assert any(salt.startswith(f"{tenant}/alerts_db/") for salt in counted_scrypt[first:])


def _burst_reads(harness: Harness, count: int, prefix: str) -> float:
    """Catalog reads while ``count`` resources created at once become Ready."""
    names = [f"{prefix}-{i}" for i in range(count)]
    bodies = [harness.tenant(name, kafka_sink=False) for name in names]  # topics made beforehand
    before = _counters(harness)["catalog_reads"]
    # sent together, so the burst arrives as one burst even on a busy machine: a create accepts
    # only reads begun after it was created, so creates strung out over seconds need more reads
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(harness.create, bodies))
    for name in names:
        harness.wait_ready(name, timeout=180)
    return _counters(harness)["catalog_reads"] - before


def test_a_burst_of_creates_reads_the_catalog_a_bounded_number_of_times(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The snapshot stays young for the whole burst, so what is counted are the fresh reads the
    # creates ask for (and the reads after each tenant's own apply), not the timers' share.
    monkeypatch.setenv("CHA_CATALOG_CACHE_SECONDS", "600")
    with harness.operator(timeout=300):
        small = _burst_reads(harness, 10, "small")
        large = _burst_reads(harness, 20, "large")
    print(f"catalog reads: 10 creates -> {small}, 20 creates -> {large}")
    # concurrent creates share in-flight reads: twice the resources, not twice the reads
    assert large <= BURST_READ_BOUND, (small, large)
    assert small <= BURST_READ_BOUND, (small, large)
