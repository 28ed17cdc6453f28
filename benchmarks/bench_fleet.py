"""A fleet of tenants: a create burst against its raw floor, then steady state and a restart.

    python3 benchmarks/bench_fleet.py [--tenants 100,300,1000] [--interval 60] [--intervals 3]
                                      [--timeout 1800] [--json]

For each fleet size N this starts, from the test bed (``testbed/``, tools from
``scripts/provision.sh``), a real etcd + kube-apiserver and a real Kafka broker, and the
RisingWave DOUBLE (``tests/rw_double``) in this process; the operator runs as its own process
(``charging-analytics operator --standalone``, whatever code is on ``PYTHONPATH``) with the Kafka
check on. Each tenant is a small spec like ``examples/voltbay.yaml`` (defaults, alerts to a Kafka
topic, which the operator creates); the events topics exist beforehand.

1. Raw floor: on a second, fresh double and before the operator starts, a plain script renders,
   plans and applies the same statements for N tenants (as many applies at once as the operator
   allows per endpoint, ``CHA_MAX_CONCURRENT_APPLIES``) plus one status PATCH per resource.
2. Burst: N resources are created at once; the clock stops when the last reports Ready.
3. Steady state: after two intervals to settle, ``--intervals`` drift intervals of nothing
   happening.
4. Restart: the operator is stopped and started again; the resume pass is timed (until the
   operator has reconciled all N) and the first interval after the start is counted.

Printed per phase: wall time, operator CPU seconds (and % of one core) and peak RSS, API requests
by verb and resource (the API server's ``apiserver_request_total``, less the benchmark's own
creates and LISTs), SQL statements by kind (the double records every statement), catalog
snapshots read and Kafka admin clients / PostgreSQL connections opened (the operator's
``cha_*_total`` counters from its metrics port), and the CPU seconds the double spent executing
statements (against the wall time: how busy the operator, or the floor, kept its database) and the
CPU seconds of the other processes (API server and etcd, Kafka, this process).
Figures are printed, not asserted: the counts that must hold are asserted by
``tests/service/test_fleet_counts.py``.

The double is NOT RisingWave: a FLUSH or catalog read costs it almost nothing; compare counts
across versions and take times as the operator's own overhead on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "benchmarks"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))  # tests/ (the test bed, the double), bench_burst

from bench_burst import (  # noqa: E402
    NOT_RISINGWAVE,
    OperatorProcess,
    cpu_by_thread_kind,
    process_cpu_seconds,
    resources_path,
    tenant_body,
    thread_cpu_seconds,
    wait_all_ready,
)
from charging_analytics import constants as c  # noqa: E402
from charging_analytics.apply import apply_plan  # noqa: E402
from charging_analytics.operator.settings import OperatorSettings  # noqa: E402
from charging_analytics.plan import PlanOptions, build_plan  # noqa: E402
from charging_analytics.render import RenderOptions, render  # noqa: E402
from charging_analytics.rw.client import ClientOptions, Endpoint, RisingWaveClient  # noqa: E402
from charging_analytics.spec import ChargingAnalyticsSpec, ChargingAnalyticsStatus  # noqa: E402
from charging_analytics.status import Reason, merge_conditions, objects_status, published  # noqa: E402
from charging_analytics.status import ready as ready_conditions  # noqa: E402
from profiling import share_under, start_profiler, top_frames  # noqa: E402
from testbed.bed import Testbed, unique_name  # noqa: E402
from testbed.controlplane import KubeRest, request_delta  # noqa: E402
from testbed.kafka import create_topics  # noqa: E402
from testbed.process import free_port  # noqa: E402
from tests.rw_double import RisingWaveDouble  # noqa: E402

#: Seconds the freshly started operator idles (watching, no resource) before the burst.
IDLE_SECONDS = 15.0
#: What a steady-state profile reports as shares: the drift daemons (Kopf's path around the
#: handler included), the handler itself, the interval's catalog read.
PROFILE_SHARES = {
    "Kopf daemons": "_daemon (kopf/",
    "drift pass (handler)": "drift_check (",
    "catalog read": "snapshot (charging_analytics/rw/client.py",
    "garbage collection": "(garbage collection)",
}
#: The operator's counters read from its metrics port (sums over labels).
OPERATOR_COUNTERS = {
    "catalog_reads": "cha_catalog_reads_total",
    "kafka_clients": "cha_kafka_admin_clients_opened_total",
    "kafka_checks": "cha_kafka_checks_total",
    "postgres_connections": "cha_postgres_connections_opened_total",
    "reconciles": "cha_reconcile_duration_seconds_count",
}

#: The resources the operator reads or writes (with these tenants: no dashboards). The API
#: server's requests of itself (leases, endpoints, its informers' watches of every kind) are
#: left out; watches of these resources by the server's own informers cannot be told apart.
OPERATOR_RESOURCES = frozenset(
    {f"{c.PLURAL}", f"{c.PLURAL}/status", "secrets", "events", "kopfpeerings", "clusterkopfpeerings"}
)


def operator_counters(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = dict.fromkeys(OPERATOR_COUNTERS, 0.0)
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        for key, metric in OPERATOR_COUNTERS.items():
            if name == metric:
                out[key] += float(line.rsplit(" ", 1)[1])
    return out


async def raw_floor(
    rest: KubeRest, namespace: str, bodies: list[dict[str, Any]], endpoint: Endpoint
) -> float:
    """Seconds to apply every tenant's fresh plan and PATCH its status once, nothing else."""
    settings = OperatorSettings()
    # a generous connect timeout: the double shares this process (and the machine) with the script
    client = RisingWaveClient(endpoint, ClientOptions(pool_max=settings.pool_size, connect_timeout=30.0))
    await client.open()
    slots = asyncio.Semaphore(settings.max_concurrent_applies)
    try:
        started = time.monotonic()
        snapshot = await client.snapshot()

        async def one(body: dict[str, Any], ledger_exists: bool = True) -> None:
            spec = ChargingAnalyticsSpec.model_validate(body["spec"])
            name = body["metadata"]["name"]
            desired = render(spec, RenderOptions(secret_store="inline"))
            catalog = snapshot.tenant(spec.tenant)
            plan = build_plan(
                desired, catalog, PlanOptions(owner=f"{namespace}/{name}", ledger_exists=ledger_exists)
            )
            async with slots:
                await apply_plan(client, plan)
            status = published(
                ChargingAnalyticsStatus(
                    observed_generation=1,
                    conditions=merge_conditions(None, ready_conditions(Reason.APPLIED, "floor"), 1),
                    objects=objects_status(desired, catalog),
                )
            )
            path = f"{resources_path(namespace)}/{name}/status"
            await asyncio.to_thread(rest.merge_patch, path, {"status": status})

        # the ledger's schema and table first, as the operator's first apply creates them
        await one(bodies[0], snapshot.ledger_exists)
        await asyncio.gather(*(one(body) for body in bodies[1:]))
        return time.monotonic() - started
    finally:
        await client.close()


