#!/usr/bin/env python3
"""The demo: the operator reconciling the example tenants on a local control plane.

Starts etcd + kube-apiserver (the CRD installed), a Kafka broker and PostgreSQL (the test bed in
tests/infra), applies examples/ into namespace ``tenants`` (pointed at the local Kafka and
PostgreSQL), produces simulated OCPP traffic, runs ``charging-analytics operator`` and shows what it
did: each tenant's conditions, objects, plan and events. Then tears everything down.

With ``RISINGWAVE_DSN`` set, the tenants are applied to that RisingWave for real. Without it (there
is no RisingWave package to install here) the tenants run in ``mode: Plan`` against an empty catalog
served by the project's RisingWave test double, so what you see is the plan, not a pipeline.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from charging_analytics import constants as c  # noqa: E402
from charging_analytics.events import format_timestamp  # noqa: E402
from charging_analytics.preview_cli import format_text, parse_instant, run_preview  # noqa: E402
from charging_analytics.rw.client import Endpoint  # noqa: E402
from tests.infra.controlplane import KubeApiError, KubeRest  # noqa: E402
from tests.infra.testbed import Testbed  # noqa: E402
from tests.rw_double.server import RisingWaveDouble  # noqa: E402

NAMESPACE = "tenants"
EXAMPLES = ("acme.yaml", "voltbay.yaml")
#: Views the demo's preview prints (every view is computed; these tell the story).
PREVIEW_VIEWS = ["completed_sessions", "station_revenue", "connector_status_live", "alerts"]
SETTLED = {"Applied", "UpToDate", "PlanReady"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def adapt(
    docs: list[dict[str, Any]], kafka: str, pg: Any, endpoint: Endpoint, live: bool
) -> list[dict[str, Any]]:
    """Point an example at the local services (printed, so the reader sees every change)."""
    out = []
    for doc in docs:
        doc = copy.deepcopy(doc)
        name = doc["metadata"]["name"]
        doc["metadata"]["namespace"] = NAMESPACE
        if doc["kind"] == "Secret" and name.endswith("alerts-db"):
            doc["stringData"] = {"username": pg.alerts_user, "password": pg.alerts_password}
        if doc["kind"] == c.KIND:
            spec = doc["spec"]
            spec["kafka"]["bootstrapServers"] = [kafka]
            spec["kafka"].pop("security", None)  # the local broker is PLAINTEXT
            if "risingwave" in spec:
                spec["risingwave"].update(host=endpoint.host, port=endpoint.port, database=endpoint.database)
            postgres = spec.get("alerts", {}).get("sinks", {}).get("postgres")
            if postgres:
                postgres.update(host=pg.host, port=pg.port, database=pg.alerts_db)
            spec["mode"] = "Apply" if live else "Plan"
            print(
                f"    {name}: kafka -> {kafka}, risingwave -> {endpoint.key}, mode -> {spec['mode']}"
                + (", postgres sink -> local PostgreSQL" if postgres else "")
                + ", SASL off (local broker is PLAINTEXT)"
            )
        out.append(doc)
    return out


def cr_path(name: str = "") -> str:
    base = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{NAMESPACE}/{c.PLURAL}"
    return f"{base}/{name}" if name else base


def settled(rest: KubeRest, names: list[str]) -> bool:
    for name in names:
        obj = rest.get(cr_path(name))
        st = obj.get("status") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"]:
            return False
        ready = next((x for x in st.get("conditions") or [] if x["type"] == c.COND_READY), None)
        stalled = next((x for x in st.get("conditions") or [] if x["type"] == c.COND_STALLED), None)
        if not ready or (ready["reason"] not in SETTLED and not (stalled and stalled["status"] == "True")):
            return False
    return True


def show(rest: KubeRest, names: list[str], live: bool) -> None:
    say("kubectl get cha -n tenants -o wide")
    table = rest.request("GET", cr_path(), headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    cols = [col["name"] for col in table["columnDefinitions"]]
    rows = [[str(x) for x in row["cells"]] for row in table["rows"]]
    widths = [max(len(v) for v in [col, *[r[i] for r in rows]]) for i, col in enumerate(cols)]
    print("    " + "  ".join(col.upper().ljust(w) for col, w in zip(cols, widths, strict=True)))
    for row in rows:
        print("    " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    for name in names:
        st = rest.get(cr_path(name)).get("status") or {}
        say(f"{name}: status")
        for cond in st.get("conditions") or []:
            print(f"    {cond['type']:<12} {cond['status']:<6} {cond['reason']:<22} {cond['message'][:110]}")
        plan = st.get("plan")
        if plan:
            print(f"    plan {plan['hash']}: {plan['actions']} actions, destructive={plan['destructive']}")
            for statement in plan["statements"][:40]:
                print("      " + statement.splitlines()[0][:110])
        for obj in st.get("objects") or []:
            extra = f" ({obj['backfillProgress']})" if obj.get("backfillProgress") else ""
            print(f"    {obj['kind']:<17} {obj['name']:<36} {obj['state']}{extra}")
    say("events")
    events = rest.get(f"/api/v1/namespaces/{NAMESPACE}/events").get("items", [])
    for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        print(f"    {e['type']:<8} {e['involvedObject']['name']:<8} {e['reason']:<16} {e['message'][:100]}")
    if not live:
        print(
            "\n    Plan mode: nothing was applied. Set RISINGWAVE_DSN=postgresql://root@<host>:4566/dev "
            "to apply the same tenants to a RisingWave."
        )


def main() -> int:
    live_dsn = os.environ.get("RISINGWAVE_DSN")
    bed = Testbed()
    double: RisingWaveDouble | None = None
    operator: subprocess.Popen[bytes] | None = None
    log_path = bed.root / "operator.log"
    try:
        say("start etcd + kube-apiserver (CRD installed), Kafka, PostgreSQL")
        cp = bed.control_plane()
        kafka = bed.kafka().bootstrap
        pg = bed.postgres()
        started = ", ".join(f"{name} {secs:.1f}s" for name, secs in bed.startup.items())
        print(f"    apiserver {cp.server}  kafka {kafka}  postgres {pg.host}:{pg.port}  (started: {started})")
        if live_dsn:
            endpoint = Endpoint.from_dsn(live_dsn)
            say(f"RisingWave: {endpoint.key} (RISINGWAVE_DSN) -- tenants will be APPLIED")
        else:
            double = RisingWaveDouble().start()
            endpoint = Endpoint.from_dsn(double.dsn)
            say(
                "RisingWave: none (RISINGWAVE_DSN is not set). Tenants run in Plan mode against an empty "
                "catalog served by the RisingWave test double; nothing is applied."
            )

        rest = cp.rest
        cp.create_namespace(NAMESPACE)
        say("apply examples/ (adapted to the local services)")
        docs: list[dict[str, Any]] = []
        for example in EXAMPLES:
            docs += [d for d in yaml.safe_load_all((REPO_ROOT / "examples" / example).read_text()) if d]
        docs = adapt(docs, kafka, pg, endpoint, bool(live_dsn))
        names = [d["metadata"]["name"] for d in docs if d["kind"] == c.KIND]
        topics = [d["spec"]["kafka"]["eventsTopic"] for d in docs if d["kind"] == c.KIND]

        say("simulate OCPP traffic (2,000 events per tenant); three of them:")
        sample = subprocess.run(
            ["charging-analytics", "simulate", "--dry-run", "--max-events", "3", "--seed", "7", "-q"],
            check=True,
            capture_output=True,
            text=True,
        )
        for line in sample.stdout.splitlines():
            print(f"    {line}")
        # one start time for the Kafka traffic and the preview's copy of it (same seed, same events)
        start = format_timestamp(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6))
        traffic: list[Path] = []
        for seed, topic in enumerate(topics, start=1):
            simulate = [
                "charging-analytics",
                "simulate",
                "--rate",
                "0",
                "--speedup",
                "0",
                "--max-events",
                "2000",
            ]
            simulate += ["--seed", str(seed), "--start-time", start, "-q"]
            subprocess.run(
                [*simulate, "--bootstrap-servers", kafka, "--topic", topic, "--create-topic"], check=True
            )
            copy_path = bed.root / f"{topic}.jsonl"
            with copy_path.open("w") as out:
                subprocess.run([*simulate, "--dry-run"], check=True, stdout=out)
            traffic.append(copy_path)
            print(f"    {topic}: 2000 events")
        cp.apply_manifest(docs, NAMESPACE)

        say("run the operator: charging-analytics operator --namespace tenants --standalone")
        env = dict(
            os.environ,
            KUBECONFIG=str(cp.kubeconfig),
            CHA_METRICS_PORT="0",
            CHA_DRIFT_INTERVAL_SECONDS="10",
            CHA_DEFAULT_RW_HOST=endpoint.host,
            CHA_DEFAULT_RW_PORT=str(endpoint.port),
            CHA_DEFAULT_RW_DATABASE=endpoint.database,
            CHA_DEFAULT_RW_USER=endpoint.user,
            CHA_DEFAULT_RW_PASSWORD=endpoint.password,
            CHA_SECRET_STORE="auto" if live_dsn else "inline",
        )
        with log_path.open("wb") as log:
            # the interpreter itself (not a wrapper script) in its own process group, so tear-down
            # reaches every process it started
            operator = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "charging_analytics.cli",
                    "operator",
                    "--namespace",
                    NAMESPACE,
                    "--standalone",
                    "--liveness",
                    f"http://127.0.0.1:{free_port()}/healthz",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            deadline = time.monotonic() + 180
            while not settled(rest, names):
                if operator.poll() is not None or time.monotonic() > deadline:
                    print(log_path.read_text()[-4000:])
                    print("error: the operator did not settle the tenants", file=sys.stderr)
                    return 1
                time.sleep(1)
            show(rest, names, bool(live_dsn))
        for example, events in zip(EXAMPLES, traffic, strict=True):
            last = events.read_text().strip().splitlines()[-1]
            at = parse_instant(json.loads(last)["occurred_at"])
            say(f"preview of {example}'s analytics from its simulated traffic, computed by PostgreSQL")
            for tenant, result in run_preview(REPO_ROOT / "examples" / example, events, at, pg.conninfo()):
                for line in format_text(tenant, result, PREVIEW_VIEWS, limit=8).splitlines():
                    print(f"    {line[:220]}")
        return 0
    except KubeApiError as err:
        print(f"error: {err}\n{json.dumps(err.body)[:2000]}", file=sys.stderr)
        return 1
    finally:
        say("tear down")
        if operator is not None and operator.poll() is None:
            os.killpg(operator.pid, signal.SIGTERM)  # Kopf stops gracefully (watches, cleanup)
            try:
                operator.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
                operator.wait()
        if double is not None:
            double.stop()
        bed.close()


if __name__ == "__main__":
    sys.exit(main())
