"""Time and memory of the pure core: render(), build_plan(), and CatalogSnapshot.tenant() at fleet size.

    python3 benchmarks/bench_render_plan.py [--repeat 20] [--number 10] [--fleet 1000]
                                            [--fleet-sizes 100,300] [--fleet-repeat 5] [--json]

Per tenant (one spec, one catalog):

* ``render`` of an acme-like spec with every feature on (Kafka SASL, Kafka + PostgreSQL alert
  sinks, connector faults, low availability, read-only user), inline credentials and RisingWave
  SECRETs, and of the default spec (required fields only);
* ``build_plan`` for a fresh tenant (empty catalog), a no-op plan (fully applied catalog with
  ledger, owner row, users and status fingerprints: the drift-timer path) and a threshold change
  (``alerts.stalledSessionMinutes`` 10 -> 15);
* the credential digest render() folds into object hashes (``Digester.digest``, scrypt) uncached,
  a render with a cold digest cache, and a replay of the digest cache's key pattern over fleet
  passes (how many scrypt calls a drift-timer pass makes once the fleet outgrows the LRU).

Fleet: ``--fleet`` tenants (acme-like) in ONE :class:`CatalogSnapshot` (all objects, ledgers,
owner rows, users), as the reconcile service shares it per endpoint. Each tenant's reconcile calls
``snapshot.tenant(t)`` then ``build_plan``. Measured with the snapshot's ``tenant()`` and with a
copy of the pre-index linear filter (``tenant_linear``), at ``--fleet-sizes`` and ``--fleet``
tenants, so the growth per call (O(N) scan vs O(1) lookup) shows.

Method: ``time.perf_counter``; each sample times ``--number`` calls (µs/op = sample / number;
fleet rows: one pass over N tenants, µs per tenant); ``--repeat`` samples; median and p95 over the
samples. Peak KiB is tracemalloc's peak during ONE op (or one fleet pass), above what was live
before it, measured in a separate untimed pass (tracemalloc slows Python down). RSS delta is the
process's resident set (``/proc/self/statm``) after the row minus before it (after
``gc.collect()``): near zero means nothing is retained. Figures on a shared machine are noisy;
compare rows of one run.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import gc
import hashlib
import json
import os
import platform
import re
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from charging_analytics.catalog import (
    CatalogSnapshot,
    LedgerEntry,
    ObjectKind,
    ObservedObject,
    TenantCatalog,
)
from charging_analytics.ledger import OWNER_ROW
from charging_analytics.pipeline import reader_name
from charging_analytics.plan import PlanOptions, build_plan, fingerprint
from charging_analytics.render import (
    Credential,
    Credentials,
    DesiredObject,
    Digester,
    RenderOptions,
    as_text,
    render,
)
from charging_analytics.spec import ChargingAnalyticsSpec

ROOT = Path(__file__).resolve().parents[1]
CREDS = Credentials(
    kafka=Credential("acme-pipeline", "kafka-pw"),
    alerts_db=Credential("writer", "db-pw"),
    reader=Credential(reader_name("acme"), "reader-pw"),
)
ENDPOINT = "risingwave-frontend.risingwave.svc:4566/dev"

# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size (Linux); 0 where /proc is unavailable."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass
class Row:
    name: str
    per_op_s: list[float]  # one value per sample: seconds per op
    peak_bytes: int
    rss_delta_bytes: int
    note: str = ""

    @property
    def median_us(self) -> float:
        return statistics.median(self.per_op_s) * 1e6

    @property
    def p95_us(self) -> float:
        if len(self.per_op_s) < 2:
            return self.per_op_s[0] * 1e6
        return statistics.quantiles(self.per_op_s, n=20, method="inclusive")[18] * 1e6

    @property
    def ops_per_s(self) -> float:
        return 1e6 / self.median_us if self.median_us else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ops_per_s": round(self.ops_per_s, 1),
            "median_us": round(self.median_us, 1),
            "p95_us": round(self.p95_us, 1),
            "peak_kib": round(self.peak_bytes / 1024, 1),
            "rss_delta_kib": round(self.rss_delta_bytes / 1024),
            "samples": len(self.per_op_s),
            "note": self.note,
        }


def traced_peak(fn: Callable[[], object]) -> int:
    """Bytes allocated at the high-water mark of one call, above what was live before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return max(0, peak - before)


