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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Empty
from typing import Any, Final

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
from profiling import start_profiler, top_frames  # noqa: E402

TENANT = "bench"
STATE_TOPIC = "bench-gateway-state"
METRICS_FILE = "gateway-metrics.json"  # written by the gateway process when it stops
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
        (tenants.parent / METRICS_FILE).write_text(json.dumps(produce_histogram(gateway.metrics)))

    asyncio.run(main())
    os._exit(0)  # the Kafka client threads do not hold the benchmark up


def produce_histogram(metrics: Any) -> dict[str, Any]:
    """The gateway's Kafka acknowledgement times: cumulative counts per bucket bound."""
    buckets: dict[str, float] = {}
    total = count = 0.0
    for family in metrics.produce_latency.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                buckets[sample.labels["le"]] = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_count"):
                count = sample.value
    return {"buckets": buckets, "sum": total, "count": count}


def describe_acks(hist: dict[str, Any]) -> str:
    count = hist["count"]
    if not count:
        return "no Kafka acknowledgements recorded"
    shares = ", ".join(
        f"<= {float(le) * 1000:g} ms {100 * n / count:.0f}%"
        for le, n in hist["buckets"].items()
        if le in ("0.01", "0.05", "0.1", "1.0")
    )
    return f"{count:.0f} Kafka acks, mean {1000 * hist['sum'] / count:.1f} ms; {shares}"


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
# Measuring processes
# --------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (``/proc/<pid>/stat``, all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop_thread_times(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread (the gateway's event loop) ran on a CPU and waited
    runnable for one (``/proc/<pid>/schedstat``): waiting means the machine was busy."""
    run_ns, wait_ns, _slices = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(run_ns) / 1e9, int(wait_ns) / 1e9


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class CpuWindow:
    """CPU share (of one core) of some processes between ``__init__`` and :meth:`shares`."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self._pids = pids
        self._t0 = time.monotonic()
        self._cpu0 = {name: self._cpu(ps) for name, ps in pids.items()}
        self._loop0 = loop_thread_times(pids["gateway"][0])

    def loop_shares(self) -> tuple[float, float]:
        """% of the window the gateway's event-loop thread ran, and waited for a CPU."""
        wall = max(1e-9, time.monotonic() - self._t0)
        (run0, wait0), (run1, wait1) = self._loop0, loop_thread_times(self._pids["gateway"][0])
        return round(100 * (run1 - run0) / wall, 1), round(100 * (wait1 - wait0) / wall, 1)

    @staticmethod
    def _cpu(pids: list[int]) -> list[float]:
        out = []
        for pid in pids:
            try:
                out.append(cpu_seconds(pid))
            except OSError:
                out.append(0.0)
        return out

    def shares(self) -> dict[str, list[float]]:
        """Per name, per process: % of one core over the window."""
        wall = max(1e-9, time.monotonic() - self._t0)
        return {
            name: [
                round(100 * (after - before) / wall, 1)
                for before, after in zip(self._cpu0[name], self._cpu(pids), strict=True)
            ]
            for name, pids in self._pids.items()
        }


def split(total: int, parts: int) -> list[tuple[int, int]]:
    size, extra = divmod(total, parts)
    out, first = [], 0
    for i in range(parts):
        count = size + (1 if i < extra else 0)
        out.append((first, count))
        first += count
    return out


