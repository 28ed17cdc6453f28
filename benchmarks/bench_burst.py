"""A burst of new tenants: wall time until all are Ready, and what each cost RisingWave.

    python3 benchmarks/bench_burst.py [--tenants 300] [--timeout 1800] [--json]

The operator runs as its own process (``charging-analytics operator --standalone``, the code on
``PYTHONPATH``) against a real etcd + kube-apiserver (``testbed/``, tools from
``scripts/provision.sh``) and the RisingWave DOUBLE (``tests/rw_double``), started in this
process. Kafka and PostgreSQL are not involved: the Kafka check is off (``CHA_CHECK_KAFKA=false``)
and the tenants have a Kafka alert sink only, so what is measured is the operator's work with the
Kubernetes API and RisingWave. All ``--tenants`` resources are created at once, as fast as the
API server takes them; the clock stops when the last one reports ``Ready=True``.

Printed: the burst time, and the statements the double received during the burst by kind (DDL,
ledger DML, FLUSH, catalog SELECTs, session SETs, and empty queries, which is what a connection
pool's health check sends), in total and per tenant. The double is NOT RisingWave: a FLUSH or a
catalog read costs it almost nothing, where on RisingWave a FLUSH waits for a checkpoint of the
whole cluster. Compare statement counts across versions; take times as the operator's own
overhead on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests/ (the double, the control plane)

from charging_analytics import constants as c  # noqa: E402
from testbed.bed import Testbed, unique_name  # noqa: E402
from testbed.specs import resource, spec_dict  # noqa: E402
from tests.rw_double import RisingWaveDouble  # noqa: E402

NOT_RISINGWAVE = (
    "NOTE: RisingWave is the DOUBLE (tests/rw_double), not RisingWave: statement counts carry over, "
    "the cost of each FLUSH and catalog read does not."
)


def tenant_body(
    namespace: str, index: int, host: str, port: int, *, kafka: str = "kafka:9092", prefix: str = "burst"
) -> dict[str, Any]:
    """A small tenant like ``examples/voltbay.yaml``: defaults, alerts to a Kafka topic only."""
    spec = spec_dict(
        f"{prefix}_{index:04d}",
        bootstrap=kafka,
        risingwave={"host": host, "port": port, "database": "dev", "sslmode": "disable"},
        alerts={"availabilityBelowPercent": 80, "connectorFaults": True},
    )
    return resource(f"{prefix}-{index:04d}", namespace, spec)


def _stat_cpu_seconds(stat: str) -> float:
    """User + system CPU time in a ``/proc`` ``stat`` line (fields 14 and 15, in clock ticks)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/PID/stat``)."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds(pid: int) -> dict[int, tuple[str, float]]:
    """Each live thread of ``pid``: its name (``/proc/PID/task/TID/comm``, the main thread's
    named ``main``) and its CPU time so far. Threads that have exited are not listed."""
    threads: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:  # the thread exited meanwhile
            continue
        tid = int(task.name)
        threads[tid] = ("main" if tid == pid else name, _stat_cpu_seconds(stat))
    return threads


def cpu_by_thread_kind(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], total: float
) -> dict[str, float]:
    """CPU seconds between two :func:`thread_cpu_seconds` readings, by thread name with its
    number dropped (``asyncio_3`` counts as ``asyncio_``); what threads that exited in between
    used is the rest of ``total`` (the process's CPU over the same time)."""
    kinds: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        kind = name.rstrip("0123456789")
        kinds[kind] = kinds.get(kind, 0.0) + cpu - before.get(tid, (name, 0.0))[1]
    kinds["(threads that exited)"] = max(0.0, total - sum(kinds.values()))
    return {k: round(v, 2) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]) if round(v, 2)}


