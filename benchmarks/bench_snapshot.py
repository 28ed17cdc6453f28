"""Latency and size of ``RisingWaveClient.snapshot()`` as the number of tenants on an endpoint grows.

    python3 benchmarks/bench_snapshot.py [--sizes 10,100,300] [--repeat 15] [--json]

Runs against the RisingWave DOUBLE (``tests/rw_double``), started in-process. The double is NOT
RisingWave: it answers catalog reads by transpiling them to SQLite, so absolute latencies say
how the operator's client and the double scale, not how RisingWave's meta service does. Bytes on
the wire and row counts do carry over (same queries, same result shapes).

For each size N (cumulative: 10, then 90 more, then 200 more):

1. populate: each new tenant is rendered, planned against the endpoint snapshot and applied with
   ``apply_plan`` through the real async client (so the ledger is written exactly as the operator
   writes it); tenants use every feature that needs no credentials (Kafka PLAINTEXT source, Kafka
   alert sink, connector-fault and low-availability alerts): 13 objects + 14 ledger rows each;
2. ``snapshot()`` latency: ``--repeat`` calls on a warm pooled connection, median and p95
   (``time.perf_counter``);
3. bytes: one ``snapshot()`` through an in-process TCP relay that counts bytes each way;
4. memory: tracemalloc size of the resulting ``CatalogSnapshot`` (retained, traced) and the
   one-off cost of its per-tenant index (first ``tenant()`` call).

The last column puts the shared snapshot in context: the reconcile service reads one snapshot per
endpoint per ``catalog_cache_seconds``; N tenants each reading their own would cost N times this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import platform
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the double lives in tests/

from charging_analytics.apply import apply_plan  # noqa: E402
from charging_analytics.plan import PlanOptions, build_plan  # noqa: E402
from charging_analytics.render import RenderOptions, render  # noqa: E402
from charging_analytics.rw import client as client_module  # noqa: E402
from charging_analytics.rw.client import ClientOptions, Endpoint, RisingWaveClient  # noqa: E402
from charging_analytics.spec import ChargingAnalyticsSpec  # noqa: E402
from testbed import specs  # noqa: E402
from tests.rw_double import RisingWaveDouble  # noqa: E402

NOT_RISINGWAVE = (
    "NOTE: measured against the RisingWave DOUBLE (tests/rw_double, a PG-wire stand-in that answers "
    "catalog reads via SQLite), NOT RisingWave. Latencies show scaling of client + double only; "
    "bytes and rows carry over."
)


def tenant_spec(tenant: str) -> ChargingAnalyticsSpec:
    return specs.tenant_spec(tenant, alerts={"availabilityBelowPercent": 80, "connectorFaults": True})


def owner_of(tenant: str) -> str:
    return f"bench/{tenant}"


# --------------------------------------------------------------------------------------------
# A byte-counting TCP relay (client <-> relay <-> double)
# --------------------------------------------------------------------------------------------


class CountingRelay:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.to_server = 0
        self.to_client = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        for task in (
            asyncio.create_task(self._pipe(reader, up_writer, upstream=True)),
            asyncio.create_task(self._pipe(up_reader, writer, upstream=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, upstream: bool) -> None:
        try:
            while data := await src.read(65536):
                if upstream:
                    self.to_server += len(data)
                else:
                    self.to_client += len(data)
                dst.write(data)
                await dst.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            dst.close()


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


@dataclass
class SizeResult:
    tenants: int
    populate_s: float  # for the tenants added at this step
    new_tenants: int
    statements: int
    objects: int
    ledger_rows: int
    min_ms: float
    median_ms: float
    p95_ms: float
    build_ms: float  # of median_ms: client-side rows -> CatalogSnapshot (_SnapshotParts)
    bytes_to_client: int
    bytes_to_server: int
    snapshot_kib: float
    index_kib: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class BuildTimer:
    """Times the client's pure rows -> CatalogSnapshot step inside snapshot(): the snapshot's parts
    are made row by row as the rows are read (``_SnapshotParts``), so this adds up the time spent
    in its methods, one figure per snapshot."""

    METHODS = ("relation", "secret", "ledger_row", "snapshot")

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._running = 0.0
        self._originals = {name: getattr(client_module._SnapshotParts, name) for name in self.METHODS}

    def __enter__(self) -> BuildTimer:
        for name, original in self._originals.items():
            setattr(client_module._SnapshotParts, name, self._timed(name, original))
        return self

    def _timed(self, name: str, original: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._running += time.perf_counter() - t
                if name == "snapshot":
                    self.seconds.append(self._running)
                    self._running = 0.0

        return timed

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(client_module._SnapshotParts, name, original)


class CountingRunner:
    """The client, counting the statements apply_plan sends."""

    def __init__(self, client: RisingWaveClient) -> None:
        self.client = client
        self.statements = 0

    async def execute(self, statement: str, *, sensitive: tuple[str, ...] = ()) -> None:
        self.statements += 1
        await self.client.execute(statement, sensitive=sensitive)


async def populate(client: RisingWaveClient, names: list[str]) -> int:
    """Render, plan and apply ``names`` (new tenants); returns the statements sent."""
    runner = CountingRunner(client)
    snapshot = await client.snapshot()
    ledger_exists = snapshot.ledger_exists
    for tenant in names:
        desired = render(tenant_spec(tenant), RenderOptions(secret_store="inline"))
        options = PlanOptions(owner=owner_of(tenant), ledger_exists=ledger_exists)
        plan = build_plan(desired, snapshot.tenant(tenant), options)
        await apply_plan(runner, plan)
        ledger_exists = True
    return runner.statements


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def run(sizes: list[int], repeat: int, progress: bool) -> list[SizeResult]:
    double = RisingWaveDouble().start()
    relay = CountingRelay(double.host, double.port)
    results: list[SizeResult] = []
    try:
        relay_port = await relay.start()
        one_connection = ClientOptions(pool_min=1, pool_max=1)
        direct = RisingWaveClient(Endpoint.from_dsn(double.dsn), one_connection)
        counted = RisingWaveClient(
            Endpoint(host="127.0.0.1", port=relay_port, database="dev", sslmode="disable"),
            one_connection,
        )
        async with direct, counted:
            have = 0
            for size in sizes:
                names = [f"t{n:04d}" for n in range(have, size)]
                t = time.perf_counter()
                statements = await populate(direct, names)
                populate_s = time.perf_counter() - t
                have = size

                snapshot = await direct.snapshot()
                assert sum(1 for tn in snapshot.owners if tn.startswith("t")) == size
                sample = f"t{size - 1:04d}"
                desired = render(tenant_spec(sample), RenderOptions(secret_store="inline"))
                noop = build_plan(desired, snapshot.tenant(sample), PlanOptions(owner=owner_of(sample)))
                assert noop.empty, noop.summary()  # populated exactly as the operator leaves it

                gc.collect()  # garbage from populating; not part of any snapshot()
                times: list[float] = []
                with BuildTimer() as build:
                    for _ in range(repeat):
                        t = time.perf_counter()
                        await direct.snapshot()
                        times.append(time.perf_counter() - t)

                await counted.snapshot()  # connection established and configured
                up, down = relay.to_server, relay.to_client
                await counted.snapshot()
                bytes_up, bytes_down = relay.to_server - up, relay.to_client - down

                del snapshot
                gc.collect()
                tracemalloc.start()
                snapshot = await direct.snapshot()
                gc.collect()
                kept, _ = tracemalloc.get_traced_memory()
                snapshot.tenant(sample)  # builds the per-tenant index
                with_index, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()

                result = SizeResult(
                    tenants=size,
                    populate_s=round(populate_s, 1),
                    new_tenants=len(names),
                    statements=statements,
                    objects=len(snapshot.objects),
                    ledger_rows=len(snapshot.ledger),
                    min_ms=round(min(times) * 1000, 2),
                    median_ms=round(statistics.median(times) * 1000, 2),
                    p95_ms=round(p95(times) * 1000, 2),
                    build_ms=round(statistics.median(build.seconds) * 1000, 2),
                    bytes_to_client=bytes_down,
                    bytes_to_server=bytes_up,
                    snapshot_kib=round(kept / 1024, 1),
                    index_kib=round((with_index - kept) / 1024, 1),
                )
                results.append(result)
                del snapshot
                if progress:
                    print(
                        f"  ... {size} tenants: populated {len(names)} in {populate_s:.1f}s, "
                        f"snapshot {result.median_ms} ms",
                        file=sys.stderr,
                    )
    finally:
        await relay.stop()
        await asyncio.sleep(0.2)  # let the double's connection handlers see the closes
        double.stop()
    return results


def print_table(results: list[SizeResult]) -> None:
    print(NOT_RISINGWAVE)
    print()
    header = (
        f"{'tenants':>7} {'objects':>8} {'ledger':>7} {'ms min':>7} {'ms med':>7} {'ms p95':>7} "
        f"{'build ms':>8} {'snap/s':>7} {'KiB rx':>8} {'B tx':>6} {'B/tenant':>9} "
        f"{'heap KiB':>9} {'index KiB':>9} {'N x snap s':>10}  populate"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        per_second = 1000 / r.median_ms if r.median_ms else float("inf")
        per_tenant = r.bytes_to_client / r.tenants
        unshared = r.tenants * r.median_ms / 1000
        populate = (
            f"+{r.new_tenants} tenants, {r.statements} stmts in {r.populate_s:.1f}s "
            f"({r.populate_s * 1000 / max(1, r.new_tenants):.0f} ms/tenant)"
        )
        print(
            f"{r.tenants:>7} {r.objects:>8} {r.ledger_rows:>7} "
            f"{r.min_ms:>7,.1f} {r.median_ms:>7,.1f} {r.p95_ms:>7,.1f} "
            f"{r.build_ms:>8,.2f} {per_second:>7,.1f} {r.bytes_to_client / 1024:>8,.1f} "
            f"{r.bytes_to_server:>6,} {per_tenant:>9,.0f} "
            f"{r.snapshot_kib:>9,.1f} {r.index_kib:>9,.1f} {unshared:>10,.2f}  {populate}"
        )
    print()
    print("ms min/med/p95: snapshot() latency over the timed calls.")
    print("build ms: of the snapshot time, the client's rows -> CatalogSnapshot step, median.")
    print("KiB rx / B tx: bytes server->client / client->server for one snapshot() (6 catalog reads).")
    print("heap KiB: traced Python memory held by the CatalogSnapshot; index KiB: its per-tenant index.")
    print("N x snap s: a timer pass if every tenant read its own snapshot (the service shares one).")
    print(NOT_RISINGWAVE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10,100,300", help="tenant counts (comma-separated, cumulative)")
    parser.add_argument("--repeat", type=int, default=15, help="snapshot() calls timed per size")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        results = asyncio.run(run(sizes, args.repeat, progress=True))
    wall = round(time.perf_counter() - started, 1)
    if args.json:
        print(
            json.dumps(
                {
                    "note": NOT_RISINGWAVE,
                    "python": platform.python_version(),
                    "wall_s": wall,
                    "results": [r.as_dict() for r in results],
                }
            )
        )
        return 0
    print(f"snapshot benchmark (python {platform.python_version()}), {wall}s wall")
    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