def _merge(dicts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for k, v in d.items():
            total[k] = total.get(k, 0) + v
    return total


def run_clients(target: Any, jobs: list[tuple[Any, ...]]) -> tuple[Reports, list[Any], Any, Any]:
    """``target(*job, queue, go, stop)`` in one spawned process per job."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=target, args=(*job, queue, go, stop)) for job in jobs]
    for proc in procs:
        proc.start()
    return Reports(queue), procs, go, stop


class Reports:
    """What the load-generator processes reported, by kind. Waiting for one kind never drops
    another (a process may send two kinds right after each other)."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self._got: dict[str, list[Any]] = {}

    def wait(self, kind: str, count: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self._got.get(kind, [])) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                item = self._queue.get(timeout=min(left, 1.0))
            except Empty:
                continue
            self._got.setdefault(item[0], []).append(item[2])
        return list(self._got.get(kind, []))


def latency_figures(latencies: list[float]) -> dict[str, float | None]:
    def ms(q: float) -> float | None:
        value = percentile(latencies, q)
        return None if value is None else round(value * 1000, 1)

    return {"p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": ms(1.0)}


# --------------------------------------------------------------------------------------------
# Lean load generator: raw WebSocket clients sending pre-serialized OCPP-J frames
# --------------------------------------------------------------------------------------------

#: The same call for every station of a version; only the message id differs. Each one is a
#: StatusNotification of connector (EVSE) 1, which the gateway publishes and answers only once
#: Kafka acknowledged it.
_LEAN_CALLS: Final = {
    "1.6": (
        '","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Available",'
        '"timestamp":"2025-03-01T00:00:00Z"}]'
    ),
    "2.0.1": (
        '","StatusNotification",{"timestamp":"2025-03-01T00:00:00Z","connectorStatus":"Available",'
        '"evseId":1,"connectorId":1}]'
    ),
}
_LEAN_BOOT: Final = {
    "1.6": '","BootNotification",{"chargePointVendor":"Bench","chargePointModel":"Lean"}]',
    "2.0.1": (
        '","BootNotification",{"chargingStation":{"vendorName":"Bench","model":"Lean"},"reason":"PowerUp"}]'
    ),
}


def lean_version(index: int) -> str:
    return "1.6" if index % 2 == 0 else "2.0.1"


def _lean_client(
    first: int, count: int, active: int, options: dict[str, Any], queue: Any, go: Any, stop: Any
) -> None:
    """Connect stations ``first .. first+count-1`` (each sends a BootNotification), report, and
    hold them open; on ``go``, ``active`` of them send calls at ``options["rate"]`` calls/s in
    total for ``options["seconds"]``, one outstanding call per connection, as OCPP-J requires."""
    raise_fd_limit()
    from websockets.asyncio.client import ClientConnection, connect

    from charging_analytics.simulator.chargepoints.runner import RateLimiter, basic_authorization, station_url
    from charging_analytics.simulator.simulate import station_id_for

    async def call(ws: ClientConnection, frame: str) -> bool:
        await ws.send(frame)
        reply = await ws.recv()
        return isinstance(reply, str) and reply.startswith("[3,")

    async def main() -> None:
        limiter = RateLimiter(options["connect_rate"])
        conns: list[tuple[ClientConnection, str, str]] = []
        failures: dict[str, int] = {}

        async def open_one(index: int) -> None:
            sid, version = station_id_for(index), lean_version(index)
            await limiter.acquire()
            try:
                ws = await connect(
                    station_url(options["url"], TENANT, sid),
                    subprotocols=[f"ocpp{version}"],  # type: ignore[list-item]
                    additional_headers={"Authorization": basic_authorization(sid, f"pw-{sid}")},
                    open_timeout=options["open_timeout"],
                    ping_interval=None,
                    compression=None,
                    max_queue=2,
                )
                if not await call(ws, f'[2,"{sid}-boot{_LEAN_BOOT[version]}'):
                    failures["BootNotification refused"] = failures.get("BootNotification refused", 0) + 1
            except Exception as err:  # counted and reported, by kind
                failures[type(err).__name__] = failures.get(type(err).__name__, 0) + 1
                return
            conns.append((ws, version, sid))

        await asyncio.gather(*(open_one(i) for i in range(first, first + count)))
        queue.put(("connected", os.getpid(), {"connected": len(conns), "failures": failures}))
        # The events are the parent's (multiprocessing), so they are waited for in a thread.
        await asyncio.to_thread(_first, go, stop)
        if go.is_set() and active:
            queue.put(("rate", os.getpid(), await drive(conns[:active])))
        await asyncio.to_thread(stop.wait)
        await asyncio.gather(*(ws.close() for ws, _, _ in conns), return_exceptions=True)

    async def drive(conns: list[tuple[ClientConnection, str, str]]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        seconds, rate = options["seconds"], options["rate"]
        period = len(conns) / rate  # each connection's share of the rate
        deadline = loop.time() + seconds
        latencies: list[float] = []
        errors: dict[str, int] = {}

        async def one(ws: ClientConnection, version: str, sid: str, offset: float) -> None:
            prefix, suffix = f'[2,"{sid}-', _LEAN_CALLS[version]
            next_at = loop.time() + offset
            n = 0
            while True:
                now = loop.time()
                if next_at >= deadline:
                    return
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                n += 1
                started = time.perf_counter()
                try:
                    ok = await call(ws, f"{prefix}{n}{suffix}")
                except Exception as err:  # counted and reported, by kind
                    errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1
                    return
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors["CallError"] = errors.get("CallError", 0) + 1
                # A late connection sends its next call at once but does not burst to catch up.
                next_at = max(next_at + period, loop.time() - period)

        started = loop.time()
        await asyncio.gather(
            *(one(ws, v, sid, period * i / len(conns)) for i, (ws, v, sid) in enumerate(conns))
        )
        return {"latencies": latencies, "errors": errors, "elapsed_s": loop.time() - started}

    asyncio.run(main())
    os._exit(0)


def _first(*events: Any) -> None:
    """Block until one of ``events`` (multiprocessing events) is set."""
    while not any(e.wait(0.05) for e in events):
        pass


def run_lean(args: argparse.Namespace, gateway_pid: int, url: str) -> dict[str, Any]:
    """Idle phase, then the rate phase over ``--rate-stations`` of the same connections while
    the others stay connected and idle."""
    connections = args.connections if not args.skip_idle else args.rate_stations
    active = 0 if args.skip_rate else min(args.rate_stations, connections)
    options = {
        "url": url,
        "rate": args.rate / args.clients,
        "seconds": args.seconds,
        "connect_rate": args.connect_rate / args.clients,
        "open_timeout": 60.0,
    }
    jobs = [
        (first, count, a_count, options)
        for (first, count), (_a, a_count) in zip(
            split(connections, args.clients), split(active, args.clients), strict=True
        )
    ]
    result: dict[str, Any] = {}
    base = rss_kib(gateway_pid)
    t0 = time.monotonic()
    reports, procs, go, stop = run_clients(_lean_client, jobs)
    pids = {"gateway": [gateway_pid], "generator": [p.pid for p in procs]}
    ramp_cpu = CpuWindow(pids)
    connected = reports.wait("connected", len(procs), args.connect_timeout)
    ramp = time.monotonic() - t0
    ramp_shares = ramp_cpu.shares()
    time.sleep(3)  # BootNotifications answered, buffers released
    loaded = rss_kib(gateway_pid)
    reached = sum(c["connected"] for c in connected)
    if not args.skip_idle:
        result["idle"] = {
            "connections_target": connections,
            "connections_reached": reached,
            "reports": len(connected),
            "ramp_s": round(ramp, 1),
            "gateway_rss_before_kib": base,
            "gateway_rss_connected_kib": loaded,
            "kib_per_connection": round((loaded - base) / max(1, reached), 2),
            "connect_failures": _merge(c["failures"] for c in connected),
            "ramp_cpu_percent": ramp_shares,
            "load_average": load_average(),
        }
    try:
        if active:
            profiler = None
            if args.profile:
                profiler = start_profiler(gateway_pid, args.profile / "rate.raw", args.seconds)
            window = CpuWindow(pids)
            go.set()
            rates = reports.wait("rate", len(procs), args.seconds + 120)
            shares = window.shares()
            loop_run, loop_wait = window.loop_shares()
            latencies = [v for r in rates for v in r["latencies"]]
            elapsed = max((r["elapsed_s"] for r in rates), default=args.seconds)
            result["rate"] = {
                "generator": "lean",
                "rate_target_per_s": args.rate,
                "stations": active,
                "connected": reached,
                "calls": len(latencies),
                "elapsed_s": round(elapsed, 1),
                "calls_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
                **latency_figures(latencies),
                "calls_by_action": {"StatusNotification": len(latencies)},
                "call_errors": _merge(r["errors"] for r in rates),
                "cpu_percent": shares,
                "loop_run_percent": loop_run,
                "loop_wait_percent": loop_wait,
                "load_average": load_average(),
            }
            if profiler is not None:
                profiler.wait(60)
                result["rate"]["profile"] = top_frames(args.profile / "rate.raw")
    finally:
        stop.set()
        for proc in procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()
    return result


# --------------------------------------------------------------------------------------------
# The ocpp-library load generator (charging_analytics.simulator.chargepoints): the fleet model
# --------------------------------------------------------------------------------------------


def _fleet_client(fleet: FleetConfig, expect: int, queue: Any, _go: Any, stop: Any) -> None:
    """One load-generator process: drive ``fleet``; report when all are connected and at the end."""
    raise_fd_limit()

    async def main() -> None:
        stats = FleetStats()
        task = asyncio.create_task(run_fleet(fleet, stats=stats))
        announced = False
        while not task.done():
            await asyncio.sleep(0.2)
            if not announced and stats.connected >= expect:
                queue.put(("connected", os.getpid(), stats.connected))
                announced = True
            if stop.is_set():
                task.cancel()
        elapsed, failure = None, None
        try:
            elapsed = (await task).elapsed_s
        except asyncio.CancelledError:
            pass  # stopped by the benchmark (the idle phase)
        except Exception as err:  # reported with the statistics gathered until then
            failure = f"{type(err).__name__}: {err}"
        latencies = [v for values in stats.latencies.values() for v in values]
        queue.put(
            (
                "stats",
                os.getpid(),
                {
                    "elapsed_s": elapsed,
                    "failure": failure,
                    "latencies": latencies,
                    "calls": dict(stats.calls),
                    "errors": dict(stats.call_errors),
                    "connect_failures": dict(stats.connect_failures),
                    "peak": stats.peak_connected,
                },
            )
        )

    asyncio.run(main())


def _fleet(args: argparse.Namespace, url: str, sim: SimulationConfig, first: int, count: int) -> FleetConfig:
    return FleetConfig(
        gateway=url,
        tenant=TENANT,
        simulation=sim,
        versions=("1.6", "2.0.1"),
        passwords={f"ST-{i + 1:04d}": f"pw-ST-{i + 1:04d}" for i in range(first, first + count)},
        first_station=first,
        station_count=count,
        connect_rate_per_s=args.connect_rate / args.clients,
        open_timeout_s=60,
        validate_schemas=False,
    )


def phase_idle_fleet(
    args: argparse.Namespace, gateway_pid: int, url: str, sim: SimulationConfig
) -> dict[str, Any]:
    base = rss_kib(gateway_pid)
    jobs = [
        (replace(_fleet(args, url, sim, first, count), speedup=0, idle=True, hold_open=True), count)
        for first, count in split(args.connections, args.clients)
    ]
    t0 = time.monotonic()
    reports, procs, _go, stop = run_clients(_fleet_client, jobs)
    connected = reports.wait("connected", len(procs), args.connect_timeout)
    ramp = time.monotonic() - t0
    time.sleep(3)  # let the gateway settle (BootNotifications answered, buffers released)
    loaded = rss_kib(gateway_pid)
    stop.set()
    stats = reports.wait("stats", len(procs), 120)
    for proc in procs:
        proc.join(30)
    peak = sum(s["peak"] for s in stats)
    reached = sum(connected) if len(connected) == len(procs) else peak
    return {
        "connections_target": args.connections,
        "connections_reached": reached,
        "reports": len(stats),
        "ramp_s": round(ramp, 1),
        "gateway_rss_before_kib": base,
        "gateway_rss_connected_kib": loaded,
        "kib_per_connection": round((loaded - base) / max(1, reached), 2),
        "connect_failures": _merge(s["connect_failures"] for s in stats),
        "load_average": load_average(),
    }


def phase_rate_fleet(
    args: argparse.Namespace, gateway_pid: int, url: str, sim: SimulationConfig
) -> dict[str, Any]:
    jobs = [
        (
            replace(
                _fleet(args, url, sim, first, count),
                speedup=args.speedup,
                rate_per_s=args.rate / args.clients,
                duration_s=args.seconds,
                heartbeat_interval_s=0,
            ),
            count,
        )
        for first, count in split(args.rate_stations, args.clients)
    ]
    reports, procs, _go, _stop = run_clients(_fleet_client, jobs)
    window = CpuWindow({"gateway": [gateway_pid], "generator": [p.pid for p in procs]})
    stats = reports.wait("stats", len(procs), args.seconds + 180)
    shares = window.shares()
    loop_run, loop_wait = window.loop_shares()
    for proc in procs:
        proc.join(30)
    latencies = [v for s in stats for v in s["latencies"]]
    elapsed = max((s["elapsed_s"] or 0.0 for s in stats), default=0.0) or args.seconds
    return {
        "generator": "ocpp",
        "rate_target_per_s": args.rate,
        "stations": args.rate_stations,
        "reports": len(stats),
        "calls": len(latencies),
        "elapsed_s": round(elapsed, 1),
        "calls_per_s": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        **latency_figures(latencies),
        "calls_by_action": _merge(s["calls"] for s in stats),
        "call_errors": _merge(s["errors"] for s in stats),
        "generator_failures": [s["failure"] for s in stats if s["failure"]],
        "cpu_percent": shares,
        "loop_run_percent": loop_run,
        "loop_wait_percent": loop_wait,
        "load_average": load_average(),
    }


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def limits(rate: dict[str, Any]) -> str:
    """What held the rate phase back, from the CPU the processes used and the time the
    gateway's event loop spent waiting for a CPU."""
    gateway = sum(rate["cpu_percent"]["gateway"])
    generators = rate["cpu_percent"]["generator"]
    run, wait = rate["loop_run_percent"], rate["loop_wait_percent"]
    parts = [
        f"gateway {gateway:.0f}% of a core, its event loop ran {run:.0f}% and waited for a CPU "
        f"{wait:.0f}% of the time",
        "generator " + "/".join(f"{g:.0f}%" for g in generators),
    ]
    if rate["calls"]:
        cpu_ms = 10 * gateway * rate["elapsed_s"] / rate["calls"]  # % of a core -> ms per call
        parts.append(f"gateway CPU {cpu_ms:.2f} ms per call (all its threads)")
    if rate["calls_per_s"] >= 0.95 * rate["rate_target_per_s"]:
        verdict = "rate reached"
    elif run >= 85:
        verdict = "the gateway's event loop is CPU-bound"
    elif wait >= 25:
        verdict = "the machine is oversubscribed: the gateway's event loop waited for a CPU"
    elif generators and max(generators) >= 85:
        verdict = "the load generator is CPU-bound"
    else:
        verdict = "neither side CPU-bound: waiting (Kafka acknowledgements)"
    return f"{verdict} ({'; '.join(parts)})"


def print_report(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"machine: {result['cpus']} CPUs, fd limit {result['fd_limit']}, {args.clients} load-generator "
        f"processes ({result['generator']} generator); load average at start {result['load_start']}"
    )
    if "idle" in result:
        idle = result["idle"]
        print(
            f"idle: {idle['connections_reached']}/{idle['connections_target']} connected in "
            f"{idle['ramp_s']} s; gateway RSS {idle['gateway_rss_before_kib']} -> "
            f"{idle['gateway_rss_connected_kib']} KiB = {idle['kib_per_connection']} KiB per connection "
            f"(target <= 20); failures {idle['connect_failures']}; load average {idle['load_average']}"
        )
        if "ramp_cpu_percent" in idle:
            ramp = idle["ramp_cpu_percent"]
            print(
                f"      during the ramp: gateway {sum(ramp['gateway']):.0f}% of a core, generator "
                + "/".join(f"{g:.0f}%" for g in ramp["generator"])
            )
    if "rate" in result:
        rate = result["rate"]
        print(
            f"rate: {rate['calls']} calls in {rate['elapsed_s']} s = {rate['calls_per_s']}/s "
            f"(target >= {rate['rate_target_per_s']:.0f}) from {rate['stations']} stations; round trip "
            f"p50 {rate['p50_ms']} ms, p99 {rate['p99_ms']} ms (target <= 100), max {rate['max_ms']} ms; "
            f"errors {rate['call_errors']}; load average {rate['load_average']}"
        )
        print(f"      by action: {rate['calls_by_action']}")
        for failure in rate.get("generator_failures", []):
            print(f"      a load-generator process failed: {failure}")
        print(f"      limit: {limits(rate)}")
        if "kafka_acks" in result:
            print(f"      gateway produce: {describe_acks(result['kafka_acks'])}")
        for share, frame in rate.get("profile", []):
            print(f"      profile {share:5.1f}% {frame}")
    print(
        f"gateway RSS at the end: {result['gateway_rss_end_kib']} KiB; "
        f"error log lines: {result['gateway_error_lines']} {result.get('gateway_first_error', '')}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--connect-rate", type=float, default=300.0, help="new connections per second")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--rate", type=float, default=2_000.0, help="OCPP calls per second in total")
    parser.add_argument("--rate-stations", type=int, default=2_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the sustained-rate phase")
    parser.add_argument("--clients", type=int, default=2, help="load-generator processes")
    parser.add_argument(
        "--generator",
        choices=("lean", "ocpp"),
        default="lean",
        help="lean: raw WebSocket clients, pre-serialized StatusNotifications; ocpp: the fleet model "
        "played by charging_analytics.simulator.chargepoints (ocpp-library charge points)",
    )
    parser.add_argument("--speedup", type=float, default=600.0, help="ocpp generator: simulated s per real s")
    parser.add_argument("--profile", type=Path, help="directory for a py-spy profile of the rate phase")
    parser.add_argument("--skip-idle", action="store_true")
    parser.add_argument("--skip-rate", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the gateway process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_gateway(args.serve, args.port)
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    from testbed.kafka import KafkaBroker, consume_all, create_topic, produce

    fd_limit = raise_fd_limit()
    stations = max(args.connections, args.rate_stations)
    sim = SimulationConfig(seed=42, stations=stations, start_time=START, duration=timedelta(days=30))
    result: dict[str, Any] = {
        "fd_limit": fd_limit,
        "cpus": os.cpu_count(),
        "clients": args.clients,
        "generator": args.generator,
        "load_start": load_average(),
    }
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
            if args.generator == "lean":
                progress(f"lean generator: {args.connections} connections, then {args.rate:.0f} calls/s")
                result.update(run_lean(args, gateway.pid, url))
            else:
                if not args.skip_idle:
                    progress(f"idle phase: {args.connections} connections")
                    result["idle"] = phase_idle_fleet(args, gateway.pid, url, sim)
                if not args.skip_rate:
                    progress(f"rate phase: {args.rate:.0f} calls/s for {args.seconds:.0f} s")
                    result["rate"] = phase_rate_fleet(args, gateway.pid, url, sim)
            result["gateway_rss_end_kib"] = rss_kib(gateway.pid)
        finally:
            gateway.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                gateway.wait(40)
            if gateway.poll() is None:
                gateway.kill()
            metrics = workdir / METRICS_FILE
            if metrics.exists():
                result["kafka_acks"] = json.loads(metrics.read_text())
            errors = [line for line in log.read_text().splitlines() if line.startswith(("ERROR", "CRITICAL"))]
            result["gateway_error_lines"] = len(errors)
            if errors:
                result["gateway_first_error"] = errors[0][:400]

    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print_report(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
