"""Throughput, record size and peak memory of the pure OCPP event generator (no Kafka).

    python3 benchmarks/bench_simulator.py [--events 200000] [--stations 100] [--seed 1] [--json]

Three passes over the same seeded stream:

1. generate only (validated ``OcppEvent`` objects)      -> events/s
2. generate + ``to_json_bytes()`` (what is produced)    -> events/s, bytes/event
3. pass 2 again under ``tracemalloc``                   -> peak traced memory (streaming, so it
   stays flat in the number of events; tracemalloc slows this pass, so it is not timed)
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from typing import Any

from charging_analytics.simulator.simulate import SimulationConfig, generate_events


def bench(events: int, stations: int, seed: int) -> dict[str, Any]:
    config = SimulationConfig(
        seed=seed, stations=stations, start_time=datetime(2025, 3, 1, tzinfo=UTC), max_events=events
    )

    t = time.perf_counter()
    count = sum(1 for _ in generate_events(config))
    generate_s = time.perf_counter() - t
    assert count == events, count

    t = time.perf_counter()
    total_bytes = 0
    for event in generate_events(config):
        total_bytes += len(event.to_json_bytes())
    serialize_s = time.perf_counter() - t

    tracemalloc.start()
    for event in generate_events(config):
        event.to_json_bytes()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "events": events,
        "stations": stations,
        "seed": seed,
        "python": platform.python_version(),
        "generate_events_per_s": round(events / generate_s),
        "generate_and_serialize_events_per_s": round(events / serialize_s),
        "bytes_per_event": round(total_bytes / events, 1),
        "peak_traced_memory_mib": round(peak / 2**20, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = bench(args.events, args.stations, args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"simulator benchmark: {result['events']} events, {result['stations']} stations, seed {args.seed}")
    print(f"  generate            {result['generate_events_per_s']:>10,} events/s")
    print(f"  generate + to_json  {result['generate_and_serialize_events_per_s']:>10,} events/s")
    print(f"  record size         {result['bytes_per_event']:>10} bytes/event")
    print(f"  peak memory         {result['peak_traced_memory_mib']:>10} MiB (tracemalloc, streaming)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
