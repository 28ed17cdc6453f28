"""The OCPP gateway under load from simulated charge points, against a real Kafka broker.

Two phases, the gateway (``charging-analytics gateway``, its own process) and the load generator
(``charging_analytics.simulator.chargepoints``, in ``--clients`` processes) on the same machine:

1. **Idle connections**: ``--connections`` charge points connect (BootNotification, then idle
   with heartbeats) and stay connected; the gateway's RSS before and after gives KiB per idle
   connection.
2. **Sustained calls**: ``--rate-stations`` charge points play the fleet model time-compressed
   (``--speedup``), limited to ``--rate`` calls/s in total; every call's round trip (call ->
   result; transaction messages are answered only after Kafka acknowledged their events) gives
   p50/p99.

Targets (issue 10): >= 10,000 connections, >= 2,000 calls/s, p99 <= 100 ms, <= 20 KiB per idle
connection.  The benchmark prints what it reaches; it asserts nothing.

    python3 benchmarks/bench_gateway.py [--connections 10000] [--rate 2000] [--seconds 30] [--json]

Needs the Kafka jars of ``scripts/provision.sh`` (the test bed's broker).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "operator"), str(ROOT)]

from charging_analytics.simulator.chargepoints import (  # noqa: E402
    FleetConfig,
    FleetStats,
    fleet_profiles,
    run_fleet,
)
from charging_analytics.simulator.chargepoints.runner import percentile  # noqa: E402
from charging_analytics.simulator.simulate import SimulationConfig  # noqa: E402

TENANT = "bench"
STATE_TOPIC = "bench-gateway-state"
START = datetime(2025, 3, 1, tzinfo=UTC)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def write_tenants(workdir: Path, bootstrap: str, topic: str, sim: SimulationConfig) -> Path:
    stations = fleet_profiles(sim, ("1.6",))
    creds = {p.station_id: f"pw-{p.station_id}" for p in stations}
    (workdir / "bench-stations.yaml").write_text(yaml.safe_dump(creds))
    tenants = {
        "state": {"bootstrapServers": [bootstrap], "topic": STATE_TOPIC, "partitions": 1},
        "tenants": [
            {
                "tenant": TENANT,
                "kafka": {"bootstrapServers": [bootstrap], "eventsTopic": topic},
                "credentialsFile": "bench-stations.yaml",
                "stations": [
                    {
                        "id": p.station_id,
                        "connectors": [
                            {"id": c.connector_id, "standard": c.connector_type} for c in p.station.connectors
                        ],
                    }
                    for p in stations
                ],
            }
        ],
    }
    path = workdir / "tenants.yaml"
    path.write_text(yaml.safe_dump(tenants, sort_keys=False))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_gateway(tenants: Path, port: int) -> None:
    """The gateway process: ``Gateway`` from the tenants file, until SIGTERM.

    The library's server, not the ``gateway`` subcommand: the command's start-up (its state
    topic catch-up) stalled on this machine's fresh test broker, and the probes/metrics HTTP
    app it adds is not what this benchmark measures.
    """
    import logging
    import signal

    from charging_analytics.gateway.config import load_tenants_file
    from charging_analytics.gateway.server import Gateway

    raise_fd_limit()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    config = load_tenants_file(tenants)
    # A metadata round trip before the gateway's own clients start: without it the gateway's
    # state-topic catch-up stalled in a fresh process on this machine (see benchmarks/README.md).
    from confluent_kafka.admin import AdminClient

    AdminClient({"bootstrap.servers": ",".join(config.state.bootstrap_servers)}).list_topics(timeout=30)
    progress(f"gateway process: state topic {config.state.topic}")

    async def main() -> None:
        gateway = Gateway(config)
        progress("gateway process: starting")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await gateway.start("127.0.0.1", port)
        print("ready", flush=True)
        await stop.wait()
        await gateway.shutdown(drain_timeout=10)

    asyncio.run(main())
    os._exit(0)  # the Kafka client threads do not hold the benchmark up


def start_gateway(tenants: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}"}
    args = [sys.executable, __file__, "--serve", str(tenants), "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=out, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until ready or exit
    if line.strip() != b"ready":
        proc.kill()
        raise RuntimeError(f"gateway did not start:\n{log.read_text()[-3000:]}")
    return proc


# --------------------------------------------------------------------------------------------
# Client processes
# --------------------------------------------------------------------------------------------


def _client(fleet: FleetConfig, expect: int, reports: Any, stop: Any) -> None:
    """One load-generator process: drive ``fleet``; report when all are connected and at the end."""
    raise_fd_limit()

    async def main() -> None:
        stats = FleetStats()
        task = asyncio.create_task(run_fleet(fleet, stats=stats))
        announced = False
        while not task.done():
            await asyncio.sleep(0.2)
            if not announced and stats.connected >= expect:
                reports.put(("connected", os.getpid(), stats.connected))
                announced = True
            if stop.is_set():
                task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            summary = await task
            reports.put(("summary", os.getpid(), asdict(summary)))
        latencies = [v for values in stats.latencies.values() for v in values]
        reports.put(
            (
                "stats",
                os.getpid(),
                {
                    "latencies": latencies,
                    "calls": dict(stats.calls),
                    "errors": dict(stats.call_errors),
                    "connect_failures": dict(stats.connect_failures),
                    "peak": stats.peak_connected,
                },
            )
        )

    asyncio.run(main())


def run_clients(
    fleets: list[tuple[FleetConfig, int]], *, wait_connected: float
) -> tuple[Any, list[Any], Any]:
    ctx = mp.get_context("spawn")
    reports = ctx.Queue()
    stop = ctx.Event()
    procs = [ctx.Process(target=_client, args=(fleet, expect, reports, stop)) for fleet, expect in fleets]
    for proc in procs:
        proc.start()
    return reports, procs, stop


def collect(reports: Any, kind: str, count: int, timeout: float) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        try:
            item = reports.get(timeout=max(0.1, deadline - time.monotonic()))
        except Empty:
            break
        if item[0] == kind:
            got.append(item[2])
    return got


def split(total: int, parts: int) -> list[tuple[int, int]]:
    size, extra = divmod(total, parts)
    out, first = [], 0
    for i in range(parts):
        count = size + (1 if i < extra else 0)
        out.append((first, count))
        first += count
    return out


def phase_idle(args: argparse.Namespace, gateway_pid: int, url: str, sim: SimulationConfig) -> dict[str, Any]:
    base = rss_kib(gateway_pid)
    fleets = []
    for first, count in split(args.connections, args.clients):
        fleet = FleetConfig(
            gateway=url,
            tenant=TENANT,
            simulation=sim,
            versions=("1.6", "2.0.1"),
            passwords={f"ST-{i + 1:04d}": f"pw-ST-{i + 1:04d}" for i in range(first, first + count)},
            speedup=0,
            idle=True,
            hold_open=True,
            first_station=first,
            station_count=count,
            connect_rate_per_s=args.connect_rate / args.clients,
            open_timeout_s=60,
            validate_schemas=False,
        )
        fleets.append((fleet, count))
    t0 = time.monotonic()
    reports, procs, stop = run_clients(fleets, wait_connected=args.connect_timeout)
    connected = collect(reports, "connected", len(procs), args.connect_timeout)
    ramp = time.monotonic() - t0
    time.sleep(3)  # let the gateway settle (BootNotifications answered, buffers released)
    loaded = rss_kib(gateway_pid)
    stop.set()
    stats = collect(reports, "stats", len(procs), 60)
    for proc in procs:
        proc.join(30)
    peak = sum(s["peak"] for s in stats)
    return {
        "connections_target": args.connections,
        "connections_reached": sum(connected) if len(connected) == len(procs) else peak,
        "peak_connected": peak,
        "ramp_s": round(ramp, 1),
        "gateway_rss_before_kib": base,
        "gateway_rss_connected_kib": loaded,
        "kib_per_connection": round((loaded - base) / max(1, peak), 2),
        "connect_failures": _merge(s["connect_failures"] for s in stats),
    }


def _merge(dicts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def phase_rate(args: argparse.Namespace, url: str, sim: SimulationConfig) -> dict[str, Any]:
    fleets = []
    for first, count in split(args.rate_stations, args.clients):
        fleet = FleetConfig(
            gateway=url,
            tenant=TENANT,
            simulation=sim,
            versions=("1.6", "2.0.1"),
            passwords={f"ST-{i + 1:04d}": f"pw-ST-{i + 1:04d}" for i in range(first, first + count)},
            speedup=args.speedup,
            rate_per_s=args.rate / args.clients,
            duration_s=args.seconds,
            first_station=first,
            station_count=count,
            connect_rate_per_s=args.connect_rate / args.clients,
            heartbeat_interval_s=0,
            validate_schemas=False,
        )
        fleets.append((fleet, count))
    reports, procs, _stop = run_clients(fleets, wait_connected=0)
    summaries = collect(reports, "summary", len(procs), args.seconds + 120)
    stats = collect(reports, "stats", len(procs), 60)
    for proc in procs:
        proc.join(30)
    latencies = [v for s in stats for v in s["latencies"]]
    calls = sum(len(s["latencies"]) for s in stats)
    elapsed = max((s["elapsed_s"] for s in summaries), default=args.seconds)

    def ms(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if value is None else round(value * 1000, 1)

    return {
        "rate_target_per_s": args.rate,
        "stations": args.rate_stations,
        "calls": calls,
        "elapsed_s": round(elapsed, 1),
        "calls_per_s": round(calls / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "calls_by_action": _merge(s["calls"] for s in stats),
        "call_errors": _merge(s["errors"] for s in stats),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--connect-rate", type=float, default=1_000.0, help="new connections per second")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--rate", type=float, default=2_000.0, help="OCPP calls per second in total")
    parser.add_argument("--rate-stations", type=int, default=2_000)
    parser.add_argument("--speedup", type=float, default=600.0, help="simulated seconds per real second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the sustained-rate phase")
    parser.add_argument("--clients", type=int, default=3, help="load-generator processes")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the gateway process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_gateway(args.serve, args.port)
        return 0

    from testbed.kafka import KafkaBroker, consume_all, create_topic, produce

    fd_limit = raise_fd_limit()
    stations = max(args.connections, args.rate_stations)
    sim = SimulationConfig(seed=42, stations=stations, start_time=START, duration=timedelta(days=30))
    result: dict[str, Any] = {"fd_limit": fd_limit, "cpus": os.cpu_count(), "clients": args.clients}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp, KafkaBroker() as broker:
        workdir = Path(tmp)
        topic = "ocpp.bench.events"
        create_topic(broker.bootstrap, topic, 6)
        # Created here with its leaders elected, so the gateway's start does not race the
        # broker's topic creation (it creates the topic itself when missing).
        create_topic(broker.bootstrap, STATE_TOPIC, 1, config={"cleanup.policy": "compact"})
        # Warm the fresh broker (idempotent-producer ids, a consumer's metadata) before the
        # gateway's start-up, which reads its state topic to the end.
        create_topic(broker.bootstrap, "bench-warmup", 1)
        produce(broker.bootstrap, "bench-warmup", [(b"k", b"v")])
        consume_all(broker.bootstrap, "bench-warmup", min_messages=1)
        tenants = write_tenants(workdir, broker.bootstrap, topic, sim)
        port = free_port()
        log = workdir / "gateway.log"
        progress(f"broker {broker.bootstrap} up; starting the gateway")
        gateway = start_gateway(tenants, port, log)
        progress(f"gateway pid {gateway.pid} listening on {port}")
        url = f"ws://127.0.0.1:{port}"
        try:
            if not args.skip_idle:
                progress(f"idle phase: {args.connections} connections")
                result["idle"] = phase_idle(args, gateway.pid, url, sim)
            if not args.skip_rate:
                progress(f"rate phase: {args.rate:.0f} calls/s for {args.seconds:.0f} s")
                rate_sim = replace(sim, stations=stations)
                result["rate"] = phase_rate(args, url, rate_sim)
            result["gateway_rss_end_kib"] = rss_kib(gateway.pid)
        finally:
            gateway.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                gateway.wait(40)
            if gateway.poll() is None:
                gateway.kill()
            errors = [line for line in log.read_text().splitlines() if line.startswith(("ERROR", "CRITICAL"))]
            result["gateway_error_lines"] = len(errors)
            if errors:
                result["gateway_first_error"] = errors[0][:400]

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"machine: {result['cpus']} CPUs, fd limit {fd_limit}, {args.clients} load-generator processes")
    if "idle" in result:
        idle = result["idle"]
        print(
            f"idle: {idle['connections_reached']}/{idle['connections_target']} connected in "
            f"{idle['ramp_s']} s; gateway RSS {idle['gateway_rss_before_kib']} -> "
            f"{idle['gateway_rss_connected_kib']} KiB = {idle['kib_per_connection']} KiB per connection "
            f"(target <= 20); failures {idle['connect_failures']}"
        )
    if "rate" in result:
        rate = result["rate"]
        print(
            f"rate: {rate['calls']} calls in {rate['elapsed_s']} s = {rate['calls_per_s']}/s "
            f"(target >= {rate['rate_target_per_s']:.0f}); round trip p50 {rate['p50_ms']} ms, "
            f"p99 {rate['p99_ms']} ms (target <= 100), max {rate['max_ms']} ms; errors {rate['call_errors']}"
        )
        print(f"      by action: {rate['calls_by_action']}")
    print(f"gateway error log lines: {result['gateway_error_lines']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