def measure(
    name: str,
    fn: Callable[[], object],
    *,
    repeat: int,
    number: int,
    ops: int = 1,
    one_op: Callable[[], object] | None = None,
    warm_up: bool = True,
    note: str = "",
) -> Row:
    """``fn`` does ``ops`` operations; time ``number`` calls per sample, ``repeat`` samples.

    Peak memory is traced over ``one_op`` (one operation) when given, else over one ``fn()``.
    """
    gc.collect()
    rss0 = rss_bytes()
    if warm_up:
        fn()  # template cache, imports, first-call costs
    samples: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - t) / (number * ops))
    peak = traced_peak(one_op or fn)
    gc.collect()
    return Row(name, samples, peak, rss_bytes() - rss0, note)


# --------------------------------------------------------------------------------------------
# Specs and catalogs
# --------------------------------------------------------------------------------------------


def acme_document() -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "examples" / "acme.yaml").read_text(encoding="utf-8"))
    return next(d for d in docs if d and d.get("kind") == "ChargingAnalytics")


def acme_spec(tenant: str = "acme", stalled_minutes: int | None = None) -> ChargingAnalyticsSpec:
    spec = copy.deepcopy(acme_document()["spec"])
    spec["tenant"] = tenant
    spec["kafka"]["eventsTopic"] = f"ocpp.{tenant}.events"
    spec["alerts"]["sinks"]["kafka"]["topic"] = f"ocpp.{tenant}.alerts"
    spec["alerts"]["sinks"]["postgres"]["table"] = f"{tenant}_alerts"
    if stalled_minutes is not None:
        spec["alerts"]["stalledSessionMinutes"] = stalled_minutes
    return ChargingAnalyticsSpec.model_validate(spec)


def default_spec(tenant: str = "voltbay") -> ChargingAnalyticsSpec:
    """Only the required fields; everything else takes its default."""
    return ChargingAnalyticsSpec.model_validate(
        {
            "tenant": tenant,
            "kafka": {"bootstrapServers": ["kafka:9092"], "eventsTopic": f"ocpp.{tenant}.events"},
            "analytics": {
                "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 0.5, "CHAdeMO": 0.4, "Type2": 0.3}}
            },
        }
    )


def owner_of(tenant: str) -> str:
    return f"tenants/{tenant}"


def observed_objects(desired: Sequence[DesiredObject], tenant: str, first_id: int) -> list[ObservedObject]:
    """What RisingWave lists after a complete apply (ids unique across the fleet); users are
    endpoint-wide (``users``), the schema is in ``schemas``."""
    return [
        ObservedObject.read(o.kind, tenant, o.name, first_id + i, o.sql)
        for i, o in enumerate(desired)
        if o.kind not in ("Schema", "User")
    ]


def user_names(desired: Sequence[DesiredObject]) -> frozenset[str]:
    return frozenset(o.name for o in desired if o.kind == "User")


_SQL_TEXT = r"'((?:[^']|'')*)'"
_LEDGER_INSERT = re.compile(r"^INSERT INTO .*? VALUES ", re.DOTALL)
#: one row of a (batched) ledger INSERT: tenant, name, kind, value, dependencies, then NOW()
_LEDGER_ROW = re.compile(r"\(" + ", ".join([_SQL_TEXT] * 5) + r", NOW\(\)\)")
_LEDGER_DELETE = re.compile(
    r"^DELETE FROM .*? WHERE tenant = " + _SQL_TEXT + " AND object_name = " + _SQL_TEXT
)


