"""The drift daemon's wait between passes: it ends when Kopf stops the daemon or when the time
runs out, and leaves no task that ended with an error. At exit Kopf re-raises the error of every
task still around, so such a task would make a clean shutdown exit with a failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import kopf
from kopf._cogs.aiokits.aioenums import AsyncFlagWaiter, FlagSetter

from charging_analytics.operator.main import stopped_within

T = TypeVar("T")


def _run_recording_tasks(body: Callable[[], Awaitable[T]]) -> tuple[T, list[asyncio.Task[Any]]]:
    """Run ``body`` in a fresh loop; every task created while it runs, all finished by its end."""
    tasks: list[asyncio.Task[Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any], **kw: Any
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kw)
        tasks.append(task)
        return task

    async def main() -> T:
        asyncio.get_running_loop().set_task_factory(factory)  # type: ignore[arg-type]
        result = await body()
        await asyncio.sleep(0.05)  # whatever the wait left behind gets to finish
        return result

    result = asyncio.run(main())
    return result, tasks


def _errors(tasks: list[asyncio.Task[Any]]) -> list[BaseException]:
    assert tasks
    assert all(t.done() for t in tasks)
    return [err for t in tasks if not t.cancelled() and (err := t.exception()) is not None]


def _stopper() -> tuple[FlagSetter[Any], kopf.DaemonStopped]:
    """Kopf's own stopper and the ``stopped`` flag it hands a daemon."""
    setter: FlagSetter[Any] = FlagSetter()
    return setter, AsyncFlagWaiter(setter)


def test_a_wait_that_runs_out_says_not_stopped_and_leaves_no_failed_task() -> None:
    _, stopped = _stopper()
    result, tasks = _run_recording_tasks(lambda: stopped_within(stopped, 0.02))
    assert result is False
    assert _errors(tasks) == []


def test_a_stop_during_the_wait_ends_it_at_once_and_leaves_no_failed_task() -> None:
    setter, stopped = _stopper()

    async def body() -> tuple[bool, float]:
        asyncio.get_running_loop().call_later(0.02, setter.set)
        start = time.monotonic()
        return await stopped_within(stopped, 30), time.monotonic() - start

    (result, waited), tasks = _run_recording_tasks(body)
    assert result is True
    assert waited < 10  # the stop, not the 30 s, ended the wait
    assert _errors(tasks) == []


def test_a_daemon_already_stopped_does_not_wait() -> None:
    setter, stopped = _stopper()

    async def body() -> bool:
        setter.set()
        return await stopped_within(stopped, 30)

    result, _ = _run_recording_tasks(body)
    assert result is True
