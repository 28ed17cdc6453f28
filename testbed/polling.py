"""Waiting for a condition: the one polling helper of the tests, the test bed, the scripts and the
benchmarks.

A wait polls a predicate until it returns something truthy, which it returns; when time runs out
it raises :class:`WaitTimeout` naming what it waited for and the last value (and error) seen. How
it polls is a :class:`Poll`: the default suits a test watching the system under test (errors
propagate: a failing predicate is a failing test); :data:`STARTUP` suits a service coming up
(refused connections are "not yet", the interval grows).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from .tools import InfraError

T = TypeVar("T")


class WaitTimeout(InfraError, AssertionError):
    """A wait ran out of time: a failed assertion to a test, an :class:`InfraError` to the test bed."""


@dataclass(frozen=True)
class Poll:
    interval: float = 0.25
    #: each attempt waits half as long again as the one before, up to this (``None``: no growth)
    max_interval: float | None = None
    #: exceptions of these types from the predicate count as "not yet"
    retry_on: tuple[type[Exception], ...] = ()

    def starting_every(self, interval: float) -> Poll:
        return replace(self, interval=interval)


#: A service starting up: errors are "not yet", polled from 0.1 s up to once a second.
STARTUP = Poll(interval=0.1, max_interval=1.0, retry_on=(Exception,))


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    poll: Poll = Poll(),
    check: Callable[[], None] | None = None,
) -> T:
    """``predicate()``'s first truthy value within ``timeout`` seconds.

    ``check`` runs before every attempt and raises to abort early (e.g. the process died).
    """
    deadline = time.monotonic() + timeout
    interval = poll.interval
    last: T | None = None
    error: Exception | None = None
    while True:
        if check is not None:
            check()
        try:
            last = predicate()
            if last:
                return last
        except poll.retry_on as exc:
            error = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(_timed_out(timeout, what, last, error))
        time.sleep(interval)
        if poll.max_interval is not None:
            interval = min(interval * 1.5, poll.max_interval)


async def wait_for_async(
    predicate: Callable[[], T | Awaitable[T | None] | None],
    within: float,
    what: str,
    interval: float = 0.1,
    *,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`wait_for` on an event loop: ``predicate`` runs on it (a coroutine's result is
    awaited), between sleeps that yield to it; exceptions of ``retry_on`` count as "not yet"."""
    deadline = time.monotonic() + within
    last: T | None = None
    error: Exception | None = None
    while True:
        try:
            answer = predicate()
            last = await answer if inspect.isawaitable(answer) else answer
            if last:
                return last
        except retry_on as exc:
            error = exc
        if time.monotonic() >= deadline:
            raise WaitTimeout(_timed_out(within, what, last, error))
        await asyncio.sleep(interval)


def _timed_out(timeout: float, what: str, last: object, error: Exception | None) -> str:
    detail = f" (last error: {error!r})" if error is not None else ""
    return f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r}){detail}"