def applied_ledger(desired: Sequence[DesiredObject], tenant: str) -> dict[str, LedgerEntry]:
    """The ledger rows a complete apply of a fresh tenant leaves behind (owner row excluded).

    Derived by replaying the ledger writes of the fresh plan in order (rather than re-deriving
    which rows the planner keeps), so it follows whatever the planner records.
    """
    plan = build_plan(desired, TenantCatalog(tenant=tenant, schema_exists=False), PlanOptions())
    ledger: dict[str, LedgerEntry] = {}
    for action in plan.actions:
        for stmt in (*getattr(action, "pre", ()), action.statement, *action.ledger):
            text = as_text(stmt)
            if _LEDGER_INSERT.match(text):
                for row in _LEDGER_ROW.finditer(text):
                    row_tenant, name, kind, value, deps = (v.replace("''", "'") for v in row.groups())
                    depends_on = tuple(d for d in deps.split(",") if d)
                    ledger[name] = LedgerEntry(row_tenant, name, cast(ObjectKind, kind), value, depends_on)
            elif found := _LEDGER_DELETE.match(text):
                ledger.pop(found.group(2).replace("''", "'"), None)
    assert ledger, "no ledger writes recognised in the fresh plan"
    ledger.pop(OWNER_ROW, None)
    return ledger


def applied_catalog(desired: Sequence[DesiredObject], tenant: str) -> TenantCatalog:
    return TenantCatalog(
        tenant=tenant,
        schema_exists=True,
        objects={o.name: o for o in observed_objects(desired, tenant, 1000)},
        ledger=applied_ledger(desired, tenant),
        owner=owner_of(tenant),
        users=user_names(desired) | {"root"},
    )


def fleet_snapshot(
    rendered: Mapping[str, Sequence[DesiredObject]], ledgers: Mapping[str, Mapping[str, LedgerEntry]]
) -> CatalogSnapshot:
    """One endpoint holding every tenant in ``rendered``, fully applied, plus the ledger."""
    objects: list[ObservedObject] = []
    ledger: list[LedgerEntry] = []
    owners: dict[str, str] = {}
    for n, (tenant, desired) in enumerate(rendered.items()):
        objects += observed_objects(desired, tenant, 1000 + 100 * n)
        ledger += ledgers[tenant].values()
        ledger.append(LedgerEntry(tenant, OWNER_ROW, "Schema", owner_of(tenant)))
        owners[tenant] = owner_of(tenant)
    ledger_table = ObservedObject.read("Table", "cha_system", "ledger", 1, "CREATE TABLE ledger (...)")
    return CatalogSnapshot(
        endpoint=ENDPOINT,
        schemas=frozenset({*rendered, "public", "rw_catalog", "cha_system"}),
        objects=(ledger_table, *objects),
        ledger=tuple(ledger),
        owners=owners,
        users=frozenset({"root"}).union(*(user_names(d) for d in rendered.values())),
        ddl_progress={},
        ledger_exists=True,
        taken_at=time.monotonic(),
    )


def tenant_linear(snapshot: CatalogSnapshot, tenant: str) -> TenantCatalog:
    """The pre-index ``CatalogSnapshot.tenant()``, verbatim: three scans of the whole snapshot."""
    objects = {o.name: o for o in snapshot.objects if o.schema == tenant}
    ledger = {e.name: e for e in snapshot.ledger if e.tenant == tenant and e.name != OWNER_ROW}
    progress = {
        q.split(".", 1)[1]: p for q, p in snapshot.ddl_progress.items() if q.split(".", 1)[0] == tenant
    }
    return TenantCatalog(
        tenant=tenant,
        schema_exists=tenant in snapshot.schemas,
        objects=objects,
        ledger=ledger,
        owner=snapshot.owners.get(tenant),
        ddl_progress=progress,
        users=snapshot.users,
    )


def fingerprints(catalog: TenantCatalog) -> dict[str, str]:
    """What the resource's status carries after an apply (the timer path compares them)."""
    return {name: fingerprint(obj) for name, obj in catalog.objects.items()}