def ready(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    if status.get("observedGeneration") != item["metadata"].get("generation"):
        return False
    return any(
        cond.get("type") == c.COND_READY and cond.get("status") == "True"
        for cond in status.get("conditions") or []
    )


def resources_path(namespace: str) -> str:
    return f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"


class OperatorProcess:
    """``charging-analytics operator --standalone -n NAMESPACE`` as its own process, its output in
    a log file; CPU time and peak RSS read from ``/proc`` while it runs."""

    def __init__(self, namespace: str, env: dict[str, str], prefix: str = "cha-operator-") -> None:
        fd, self.log_path = tempfile.mkstemp(prefix=prefix, suffix=".log")
        self._log = os.fdopen(fd, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "charging_analytics.cli", "operator", "--standalone", "-n", namespace],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def check_running(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the operator exited ({self.process.returncode}); log: {self.log_path}")

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def peak_rss_mib(self) -> float:
        """The process's peak resident set (``VmHWM``), MiB."""
        return self._status_mib("VmHWM:")

    def rss_mib(self) -> float:
        """The process's resident set now (``VmRSS``), MiB."""
        return self._status_mib("VmRSS:")

    def _status_mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


def wait_all_ready(
    rest: Any, namespace: str, tenants: int, started: float, timeout: float, operator: OperatorProcess
) -> tuple[int, dict[str, int]]:
    """Follow the resources (a LIST, then watches from its version) until all ``tenants`` are
    Ready or ``timeout`` has passed since ``started``. Returns (Ready count, requests made by
    verb: ``LIST``, ``WATCH``).

    The RisingWave double shares this process (and its interpreter lock), so the benchmark reads
    each change once instead of listing every resource again and again: a LIST of 1,000
    resources takes a noticeable share of a second to decode, and the API server as long to
    encode."""
    requests = {"LIST": 0, "WATCH": 0}
    state: dict[str, bool] = {}
    version: str | None = None
    while time.monotonic() - started < timeout:
        if version is None:
            listing = rest.get(resources_path(namespace))
            requests["LIST"] += 1
            state = {item["metadata"]["name"]: ready(item) for item in listing.get("items", [])}
            version = listing["metadata"]["resourceVersion"]
        if sum(state.values()) >= tenants:
            break
        operator.check_running()
        left = timeout - (time.monotonic() - started)
        requests["WATCH"] += 1
        for event in rest.watch(
            resources_path(namespace), version, timeout_seconds=max(1, min(10, int(left)))
        ):
            if event["type"] == "ERROR":  # the version expired: list again
                version = None
                break
            item = event["object"]
            version = item["metadata"]["resourceVersion"]
            state[item["metadata"]["name"]] = event["type"] != "DELETED" and ready(item)
            if sum(state.values()) >= tenants:
                break
    return sum(state.values()), requests


def run(tenants: int, timeout: float) -> dict[str, Any]:
    bed = Testbed()
    double = RisingWaveDouble().start()
    operator: OperatorProcess | None = None
    try:
        cp = bed.control_plane()
        namespace = unique_name("burst")
        cp.create_namespace(namespace)
        env = {
            "KUBECONFIG": str(cp.kubeconfig),
            "CHA_CHECK_KAFKA": "false",
            "CHA_SECRET_STORE": "inline",
            "CHA_METRICS_PORT": "0",
        }
        operator = OperatorProcess(namespace, env, prefix="cha-burst-operator-")
        time.sleep(3)  # let Kopf start watching before the burst
        double.clear_statements()
        started = time.monotonic()
        for i in range(tenants):
            cp.rest.post(resources_path(namespace), tenant_body(namespace, i, double.host, double.port))
        created = time.monotonic() - started
        done, _ = wait_all_ready(cp.rest, namespace, tenants, started, timeout, operator)
        seconds = time.monotonic() - started
        counts = double.statement_counts()
        return {
            "tenants": tenants,
            "ready": done,
            "create_seconds": round(created, 2),
            "burst_seconds": round(seconds, 2),
            "timed_out": done < tenants,
            "statements": counts,
            "per_tenant": {k: round(v / tenants, 2) for k, v in counts.items()},
            "operator_log": operator.log_path,
        }
    finally:
        if operator is not None:
            operator.stop()
        double.stop()
        bed.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=300)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for Ready")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.tenants, args.timeout)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(NOT_RISINGWAVE)
    state = "TIMED OUT" if result["timed_out"] else "all Ready"
    print(
        f"{result['tenants']} tenants created in {result['create_seconds']} s; "
        f"{result['ready']} Ready after {result['burst_seconds']} s ({state})"
    )
    print(f"{'statements':<10} {'total':>8} {'per tenant':>11}")
    for kind, total in result["statements"].items():
        print(f"{kind:<10} {total:>8} {result['per_tenant'][kind]:>11}")
    return 0 if not result["timed_out"] else 1


if __name__ == "__main__":
    sys.exit(main())
