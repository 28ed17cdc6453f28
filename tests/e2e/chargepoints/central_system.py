"""A minimal OCPP central system for the charge-point tests, built on the ``ocpp`` library.

It serves ``/ocpp/<tenant>/<station id>`` with the ``ocpp2.0.1`` and ``ocpp1.6`` subprotocols
(no subprotocol: refused), checks HTTP Basic credentials, validates every message against the
OCPP JSON schemas (the library's default), assigns 1.6 transaction ids, and records every call
it receives, per station, in arrival order.  ``reject`` makes it answer chosen actions with a
CallError, to exercise the charge points' retries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as CentralSystem16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as CentralSystem201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

NOW = "2025-03-01T00:00:00.000Z"


@dataclass(frozen=True)
class Received:
    station_id: str
    version: str
    action: str
    payload: dict[str, Any]  # snake_case, as the handler received it
    connection: int


@dataclass
class Recorder:
    calls: list[Received] = field(default_factory=list)
    reject: dict[str, int] = field(default_factory=dict)  # action -> how many more to refuse
    connections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    tx_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    refused: list[tuple[str, int]] = field(default_factory=list)
    get_base_report: bool = False

    def by_station(self) -> dict[str, list[Received]]:
        grouped: dict[str, list[Received]] = defaultdict(list)
        for item in self.calls:
            grouped[item.station_id].append(item)
        return dict(grouped)

    def actions(self, station_id: str) -> list[str]:
        return [c.action for c in self.calls if c.station_id == station_id]


def _recorder_handlers(version: str, actions: Mapping[str, Any]) -> dict[str, Any]:
    """``@on`` handlers that record the call (and maybe refuse it) before answering."""
    handlers: dict[str, Any] = {}
    for action, answer in actions.items():

        def handler(self: Any, _action: str = action, _answer: Any = answer, **payload: Any) -> Any:
            left = self.recorder.reject.get(_action, 0)
            if left:
                self.recorder.reject[_action] = left - 1
                raise InternalError(description="refused by the test central system")
            self.recorder.calls.append(Received(self.id, version, _action, payload, self.connection_no))
            return _answer(self, payload)

        # The library finds handlers by function name: each needs its own.
        handler.__name__ = handler.__qualname__ = f"on_{action.lower()}"
        handlers[handler.__name__] = on(action)(handler)
    return handlers


_ANSWERS_16: dict[str, Any] = {
    "BootNotification": lambda cs, p: result16.BootNotification(
        current_time=NOW, interval=300, status="Accepted"
    ),
    "Heartbeat": lambda cs, p: result16.Heartbeat(current_time=NOW),
    "StatusNotification": lambda cs, p: result16.StatusNotification(),
    "Authorize": lambda cs, p: result16.Authorize(id_tag_info={"status": "Accepted"}),
    "StartTransaction": lambda cs, p: result16.StartTransaction(
        transaction_id=next(cs.recorder.tx_ids), id_tag_info={"status": "Accepted"}
    ),
    "MeterValues": lambda cs, p: result16.MeterValues(),
    "StopTransaction": lambda cs, p: result16.StopTransaction(),
}
_ANSWERS_201: dict[str, Any] = {
    "BootNotification": lambda cs, p: result201.BootNotification(
        current_time=NOW, interval=300, status="Accepted"
    ),
    "Heartbeat": lambda cs, p: result201.Heartbeat(current_time=NOW),
    "StatusNotification": lambda cs, p: result201.StatusNotification(),
    "TransactionEvent": lambda cs, p: result201.TransactionEvent(),
    "MeterValues": lambda cs, p: result201.MeterValues(),
    "NotifyReport": lambda cs, p: result201.NotifyReport(),
}

Station16 = type("Station16", (CentralSystem16,), _recorder_handlers("1.6", _ANSWERS_16))
Station201 = type("Station201", (CentralSystem201,), _recorder_handlers("2.0.1", _ANSWERS_201))


class CentralSystem:
    """Serve on 127.0.0.1 (random port); ``url`` is the ``ws://`` base the charge points use."""

    def __init__(self, tenant: str, passwords: Mapping[str, str], recorder: Recorder | None = None) -> None:
        self.tenant = tenant
        self.passwords = dict(passwords)
        self.recorder = recorder or Recorder()
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"ws://{host}:{port}"

    def _refuse(self, path: str, status: http.HTTPStatus) -> Response:
        self.recorder.refused.append((path, status.value))
        return Response(status.value, status.phrase, Headers(), b"")

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = request.path.split("/")
        if len(parts) != 4 or parts[1] != "ocpp" or parts[2] != self.tenant:
            return self._refuse(request.path, http.HTTPStatus.NOT_FOUND)
        expected = self.passwords.get(parts[3])
        header = request.headers.get("Authorization", "")
        token = base64.b64encode(f"{parts[3]}:{expected}".encode()).decode()
        if expected is None or header != f"Basic {token}":
            return self._refuse(request.path, http.HTTPStatus.UNAUTHORIZED)
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        if ws.subprotocol is None:
            await ws.close(1002, "no OCPP subprotocol")
            return
        station_id = (ws.request.path if ws.request else "").rsplit("/", 1)[-1]
        cls = Station16 if ws.subprotocol == "ocpp1.6" else Station201
        cs = cls(station_id, ws)
        cs.recorder = self.recorder
        self.recorder.connections[station_id] += 1
        cs.connection_no = self.recorder.connections[station_id]
        tasks = [asyncio.create_task(cs.start())]
        if self.recorder.get_base_report and ws.subprotocol == "ocpp2.0.1":
            tasks.append(
                asyncio.create_task(cs.call(call201.GetBaseReport(request_id=7, report_base="FullInventory")))
            )
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CentralSystem]:
        async with serve(
            self._handler,
            "127.0.0.1",
            0,
            subprotocols=["ocpp2.0.1", "ocpp1.6"],  # type: ignore[list-item]
            process_request=self._check,
        ) as server:
            self.server = server
            yield self


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
