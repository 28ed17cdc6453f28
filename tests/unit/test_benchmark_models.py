"""The render/plan benchmark's model of a fully applied tenant stays true to the planner.

``benchmarks/bench_render_plan.py`` times no-op plans against a catalog it builds by replaying
a fresh plan's ledger writes; if that replay stops matching what the planner records (say, a
batched ledger INSERT), the "no-op" rows would time a rebuild instead. This runs the benchmark's
per-tenant section once, which asserts its own no-op plan is empty.
"""

from __future__ import annotations

from types import ModuleType

from tests.unit.benchmark_modules import load_benchmark


def _bench() -> ModuleType:
    return load_benchmark("bench_render_plan")


def test_the_benchmarks_applied_catalog_plans_nothing() -> None:
    bench = _bench()
    desired = bench.render(
        bench.acme_spec(), bench.RenderOptions(secret_store="inline", credentials=bench.CREDS)
    )
    applied = bench.applied_catalog(desired, "acme")
    options = bench.PlanOptions(
        owner=bench.owner_of("acme"), ledger_exists=True, expected_fingerprints=bench.fingerprints(applied)
    )
    assert bench.build_plan(desired, applied, options).empty
    # and every desired object but the schema and the user has its ledger row
    assert set(applied.ledger) >= {o.name for o in desired if o.kind not in ("Schema", "User")}


def test_the_benchmarks_per_tenant_section_runs() -> None:
    bench = _bench()
    report = bench.Report()
    bench.per_tenant(report, 1, 1)
    assert report.facts["acme_objects"] > 0
    assert report.rows
