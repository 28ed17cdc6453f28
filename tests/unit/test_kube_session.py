"""``ApiSession``'s retries (a throttled answer, a refused login), against a local HTTP server:
the error it raises is the last answer the API server gave."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import kopf
import pytest
from aiohttp import web

from charging_analytics.operator.kube import THROTTLED_ATTEMPTS, ApiSession, KubeError

PATH = "/api/v1/namespaces/tenants"


async def _serve(
    answers: Sequence[int],
) -> tuple[web.AppRunner, Callable[[], kopf.ConnectionInfo], list[str], list[int]]:
    """Answers each request with the next status of ``answers`` (200 with a body once they end)."""
    logins: list[str] = []
    seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        status = answers[len(seen)] if len(seen) < len(answers) else 200
        seen.append(status)
        if status == 200:
            return web.json_response({"metadata": {"name": "tenants"}})
        return web.Response(status=status, headers={"Retry-After": "0"})

    app = web.Application()
    app.router.add_get(PATH, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    def login() -> kopf.ConnectionInfo:
        logins.append("login")
        return kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}")

    return runner, login, logins, seen


def _get(answers: Sequence[int]) -> tuple[Any, int, list[int]]:
    """The result (or the KubeError) of one GET, how many logins it took, and what was answered."""

    async def run() -> tuple[Any, int, list[int]]:
        runner, login, logins, seen = await _serve(answers)
        api = ApiSession(login)
        try:
            try:
                result: Any = await api.get(PATH)
            except KubeError as err:
                result = err
            return result, len(logins), seen
        finally:
            await api.close()
            await runner.cleanup()

    return asyncio.run(run())


def test_a_request_throttled_at_every_attempt_fails_as_throttled() -> None:
    result, _, seen = _get([429] * (THROTTLED_ATTEMPTS + 2))
    assert isinstance(result, KubeError)
    assert (result.status, result.reason) == (429, "Too Many Requests")
    assert seen == [429] * THROTTLED_ATTEMPTS


def test_a_refused_login_after_throttled_answers_logs_in_again_and_repeats_the_request() -> None:
    result, logins, seen = _get([429] * (THROTTLED_ATTEMPTS - 1) + [401])
    assert result == {"metadata": {"name": "tenants"}}
    assert logins == 2
    assert seen == [429] * (THROTTLED_ATTEMPTS - 1) + [401, 200]


@pytest.mark.parametrize("last", [401, 403, 429])
def test_the_error_is_the_last_answer_after_logging_in_again(last: int) -> None:
    result, logins, seen = _get([401, last] + [last] * THROTTLED_ATTEMPTS)
    assert isinstance(result, KubeError)
    assert result.status == last
    assert logins == 2
    assert seen[-1] == last
    assert len(seen) == (1 + THROTTLED_ATTEMPTS if last == 429 else 2)
