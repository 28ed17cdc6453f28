"""Run time of ``charging-analytics preview`` (the PostgreSQL evaluator) and statements per tenant.

    python3 benchmarks/bench_preview.py [--events 100000] [--stations 200] [--repeat 3]
                                        [--postgres-dsn DSN] [--json]

Events: the simulator's deterministic fleet (``--stations``, seed 7) from 2025-03-01T00:00Z, the first
``--events`` events; the preview instant is the last event's time. Each sample is one full
``evaluate()`` of the acme example (every feature on): load the events (COPY), build every view in
dependency order from the rewritten rendered SQL, read every view, roll back. PostgreSQL is
``--postgres-dsn`` or a throwaway local server (``charging_analytics.localpg``) started once, outside the
timing. Reported: median and max seconds over ``--repeat`` samples, events per second, rows per view.

Statements per tenant: the objects ``render()`` emits for acme and for the defaults-only voltbay
example, and the statements a fresh tenant's plan runs (DDL, ledger writes and FLUSHes as
``apply_plan`` sends them), and those of a no-op re-plan (zero).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from charging_analytics.catalog import TenantCatalog  # noqa: E402
from charging_analytics.evaluate import evaluate, event_rows  # noqa: E402
from charging_analytics.localpg import local_postgres  # noqa: E402
from charging_analytics.plan import PlanOptions, build_plan  # noqa: E402
from charging_analytics.render import Credential, Credentials, RenderOptions, render  # noqa: E402
from charging_analytics.simulator.simulate import SimulationConfig, generate_events  # noqa: E402
from charging_analytics.validation import load_file  # noqa: E402

CREDS = Credentials(kafka=Credential("u", "p"), alerts_db=Credential("w", "p"), reader=Credential("r", "p"))


def statements_per_tenant() -> dict[str, dict[str, int]]:
    out = {}
    for example in ("acme", "voltbay"):
        (resource,) = load_file(ROOT / "examples" / f"{example}.yaml").resources
        objects = render(resource.spec, RenderOptions(credentials=CREDS))
        tenant = resource.spec.tenant
        fresh = build_plan(
            objects, TenantCatalog(tenant, False), PlanOptions(owner="ns/x", ledger_exists=True)
        )
        sent = sum(1 + len(a.pre) + len(a.ledger) + bool(a.pre) + bool(a.ledger) for a in fresh.actions)
        out[example] = {
            "objects": len(objects),
            "views": sum(o.kind in ("MaterializedView", "View") for o in objects),
            "fresh_plan_actions": len(fresh.actions),
            "fresh_plan_statements_sent": sent,
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres-dsn")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    config = SimulationConfig(
        seed=7, stations=args.stations, start_time=datetime(2025, 3, 1, tzinfo=UTC), max_events=args.events
    )
    lines = [e.model_dump_json() for e in generate_events(config)]
    rows = list(event_rows(lines))
    at = datetime.fromisoformat(json.loads(lines[-1])["occurred_at"].replace("Z", "+00:00"))
    (resource,) = load_file(ROOT / "examples" / "acme.yaml").resources
    objects = render(resource.spec)
    server: AbstractContextManager[str] = (
        nullcontext(args.postgres_dsn) if args.postgres_dsn else local_postgres()
    )
    samples: list[float] = []
    counts: dict[str, int] = {}
    builds: dict[str, float] = {}
    with server as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(args.repeat):
            result = evaluate(conn, objects, rows, at)
            samples.append(result.seconds)
            counts = {name: len(r) for name, r in result.views.items()}
            builds = result.build_seconds
    report: dict[str, Any] = {
        "events": len(rows),
        "stations": args.stations,
        "at": at.isoformat(),
        "preview_seconds_median": round(statistics.median(samples), 3),
        "preview_seconds_max": round(max(samples), 3),
        "events_per_second": round(len(rows) / statistics.median(samples)),
        "rows_per_view": counts,
        "build_seconds_per_view": {k: round(v, 3) for k, v in builds.items()},
        "statements_per_tenant": statements_per_tenant(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"preview of acme over {len(rows)} events ({args.stations} stations), at {at.isoformat()}:")
    print(f"  median {report['preview_seconds_median']} s, max {report['preview_seconds_max']} s "
          f"over {args.repeat} runs ({report['events_per_second']} events/s)")  # fmt: skip
    for name, n in counts.items():
        print(f"  {name:<24} {n:>7} rows, built in {builds.get(name, 0):.2f} s")
    print("statements per tenant:")
    for example, figures in report["statements_per_tenant"].items():
        print(f"  {example}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