# --------------------------------------------------------------------------------------------
# Benchmarks
# --------------------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def per_tenant(report: Report, repeat: int, number: int) -> None:
    acme = acme_spec()
    default = default_spec()
    inline = RenderOptions(secret_store="inline", credentials=CREDS)
    secrets = RenderOptions(secret_store="risingwave", credentials=CREDS)
    desired = render(acme, inline)
    desired_default = render(default, inline)
    report.facts["acme_objects"] = len(desired)
    report.facts["acme_objects_with_secrets"] = len(render(acme, secrets))
    report.facts["default_objects"] = len(desired_default)

    add = report.rows.append
    add(
        measure(
            "render acme, all features (inline creds)",
            lambda: render(acme, inline),
            repeat=repeat,
            number=number,
        )
    )
    add(
        measure(
            "render acme, all features (RW SECRETs)",
            lambda: render(acme, secrets),
            repeat=repeat,
            number=number,
        )
    )
    add(measure("render default spec", lambda: render(default, inline), repeat=repeat, number=number))

    fresh = TenantCatalog(tenant="acme", schema_exists=False)
    fresh_options = PlanOptions(owner=owner_of("acme"), ledger_exists=False)
    fresh_plan = build_plan(desired, fresh, fresh_options)
    applied = applied_catalog(desired, "acme")
    noop_options = PlanOptions(
        owner=owner_of("acme"), ledger_exists=True, expected_fingerprints=fingerprints(applied)
    )
    noop_plan = build_plan(desired, applied, noop_options)
    changed = render(acme_spec(stalled_minutes=15), inline)
    change_plan = build_plan(changed, applied, noop_options)
    assert noop_plan.empty, noop_plan.summary()
    assert not change_plan.empty
    report.facts["fresh_plan"] = fresh_plan.summary()
    report.facts["threshold_change_plan"] = change_plan.summary()

    plan_number = number
    add(
        measure(
            "build_plan fresh tenant",
            lambda: build_plan(desired, fresh, fresh_options),
            repeat=repeat,
            number=plan_number,
            note=f"{len(fresh_plan.actions)} actions",
        )
    )
    add(
        measure(
            "build_plan no-op (applied catalog)",
            lambda: build_plan(desired, applied, noop_options),
            repeat=repeat,
            number=plan_number,
            note="0 actions",
        )
    )
    add(
        measure(
            "build_plan threshold change",
            lambda: build_plan(changed, applied, noop_options),
            repeat=repeat,
            number=plan_number,
            note=change_plan.summary(),
        )
    )
    add(
        measure(
            "render + no-op plan (timer reconcile core)",
            lambda: build_plan(render(acme, inline), applied, noop_options),
            repeat=repeat,
            number=number,
        )
    )