class Phase:
    """What the operator did between :meth:`start` and :meth:`stop`."""

    def __init__(self, bench: Fleet, name: str) -> None:
        self.bench, self.name = bench, name
        self.own: dict[tuple[str, str], int] = {}  # the benchmark's own requests, subtracted

    def start(self, *, new_process: bool = False) -> Phase:
        """``new_process``: the operator is about to start, so everything it does counts."""
        b = self.bench
        self.t0 = time.monotonic()
        self.cpu0 = 0.0 if new_process else b.running.cpu_seconds()
        self.threads0 = {} if new_process else thread_cpu_seconds(b.running.process.pid)
        self.api0 = b.rest.request_counts()
        self.ops0 = (
            dict.fromkeys(OPERATOR_COUNTERS, 0.0) if new_process else operator_counters(b.metrics_port)
        )
        b.double.clear_statements()
        self.others0 = b.others_cpu()
        return self

    def stop(self, **extra: Any) -> dict[str, Any]:
        b = self.bench
        wall = time.monotonic() - self.t0
        cpu = b.running.cpu_seconds() - self.cpu0
        threads = cpu_by_thread_kind(self.threads0, thread_cpu_seconds(b.running.process.pid), cpu)
        api = request_delta(self.api0, b.rest.request_counts())
        for key, n in self.own.items():
            api[key] = api.get(key, 0) - n
        ops = operator_counters(b.metrics_port)
        return {
            "phase": self.name,
            "seconds": round(wall, 1),
            "cpu_seconds": round(cpu, 1),
            "cpu_percent_of_core": round(100 * cpu / max(wall, 1e-9), 1),
            "cpu_seconds_by_thread": threads,
            "peak_rss_mib": round(b.running.peak_rss_mib(), 0),
            "api_requests": {
                f"{v} {r}": n for (v, r), n in sorted(api.items()) if n and r in OPERATOR_RESOURCES
            },
            "statements": b.double.statement_counts(),
            "double_cpu_seconds": round(b.double.engine_seconds, 1),
            "others_cpu_seconds": {k: round(v - self.others0[k], 1) for k, v in b.others_cpu().items()},
            **{k: int(ops[k] - self.ops0[k]) for k in OPERATOR_COUNTERS},
            **extra,
        }


