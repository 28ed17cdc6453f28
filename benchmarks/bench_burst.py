"""A burst of new tenants: wall time until all are Ready, and what each cost RisingWave.

    python3 benchmarks/bench_burst.py [--tenants 300] [--timeout 1800] [--json]

The operator runs as its own process (``charging-analytics operator --standalone``, the code on
``PYTHONPATH``) against a real etcd + kube-apiserver (``tests/infra``, tools from
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
from tests.infra.testbed import Testbed, unique_name  # noqa: E402
from tests.rw_double import RisingWaveDouble  # noqa: E402

NOT_RISINGWAVE = (
    "NOTE: RisingWave is the DOUBLE (tests/rw_double), not RisingWave: statement counts carry over, "
    "the cost of each FLUSH and catalog read does not."
)


def tenant_body(namespace: str, index: int, host: str, port: int) -> dict[str, Any]:
    tenant = f"burst_{index:04d}"
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": f"burst-{index:04d}", "namespace": namespace},
        "spec": {
            "tenant": tenant,
            "risingwave": {"host": host, "port": port, "database": "dev", "sslmode": "disable"},
            "kafka": {"bootstrapServers": ["kafka:9092"], "eventsTopic": f"ocpp.{tenant}.events"},
            "analytics": {
                "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 0.59, "CHAdeMO": 0.49, "Type2": 0.35}}
            },
            "alerts": {
                "stalledSessionMinutes": 10,
                "availabilityBelowPercent": 80,
                "connectorFaults": True,
                "sinks": {"kafka": {"topic": f"ocpp.{tenant}.alerts"}},
            },
        },
    }


def ready(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    if status.get("observedGeneration") != item["metadata"].get("generation"):
        return False
    return any(
        cond.get("type") == c.COND_READY and cond.get("status") == "True"
        for cond in status.get("conditions") or []
    )


def run(tenants: int, timeout: float) -> dict[str, Any]:
    bed = Testbed()
    double = RisingWaveDouble().start()
    operator: subprocess.Popen[bytes] | None = None
    fd, log_path = tempfile.mkstemp(prefix="cha-burst-operator-", suffix=".log")
    log = os.fdopen(fd, "wb")
    try:
        cp = bed.control_plane()
        namespace = unique_name("burst")
        cp.create_namespace(namespace)
        env = {
            **os.environ,
            "KUBECONFIG": str(cp.kubeconfig),
            "CHA_CHECK_KAFKA": "false",
            "CHA_SECRET_STORE": "inline",
            "CHA_METRICS_PORT": "0",
            "CHA_LOG_LEVEL": "WARNING",
        }
        operator = subprocess.Popen(
            [sys.executable, "-m", "charging_analytics.cli", "operator", "--standalone", "-n", namespace],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(3)  # let Kopf start watching before the burst
        double.clear_statements()
        path = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"
        started = time.monotonic()
        for i in range(tenants):
            cp.rest.post(path, tenant_body(namespace, i, double.host, double.port))
        created = time.monotonic() - started
        done = 0
        while time.monotonic() - started < timeout:
            items = cp.rest.get(path).get("items", [])
            done = sum(1 for item in items if ready(item))
            if done == tenants:
                break
            if operator.poll() is not None:
                raise RuntimeError(f"the operator exited ({operator.returncode}); log: {log_path}")
            time.sleep(0.5)
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
            "operator_log": log_path,
        }
    finally:
        if operator is not None:
            operator.terminate()
            try:
                operator.wait(timeout=20)
            except subprocess.TimeoutExpired:
                operator.kill()
        log.close()
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