def secret_digest_costs(report: Report, repeat: int, fleet_sizes: Sequence[int]) -> None:
    """The credential digest in render (scrypt) and what its per-credential cache does at fleet size."""
    add = report.rows.append
    acme = acme_spec()

    def uncached() -> None:
        Digester().digest("kafka-pw", "acme/kafka/password")

    add(measure("Digester.digest, uncached (scrypt)", uncached, repeat=max(3, repeat // 5), number=1))

    def cold_render() -> None:
        render(acme, RenderOptions(secret_store="inline", credentials=CREDS, digester=Digester()))

    add(measure("render acme, digest cache cold", cold_render, repeat=max(3, repeat // 5), number=1))

    # The digest calls one render makes (recorded by the digester render() is given).
    calls: list[tuple[str, str]] = []

    class Recording(Digester):
        def digest(self, value: str, salt: str) -> str:
            calls.append((value, salt))
            return "0" * 24

    render(acme, RenderOptions(secret_store="inline", credentials=CREDS, digester=Recording()))
    per_tenant = len({salt for _, salt in calls})
    scrypt_s = statistics.median(report.rows[-2].per_op_s)
    report.facts["secret_digest"] = {
        "calls_per_render": len(calls),
        "credentials_per_tenant": per_tenant,
        "cache": "one entry per credential (tenant/role/part), no eviction",
    }
    # A drift-timer pass reconciles every tenant in turn: replay two passes of the real salt
    # pattern through the same kind of cache (a stand-in digest, so no scrypt is run).
    for size in sorted({*fleet_sizes, 1000, 2000}):
        cache: dict[str, str] = {}
        misses = [0, 0]
        for pass_ in range(2):
            for n in range(size):
                for _value, salt in calls:
                    key = salt.replace("acme", f"t{n:05d}", 1)
                    if key not in cache:
                        cache[key] = key
                        misses[pass_] += 1
        report.facts[f"digest_cache_fleet_{size}"] = {
            "first_pass_scrypt_cpu_s": round(misses[0] * scrypt_s, 1),
            "second_pass_misses_per_tenant": round(misses[1] / size, 2),
            "scrypt_cpu_per_timer_pass_s": round(misses[1] * scrypt_s, 1),
        }


TenantGetter = Callable[[CatalogSnapshot, str], TenantCatalog]


def lookups(get: TenantGetter, snapshot: CatalogSnapshot, tenants: Sequence[str]) -> None:
    for tn in tenants:
        get(snapshot, tn)


def planned(
    get: TenantGetter,
    snapshot: CatalogSnapshot,
    rendered: Mapping[str, Sequence[DesiredObject]],
    options: Mapping[str, PlanOptions],
) -> None:
    """One drift-timer pass over the fleet: every tenant's slice, then its (empty) plan."""
    for tn, desired in rendered.items():
        plan = build_plan(desired, get(snapshot, tn), options[tn])
        assert plan.empty, (tn, plan.summary())


def clone_tenant(template: Sequence[DesiredObject], tenant: str) -> list[DesiredObject]:
    """``template``'s objects renamed into ``tenant`` with tenant-unique hashes.

    The planner reads kind, names, dependencies and hashes; statements are only read when an
    action is emitted, and every fleet plan here is asserted empty. Rendering each tenant instead
    would add N x the render time measured above (seconds at N=1000) to the set-up.
    """
    out: list[DesiredObject] = []
    for o in template:
        if o.kind == "Schema":
            schema, name = "", tenant
        else:
            schema, name = tenant, reader_name(tenant) if o.kind == "User" else o.name
        digest = hashlib.sha256(f"{tenant}\0{o.hash}".encode()).hexdigest()[:24]
        out.append(dataclasses.replace(o, schema=schema, name=name, hash=f"sha256:{digest}"))
    return out


def fleet(report: Report, sizes: Sequence[int], fleet_repeat: int) -> None:
    template = render(acme_spec(), RenderOptions(secret_store="inline", credentials=CREDS))
    rendered = {f"t{n:05d}": clone_tenant(template, f"t{n:05d}") for n in range(max(sizes))}
    ledgers = {tn: applied_ledger(desired, tn) for tn, desired in rendered.items()}
    for size in sorted(sizes):
        fleet_size(report, {tn: rendered[tn] for tn in list(rendered)[:size]}, ledgers, fleet_repeat)


def fleet_size(
    report: Report,
    subset: Mapping[str, Sequence[DesiredObject]],
    ledgers: Mapping[str, Mapping[str, LedgerEntry]],
    fleet_repeat: int,
) -> None:
    size = len(subset)
    tenants = list(subset)
    add = report.rows.append
    gc.collect()
    rss0 = rss_bytes()
    tracemalloc.start()
    snapshot = fleet_snapshot(subset, ledgers)
    snapshot_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()
    report.facts[f"fleet_{size}_snapshot"] = {
        "objects": len(snapshot.objects),
        "ledger_rows": len(snapshot.ledger),
        "traced_kib": round(snapshot_bytes / 1024),
        "rss_delta_kib": round((rss_bytes() - rss0) / 1024),
    }
    recorded: dict[str, dict[str, str]] = {}  # what each resource's status carries
    for obj in snapshot.objects:
        recorded.setdefault(obj.schema, {})[obj.name] = fingerprint(obj)
    options = {
        tn: PlanOptions(owner=owner_of(tn), ledger_exists=True, expected_fingerprints=recorded[tn])
        for tn in tenants
    }

    # The first tenant() on a new snapshot (with an index: includes building it).
    firsts: list[float] = []
    for _ in range(fleet_repeat):
        new = fleet_snapshot(subset, ledgers)
        t = time.perf_counter()
        new.tenant(tenants[0])
        firsts.append(time.perf_counter() - t)
    new = fleet_snapshot(subset, ledgers)
    first_peak = traced_peak(functools.partial(new.tenant, tenants[0]))
    add(Row(f"[N={size}] first tenant() on a new snapshot", firsts, first_peak, 0, "incl. index build"))
    del new

    snapshot.tenant(tenants[0])  # any index is built outside the timed loops
    samples = max(fleet_repeat, -(-2000 // size))  # small fleets: enough tenant-ops per row
    getters: tuple[tuple[str, TenantGetter], ...] = (
        ("linear scan (pre-index)", tenant_linear),
        ("snapshot.tenant()", CatalogSnapshot.tenant),
    )
    for label, get in getters:
        add(
            measure(
                f"[N={size}] tenant() x N, {label}",
                functools.partial(lookups, get, snapshot, tenants),
                repeat=samples,
                number=1,
                ops=size,
                one_op=functools.partial(get, snapshot, tenants[-1]),
                warm_up=False,
                note="per tenant",
            )
        )
    for label, get in getters:
        row = measure(
            f"[N={size}] fleet pass tenant()+plan, {label}",
            functools.partial(planned, get, snapshot, subset, options),
            repeat=samples,
            number=1,
            ops=size,
            one_op=functools.partial(planned, get, snapshot, {tenants[-1]: subset[tenants[-1]]}, options),
            warm_up=False,
        )
        row.note = f"per tenant; pass {row.median_us * size / 1000:,.0f} ms"
        add(row)


def print_table(report: Report) -> None:
    columns = ("ops/s", 10), ("µs/op med", 11), ("µs/op p95", 11), ("peak KiB", 9), ("RSS Δ KiB", 10)
    header = f"{'case':<58} " + " ".join(f"{name:>{width}}" for name, width in columns) + "  note"
    print(header)
    print("-" * len(header))
    for r in report.rows:
        d = r.as_dict()
        print(
            f"{d['name']:<58} {d['ops_per_s']:>10,.0f} {d['median_us']:>11,.1f} {d['p95_us']:>11,.1f} "
            f"{d['peak_kib']:>9,.1f} {d['rss_delta_kib']:>10,}  {d['note']}"
        )
    print()
    for key, value in report.facts.items():
        print(f"  {key}: {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=20, help="samples per per-tenant case")
    parser.add_argument("--number", type=int, default=10, help="calls per sample")
    parser.add_argument("--fleet", type=int, default=1000, help="tenants in the fleet snapshot")
    parser.add_argument(
        "--fleet-sizes", default="100,300", help="smaller fleets to show growth (comma-separated)"
    )
    parser.add_argument("--fleet-repeat", type=int, default=5, help="samples per fleet case")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    sizes = sorted({args.fleet, *(int(s) for s in args.fleet_sizes.split(",") if s.strip())})

    started = time.perf_counter()
    report = Report()
    report.facts["python"] = platform.python_version()
    per_tenant(report, args.repeat, args.number)
    secret_digest_costs(report, args.repeat, sizes)
    fleet(report, sizes, args.fleet_repeat)
    report.facts["wall_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps({"rows": [r.as_dict() for r in report.rows], "facts": report.facts}))
        return 0
    print(f"render/plan benchmark (python {platform.python_version()}, {os.cpu_count()} CPUs)")
    print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