class Fleet:
    def __init__(
        self, tenants: int, interval: float, intervals: int, timeout: float, profile: Path | None = None
    ) -> None:
        self.tenants, self.interval, self.intervals, self.timeout = tenants, interval, intervals, timeout
        self.profile = profile
        self.metrics_port = free_port()
        self.operator: OperatorProcess | None = None

    def others_cpu(self) -> dict[str, float]:
        """CPU seconds so far of everything else on the machine the benchmark started."""
        own = os.times()
        return {
            "kube-apiserver + etcd": sum(process_cpu_seconds(pid) for pid in self.cp.pids),
            "Kafka": sum(process_cpu_seconds(pid) for pid in self.kafka.pids),
            "this process (the double, the benchmark)": own.user + own.system,
        }

    @property
    def running(self) -> OperatorProcess:
        assert self.operator is not None, "the operator is not running"
        return self.operator

    def start_operator(self) -> OperatorProcess:
        env = {
            "KUBECONFIG": str(self.cp.kubeconfig),
            "CHA_SECRET_STORE": "inline",
            "CHA_METRICS_PORT": str(self.metrics_port),
            "CHA_DRIFT_INTERVAL_SECONDS": str(self.interval),
            "CHA_CATALOG_CACHE_SECONDS": str(self.interval),  # the defaults' ratio
        }
        operator = OperatorProcess(self.namespace, env, prefix="cha-fleet-operator-")
        deadline = time.monotonic() + 60
        while True:  # the metrics port answers once the start-up handler has run
            operator.check_running()
            try:
                operator_counters(self.metrics_port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(2)  # and Kopf's watch is established
        return operator

    def run(self) -> dict[str, Any]:
        n = self.tenants
        load_at_start = [round(x, 2) for x in os.getloadavg()]  # other work on the machine
        bed = Testbed()
        self.double = RisingWaveDouble().start()
        floor_double = RisingWaveDouble().start()
        try:
            self.cp = bed.control_plane()
            self.kafka = bed.kafka()
            kafka = self.kafka.bootstrap
            self.rest = self.cp.rest
            self.namespace, floor_ns = unique_name("fleet"), unique_name("floor")
            self.cp.create_namespace(self.namespace)
            self.cp.create_namespace(floor_ns)
            bodies = [
                tenant_body(
                    self.namespace, i, self.double.host, self.double.port, kafka=kafka, prefix="fleet"
                )
                for i in range(n)
            ]
            create_topics(kafka, [b["spec"]["kafka"]["eventsTopic"] for b in bodies], timeout=300)

            # 1. the raw floor, on its own double and namespace (the operator does not watch it)
            floor = [
                tenant_body(floor_ns, i, floor_double.host, floor_double.port, kafka=kafka, prefix="floor")
                for i in range(n)
            ]
            for body in floor:
                self.rest.post(resources_path(floor_ns), body)
            endpoint = Endpoint(
                host=floor_double.host,
                port=floor_double.port,
                database="dev",
                user="root",
                password="",
                sslmode="disable",
            )
            floor_others0 = self.others_cpu()
            floor_seconds = asyncio.run(
                asyncio.wait_for(raw_floor(self.rest, floor_ns, floor, endpoint), self.timeout)
            )
            floor_double_cpu = floor_double.engine_seconds
            floor_others = {k: round(v - floor_others0[k], 1) for k, v in self.others_cpu().items()}
            floor_double.stop()

            # 2. the burst, after the operator has idled (no resource yet) for IDLE_SECONDS
            self.operator = self.start_operator()
            cpu0 = self.operator.cpu_seconds()
            time.sleep(IDLE_SECONDS)
            idle = {
                "rss_mib": round(self.operator.rss_mib(), 1),
                "cpu_percent_of_core": round(100 * (self.operator.cpu_seconds() - cpu0) / IDLE_SECONDS, 1),
            }
            phase = Phase(self, "burst").start()
            for body in bodies:
                self.rest.post(resources_path(self.namespace), body)
            done, follow = wait_all_ready(self.rest, self.namespace, n, phase.t0, self.timeout, self.operator)
            phase.own = {("POST", c.PLURAL): n, **{(verb, c.PLURAL): k for verb, k in follow.items()}}
            burst = phase.stop(ready=done, timed_out=done < n)
            burst["raw_floor_seconds"] = round(floor_seconds, 1)
            burst["raw_floor_double_cpu_seconds"] = round(floor_double_cpu, 1)
            burst["raw_floor_others_cpu_seconds"] = floor_others
            burst["ratio_to_floor"] = round(burst["seconds"] / floor_seconds, 2)

            # 3. steady state, after each tenant's first timer pass (within two intervals of its
            # creation; it turns Ready's reason from Applied to UpToDate, a status write)
            time.sleep(2 * self.interval)
            phase = Phase(self, f"steady ({self.intervals} x {self.interval:.0f} s)").start()
            seconds = self.interval * self.intervals
            raw = self.profile / f"steady-{n}.raw" if self.profile else None
            profiler = start_profiler(self.running.process.pid, raw, seconds, rate=50) if raw else None
            time.sleep(seconds)
            steady = phase.stop(intervals=self.intervals)
            if raw is not None and profiler is not None:
                profiler.wait(120)
                steady["profile"] = {"self": top_frames(raw), "under": share_under(raw, PROFILE_SHARES)}

            # 4. restart
            before_stop = {
                "cpu_seconds": round(self.operator.cpu_seconds(), 1),
                "peak_rss_mib": round(self.operator.peak_rss_mib(), 0),
            }
            self.operator.stop()
            phase = Phase(self, "restart (first interval)").start(new_process=True)
            self.operator = self.start_operator()
            resumed = None
            while time.monotonic() - phase.t0 < max(self.interval, self.timeout if resumed is None else 0):
                if resumed is None and operator_counters(self.metrics_port)["reconciles"] >= n:
                    resumed = time.monotonic() - phase.t0
                if resumed is not None and time.monotonic() - phase.t0 >= self.interval:
                    break
                self.operator.check_running()
                time.sleep(0.5)
            restart = phase.stop(resume_seconds=None if resumed is None else round(resumed, 1))
            return {
                "tenants": n,
                "load_average": {"start": load_at_start, "end": [round(x, 2) for x in os.getloadavg()]},
                "idle_operator": idle,
                "first_operator": before_stop,
                "phases": [burst, steady, restart],
            }
        finally:
            if self.operator is not None:
                self.operator.stop()
            self.double.stop()
            floor_double.stop()
            bed.close()


def print_result(result: dict[str, Any]) -> None:
    n = result["tenants"]
    print(f"\n=== {n} tenants ===")
    idle, load = result["idle_operator"], result["load_average"]
    print(f"load average (1, 5, 15 min) at start {load['start']}, at end {load['end']}")
    print(
        f"idle operator (started, no resource, {IDLE_SECONDS:.0f} s): RSS {idle['rss_mib']} MiB, "
        f"CPU {idle['cpu_percent_of_core']} % of a core"
    )
    for p in result["phases"]:
        head = f"{p['phase']}: {p['seconds']} s"
        if "raw_floor_seconds" in p:
            state = "all Ready" if not p["timed_out"] else f"TIMED OUT, {p['ready']} Ready"
            head += f" ({state}); raw floor {p['raw_floor_seconds']} s; ratio {p['ratio_to_floor']}"
        if p.get("resume_seconds") is not None:
            head += f"; resume pass done after {p['resume_seconds']} s"
        print(head)
        print(
            f"  operator CPU {p['cpu_seconds']} s ({p['cpu_percent_of_core']} % of a core), "
            f"peak RSS {p['peak_rss_mib']:.0f} MiB; reconciles {p['reconciles']}"
        )
        by_thread = ", ".join(f"{k} {v} s" for k, v in p["cpu_seconds_by_thread"].items())
        print(f"  operator CPU by thread: {by_thread}")
        print(
            f"  catalog reads {p['catalog_reads']}; Kafka admin clients opened {p['kafka_clients']}, "
            f"topic checks {p.get('kafka_checks', 'n/a')}; "
            f"PostgreSQL connections opened {p['postgres_connections']}"
        )
        sql = ", ".join(f"{k} {v}" for k, v in p["statements"].items())
        busy = f"the double's CPU executing them {p['double_cpu_seconds']} s"
        if "raw_floor_double_cpu_seconds" in p:
            busy += f" (raw floor: {p['raw_floor_double_cpu_seconds']} s)"
        print(f"  SQL: {sql}; {busy}")
        others = ", ".join(f"{k} {v} s" for k, v in p["others_cpu_seconds"].items())
        print(f"  other CPU: {others}")
        if "raw_floor_others_cpu_seconds" in p:
            others = ", ".join(f"{k} {v} s" for k, v in p["raw_floor_others_cpu_seconds"].items())
            print(f"  other CPU during the raw floor: {others}")
        writes = sum(v for k, v in p["api_requests"].items() if k.split()[0] not in ("GET", "LIST", "WATCH"))
        print(
            f"  API requests ({writes} writes): "
            + ", ".join(f"{k} {v}" for k, v in p["api_requests"].items())
        )
        if "profile" in p:
            under = ", ".join(f"{k} {v} %" for k, v in p["profile"]["under"].items())
            print(f"  profile (% of samples, all threads): {under}")
            for share, frame in p["profile"]["self"]:
                print(f"    self {share:5.1f}% {frame}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="100,300,1000", help="comma-separated fleet sizes")
    parser.add_argument("--interval", type=float, default=60.0, help="the drift interval, seconds")
    parser.add_argument("--intervals", type=int, default=3, help="steady-state intervals measured")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for Ready")
    parser.add_argument(
        "--profile", type=Path, help="directory for a py-spy profile of the operator in steady state"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = []
    for n in (int(x) for x in args.tenants.split(",")):
        result = Fleet(n, args.interval, args.intervals, args.timeout, args.profile).run()
        results.append(result)
        if not args.json:
            print_result(result)
            sys.stdout.flush()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(NOT_RISINGWAVE)
    return 0 if all(not r["phases"][0]["timed_out"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
