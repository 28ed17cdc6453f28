#!/usr/bin/env python3
"""The demo: the operator reconciling the example tenants on a local control plane.

Starts etcd + kube-apiserver (the CRD installed), a Kafka broker and PostgreSQL (the test bed in
testbed/), applies examples/ into namespace ``tenants`` (pointed at the local Kafka and
PostgreSQL), starts the OCPP gateway and drives simulated OCPP 1.6J and 2.0.1 charge points of
each tenant through it (the gateway publishes their events to the tenant's topic), runs
``charging-analytics operator`` and shows what it did: each tenant's conditions, objects, plan and
events. Then tears everything down.

With ``RISINGWAVE_DSN`` set, the tenants are applied to that RisingWave for real. Without it (there
is no RisingWave package to install here) the tenants run in ``mode: Plan`` against an empty catalog
served by the project's RisingWave test double, so what you see is the plan, not a pipeline.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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
from charging_analytics.simulator.simulate import build_fleet, ensure_topic  # noqa: E402
from testbed.bed import Testbed  # noqa: E402
from testbed.controlplane import KubeApiError, KubeRest  # noqa: E402
from testbed.kafka import consume_all  # noqa: E402
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


STATIONS_PER_TENANT = 8
SIMULATED_HOURS = 6


def gateway_tenants_file(workdir: Path, kafka: str, tenants: list[tuple[str, str]]) -> Path:
    """The gateway's tenants file: each tenant's topic, station registry and credentials file.

    The registry is the simulated fleet's layout (connector ids and plug types), so the events
    carry the connector types the tariffs price.
    """
    entries = []
    for seed, (tenant, topic) in enumerate(tenants, start=1):
        fleet = build_fleet(seed, STATIONS_PER_TENANT)
        creds = {s.station_id: secrets.token_urlsafe(18) for s in fleet}
        (workdir / f"{tenant}-stations.yaml").write_text(yaml.safe_dump(creds))
        entries.append(
            {
                "tenant": tenant,
                "kafka": {"bootstrapServers": [kafka], "eventsTopic": topic},
                "credentialsFile": f"{tenant}-stations.yaml",
                "stations": [
                    {
                        "id": s.station_id,
                        "connectors": [
                            {"id": k.connector_id, "standard": k.connector_type} for k in s.connectors
                        ],
                    }
                    for s in fleet
                ],
            }
        )
    path = workdir / "gateway-tenants.yaml"
    path.write_text(
        yaml.safe_dump({"state": {"bootstrapServers": [kafka]}, "tenants": entries}, sort_keys=False)
    )
    return path


def topic_copy(workdir: Path, kafka: str, topic: str) -> Path:
    """The events topic as JSON lines, in the order the records were stored."""
    records = consume_all(kafka, topic, timeout=60)
    path = workdir / f"{topic}.jsonl"
    path.write_text("".join(r.value.decode() + "\n" for r in records if r.value is not None))
    print(f"    {topic}: {len(records)} events published by the gateway")
    return path


def drive_through_gateway(
    workdir: Path, kafka: str, tenants: list[tuple[str, str]]
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``charging-analytics gateway`` and drive each tenant's stations through it as OCPP
    charge points (``charging-analytics simulate --gateway``); returns the gateway and a summary."""
    say("start the OCPP gateway: charging-analytics gateway --tenants-file gateway-tenants.yaml")
    for _tenant, topic in tenants:
        ensure_topic(kafka, topic, partitions=3)
    tenants_file = gateway_tenants_file(workdir, kafka, tenants)
    port, probes = free_port(), free_port()
    log_path = workdir / "gateway.log"
    with log_path.open("wb") as log:
        gateway = subprocess.Popen(
            [
                *(sys.executable, "-m", "charging_analytics.cli", "gateway", "--host", "127.0.0.1"),
                *("--port", str(port), "--metrics-port", str(probes), "--tenants-file", str(tenants_file)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probes}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if gateway.poll() is not None or time.monotonic() > deadline:
            print(log_path.read_text()[-4000:])
            raise RuntimeError("the gateway did not become ready")
        time.sleep(0.5)
    print(f"    ws://127.0.0.1:{port}/ocpp/<tenant>/<station>  (probes and /metrics on :{probes})")
    # the simulated hours end now, so the traffic is recent history rather than the future
    start = format_timestamp(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=SIMULATED_HOURS))
    lines = []
    for seed, (tenant, _topic) in enumerate(tenants, start=1):
        say(
            f"{tenant}: {STATIONS_PER_TENANT} simulated charge points (OCPP 1.6J and 2.0.1), "
            f"{SIMULATED_HOURS} simulated hours, time-compressed"
        )
        creds = workdir / f"{tenant}-stations.yaml"
        run = subprocess.run(
            [
                *(sys.executable, "-m", "charging_analytics.cli", "simulate"),
                *("--gateway", f"ws://127.0.0.1:{port}", "--tenant", tenant),
                *("--stations", str(STATIONS_PER_TENANT), "--versions", "1.6,2.0.1"),
                *("--password-file", str(creds), "--seed", str(seed), "--start-time", start),
                *("--speedup", "0", "--rate", "0", "--offline-per-hour", "0.05"),
                *("--simulated-duration", str(SIMULATED_HOURS * 3600), "--fault-probability", "0.05"),
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        summary = run.stderr.strip().splitlines()
        print("    " + (summary[-1] if summary else "(no output)"))
        if run.returncode != 0:
            print(log_path.read_text()[-4000:])
            raise RuntimeError(f"{tenant}: charge points ended with {run.returncode}")
        lines.append(f"    {tenant}: charge points done")
    return gateway, "\n".join(lines)


def main() -> int:
    live_dsn = os.environ.get("RISINGWAVE_DSN")
    bed = Testbed()
    double: RisingWaveDouble | None = None
    operator: subprocess.Popen[bytes] | None = None
    gateway: subprocess.Popen[bytes] | None = None
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
        specs = [d["spec"] for d in docs if d["kind"] == c.KIND]
        tenants = [(spec["tenant"], spec["kafka"]["eventsTopic"]) for spec in specs]
        gateway, summary = drive_through_gateway(bed.root, kafka, tenants)
        print(summary)
        # what the gateway published is the preview's input: the same events the source reads
        traffic = [topic_copy(bed.root, kafka, topic) for _tenant, topic in tenants]
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
            # records are in partition order: the preview's instant is the newest event's time
            lines = events.read_text().splitlines()
            at = max(parse_instant(json.loads(line)["occurred_at"]) for line in lines)
            say(f"preview of {example}'s analytics from its simulated traffic, computed by PostgreSQL")
            for tenant, result in run_preview(REPO_ROOT / "examples" / example, events, at, pg.conninfo()):
                for line in format_text(tenant, result, PREVIEW_VIEWS, limit=8).splitlines():
                    print(f"    {line[:220]}")
        return 0
    except KubeApiError as err:
        print(f"error: {err}\n{json.dumps(err.body)[:2000]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: tear down (below) and exit like a shell does, no traceback
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        say("tear down")
        if operator is not None and operator.poll() is None:
            os.killpg(operator.pid, signal.SIGTERM)  # Kopf stops gracefully (watches, cleanup)
            try:
                operator.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
                operator.wait()
        if gateway is not None and gateway.poll() is None:
            os.killpg(gateway.pid, signal.SIGTERM)  # drains in-flight messages, closes sockets
            try:
                gateway.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(gateway.pid, signal.SIGKILL)
                gateway.wait()
        if double is not None:
            double.stop()
        bed.close()


if __name__ == "__main__":
    sys.exit(main())
