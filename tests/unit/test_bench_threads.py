"""The fleet benchmark's CPU by thread: read per thread from ``/proc``, grouped by thread name,
and what threads that exited used is the rest of the process's CPU."""

from __future__ import annotations

import os
import threading
from types import ModuleType

from tests.unit.benchmark_modules import load_benchmark


def _bench() -> ModuleType:
    return load_benchmark("bench_burst")


def test_threads_are_grouped_by_name_without_their_number_and_exited_ones_are_the_rest() -> None:
    bench = _bench()
    before = {1: ("main", 1.0), 2: ("asyncio_0", 0.5), 3: ("rdk:broker1", 0.0), 9: ("gone", 2.0)}
    after = {1: ("main", 3.0), 2: ("asyncio_0", 1.0), 3: ("rdk:broker1", 0.25), 4: ("asyncio_1", 0.5)}
    by_kind = bench.cpu_by_thread_kind(before, after, total=4.0)
    assert by_kind == {"main": 2.0, "asyncio_": 1.0, "(threads that exited)": 0.75, "rdk:broker": 0.25}
    assert list(by_kind) == ["main", "asyncio_", "(threads that exited)", "rdk:broker"]  # largest first


def test_this_process_lists_its_main_thread_and_a_named_thread() -> None:
    bench = _bench()
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        threads = bench.thread_cpu_seconds(os.getpid())
    finally:
        stop.set()
        worker.join()
    assert threads[os.getpid()][0] == "main"
    assert worker.native_id in threads
    assert all(cpu >= 0 for _, cpu in threads.values())
