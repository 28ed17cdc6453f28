"""The OCPP central-system endpoint: WebSocket handshake checks, OCPP 1.6J and 2.0.1 handlers,
acknowledged publication to the tenant's events topic, graceful shutdown, metrics.

Message handling and schema validation are the ``ocpp`` library's; transport is ``websockets``.
A station is identified by the URL ``/ocpp/<tenant>/<station_id>`` (matched on the raw path: no
percent-decoding, no normalisation) *and* by HTTP Basic credentials whose user name is that
station id and whose password is the one in that tenant's credentials, so no path can reach
another tenant's topic.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hmac
import json
import logging
import re
import ssl
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final, TypeVar, cast

from ocpp.exceptions import (
    InternalError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
)
from ocpp.exceptions import (
    NotImplementedError as OcppNotImplementedError,
)
from ocpp.messages import CallError, MessageType, unpack
from ocpp.routing import on as _on
from ocpp.v16 import ChargePoint as V16ChargePoint
from ocpp.v16 import call_result as v16_result
from ocpp.v16.enums import Action as V16Action
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as V201ChargePoint
from ocpp.v201 import call_result as v201_result
from ocpp.v201.enums import Action as V201Action
from ocpp.v201.enums import AuthorizationStatusEnumType, RegistrationStatusEnumType
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..events import OcppEvent, format_timestamp
from ..spec import STATION_ID_PATTERN, TENANT_PATTERN
from . import mapping, schemas
from .config import GatewayConfig, Station, Tenant
from .delivery import DeliveryError, Publisher, producer_config
from .state import StateStore, StateUnavailable

_log = logging.getLogger("charging_analytics.gateway")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def on(action: str) -> Callable[[F], F]:
    """The ``ocpp`` library's handler decorator, typed (the library ships no type hints).

    The library's own schema validation is off: :meth:`_Session.route_frame` validates each
    call with the compiled schemas of :mod:`.schemas` (the library's schemas and errors). The
    results are the handlers' fixed ``call_result`` shapes.
    """
    return cast(Callable[[F], F], _on(action, skip_schema_validation=True))


SUBPROTOCOLS: Final = ("ocpp2.0.1", "ocpp1.6")
_PATH_RE: Final = re.compile(f"/ocpp/({TENANT_PATTERN[1:-1]})/({STATION_ID_PATTERN[1:-1]})")


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.connected = Gauge(
            "ocpp_gateway_connected_stations", "Stations connected now", ["tenant"], registry=r
        )
        self.messages = Counter(
            "ocpp_gateway_messages", "OCPP calls received", ["action", "version"], registry=r
        )
        self.call_errors = Counter(
            "ocpp_gateway_call_errors", "CallErrors sent", ["code", "version"], registry=r
        )
        self.rejected = Counter(
            "ocpp_gateway_rejected_handshakes", "Refused WebSocket handshakes", ["reason"], registry=r
        )
        self.published = Counter(
            "ocpp_gateway_events_published",
            "Events acknowledged by Kafka",
            ["tenant", "event_type"],
            registry=r,
        )
        self.produce_latency = Histogram(
            "ocpp_gateway_kafka_produce_seconds",
            "Kafka produce round trip (until acknowledged or failed)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.produce_errors = Counter(
            "ocpp_gateway_kafka_produce_errors", "Kafka records not acknowledged", registry=r
        )
        self.unmatched = Counter(
            "ocpp_gateway_unmatched_transactions",
            "StopTransactions answered but not published: no transaction could be found for them",
            ["version"],
            registry=r,
        )
        self.frames_dropped = Counter(
            "ocpp_gateway_frames_dropped",
            "Frames that could not be answered (no message id)",
            ["version"],
            registry=r,
        )

    def observe_produce(self, seconds: float, ok: bool) -> None:
        self.produce_latency.observe(seconds)
        if not ok:
            self.produce_errors.inc()


# --------------------------------------------------------------------------------------------
# Handshake
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    tenant: Tenant
    station: Station
    version: str  # negotiated subprotocol


class Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str, text: str) -> None:
        super().__init__(text)
        self.status, self.reason, self.text = status, reason, text


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def authenticate(config: GatewayConfig, request: Request) -> Identity:
    """The station a handshake is for, or :class:`Refused` with the HTTP status and reason."""
    match = _PATH_RE.fullmatch(request.path)
    if match is None:
        raise Refused(HTTPStatus.NOT_FOUND, "bad_path", "not an OCPP endpoint: /ocpp/<tenant>/<station_id>")
    tenant_name, station_id = match.groups()
    offered = [p.strip() for h in request.headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",")]
    version = next((p for p in SUBPROTOCOLS if p in offered), None)
    if version is None:
        raise Refused(HTTPStatus.BAD_REQUEST, "no_subprotocol", "offer subprotocol ocpp2.0.1 or ocpp1.6")
    found = config.station(tenant_name, station_id)
    if found is None:
        reason = "unknown_tenant" if tenant_name not in config.tenants else "unknown_station"
        raise Refused(HTTPStatus.NOT_FOUND, reason, "unknown tenant or station")
    tenant, station = found
    credentials = _basic_credentials(request.headers)
    if credentials is None:
        raise Refused(HTTPStatus.UNAUTHORIZED, "no_credentials", "HTTP Basic credentials required")
    user, password = credentials
    # Both comparisons always run, so the timing does not tell which part was wrong.
    user_ok = hmac.compare_digest(user.encode(), station.id.encode())
    password_ok = hmac.compare_digest(password.encode(), station.password.encode())
    if not (user_ok and password_ok):
        raise Refused(HTTPStatus.UNAUTHORIZED, "bad_credentials", "wrong station id or password")
    return Identity(tenant, station, version)


# --------------------------------------------------------------------------------------------
# OCPP sessions
# --------------------------------------------------------------------------------------------

#: 1.6 spells some error codes differently from 2.0.1 (and the ``ocpp`` library uses 2.0.1's).
_V16_CODES: Final[Mapping[str, str]] = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "RpcFrameworkError": "ProtocolError",
    "MessageTypeNotSupported": "ProtocolError",
}


def _message_id(raw: str | bytes) -> str | None:
    """The message id of a frame that did not unpack, if it can be read at all."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and len(data) > 1 and isinstance(data[1], str) and data[1]:
        return data[1]
    return None


class _Session:
    """What both protocol versions share: the connection's identity, publication, errors."""

    gateway: Gateway
    identity: Identity
    ctx: mapping.StationContext
    version: str
    actions: frozenset[str]
    _connection: Any

    def _init_session(self, gateway: Gateway, identity: Identity) -> None:
        self.gateway, self.identity = gateway, identity
        self.ctx = mapping.StationContext(
            identity.tenant.tenant, identity.station.id, identity.station.connector_types
        )

    def reidentify(self, tenant: Tenant, station: Station) -> None:
        """The tenant's settings changed (topic, Kafka, registry) but still serve this station
        with the same password: continue with the new ones."""
        self.identity = Identity(tenant, station, self.identity.version)
        self.ctx = mapping.StationContext(
            tenant.tenant, station.id, station.connector_types, self.ctx.reported
        )

    async def publish(self, events: list[OcppEvent]) -> None:
        await self.gateway.publish(self.identity.tenant, events)

    async def _reply_error(self, unique_id: str, error: OCPPError) -> None:
        code = error.code if self.version != "1.6" else _V16_CODES.get(error.code, error.code)
        cause = error.details.get("cause") if isinstance(error.details, dict) else None
        details = {"cause": str(cause)} if cause else {}
        self.gateway.metrics.call_errors.labels(code, self.version).inc()
        await self._connection.send(CallError(unique_id, code, error.description, details).to_json())

    async def route_frame(self, raw: str | bytes) -> None:
        try:
            msg = unpack(raw)
        except OCPPError as error:
            unique_id = _message_id(raw)
            if unique_id is None and self.version != "1.6":
                # OCPP 2.0.1 part 4 §4.2.3: an unreadable message id is answered as "-1".
                unique_id = "-1"
                error = _RpcFrameworkError(details=error.details)
            if unique_id is None:
                self.gateway.metrics.frames_dropped.labels(self.version).inc()
                _log.warning("unreadable frame dropped", extra=self._log_fields())
                return
            await self._reply_error(unique_id, error)
            return
        if msg.message_type_id != MessageType.Call:
            return  # the gateway sends no calls, so there is nothing to correlate
        self.gateway.metrics.messages.labels(msg.action, self.version).inc()
        if msg.action not in self.route_map:  # type: ignore[attr-defined]
            # "NotImplemented: Requested Action is not known by receiver"; "NotSupported:
            # Requested Action is recognized but not supported by the receiver" (both versions).
            unknown: OCPPError = (
                NotSupportedError(details={"cause": f"{msg.action} is not supported"})
                if msg.action in self.actions
                else OcppNotImplementedError(details={"cause": f"{msg.action} is not an OCPP action"})
            )
            await self._reply_error(msg.unique_id, unknown)
            return
        try:
            await schemas.validate_call(msg, self.version)
            await self._handle_call(msg)  # type: ignore[attr-defined]
        except OCPPError as error:
            await self._reply_error(msg.unique_id, error)

    async def serve(self) -> None:
        while True:
            raw = await self._connection.recv()
            async with self.gateway.in_flight():
                await self.route_frame(raw)

    def _log_fields(self) -> dict[str, str]:
        return {"tenant": self.ctx.tenant, "station": self.ctx.station_id, "ocpp": self.version}


class _RpcFrameworkError(OCPPError):  # type: ignore[misc]
    code = "RpcFrameworkError"
    default_description = "Content of the call is not a valid RPC request"


async def _guard(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work``, mapping the gateway's own failures onto OCPP CallErrors (the library sends
    them): a message that cannot be mapped, or an event store that did not acknowledge."""
    try:
        return await work()
    except mapping.MappingError as err:
        raise PropertyConstraintViolationError(details={"cause": str(err)}) from err
    except (DeliveryError, TimeoutError) as err:
        raise InternalError(details={"cause": "event store unavailable, retry later"}) from err


def _now() -> datetime:
    return datetime.now(UTC)


class V16Session(_Session, V16ChargePoint):  # type: ignore[misc]
    version = "1.6"
    actions = frozenset(a.value for a in V16Action)

    def __init__(self, gateway: Gateway, identity: Identity, connection: ServerConnection) -> None:
        V16ChargePoint.__init__(self, identity.station.id, connection, logger=_ocpp_log)
        self._init_session(gateway, identity)

    @on(V16Action.boot_notification)
    async def on_boot(self, **_: Any) -> v16_result.BootNotification:
        return v16_result.BootNotification(
            current_time=format_timestamp(_now()),
            interval=self.gateway.config.heartbeat_interval,
            status=RegistrationStatus.accepted,
        )

    @on(V16Action.heartbeat)
    async def on_heartbeat(self) -> v16_result.Heartbeat:
        return v16_result.Heartbeat(current_time=format_timestamp(_now()))

    @on(V16Action.authorize)
    async def on_authorize(self, id_tag: str) -> v16_result.Authorize:
        return v16_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(V16Action.status_notification)
    async def on_status(self, **payload: Any) -> v16_result.StatusNotification:
        await _guard(lambda: self.publish(mapping.v16_status(self.ctx, payload, _now())))
        return v16_result.StatusNotification()

    @on(V16Action.start_transaction)
    async def on_start(self, **payload: Any) -> v16_result.StartTransaction:
        async def work() -> int:
            transaction, event = mapping.v16_start(self.ctx, payload, _now())
            state = self._transactions()
            new_state = mapping.v16_started(state, transaction, event, payload.get("id_tag"))
            await self._publish_and_store([event], state, new_state)
            return transaction

        transaction = await _guard(work)
        return v16_result.StartTransaction(
            transaction_id=transaction, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(V16Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> v16_result.MeterValues:
        async def work() -> None:
            state = self._transactions()
            events, new_state = mapping.v16_meter_values_tracked(self.ctx, payload, state, _now())
            made_up = any(e.event_type == "StartTransaction" for e in events)
            await self._publish_and_store(events, state, new_state, made_up_start=made_up)

        await _guard(work)
        return v16_result.MeterValues()

    @on(V16Action.stop_transaction)
    async def on_stop(self, **payload: Any) -> v16_result.StopTransaction:
        async def work() -> None:
            state = self._transactions()
            events, new_state = mapping.v16_stop_tracked(self.ctx, payload, state, _now())
            if not events:
                # Answered all the same: refusing would hold the charger's queue forever.
                self.gateway.metrics.unmatched.labels(self.version).inc()
                _log.warning(
                    "StopTransaction of an unknown transaction not published",
                    extra={**self._log_fields(), "transaction_id": payload.get("transaction_id")},
                )
            made_up = any(e.event_type == "StartTransaction" for e in events)
            await self._publish_and_store(events, state, new_state, made_up_start=made_up)

        await _guard(work)
        return v16_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    def _key(self) -> str:
        return f"{self.ctx.tenant}/{self.ctx.station_id}/v16/transactions"

    def _transactions(self) -> mapping.Station16:
        return mapping.Station16.from_json(self.gateway.state.get(self._key()))

    async def _publish_and_store(
        self,
        events: list[OcppEvent],
        old: mapping.Station16,
        new: mapping.Station16,
        *,
        made_up_start: bool = False,
    ) -> None:
        """Publish, and store the station's new transactions, both acknowledged before the reply.

        Both at once (one Kafka round trip) when a retry after a half failure maps to the same
        events again: the stored state then names the same transaction (the start's id is
        derived from its content; a stop is found again by its timestamp). A start the gateway
        made up for a transaction whose StartTransaction never arrived is the exception: once
        stored, the retry would find the transaction open and not make the start again, so its
        events go first, as for 2.0.1.
        """
        if new == old:
            await self.publish(events)
            return
        write = self.gateway.state.put(self._key(), new.to_json())
        if made_up_start:
            await self.publish(events)
            await write
        else:
            await asyncio.gather(self.publish(events), write)


class V201Session(_Session, V201ChargePoint):  # type: ignore[misc]
    version = "2.0.1"
    actions = frozenset(a.value for a in V201Action)

    def __init__(self, gateway: Gateway, identity: Identity, connection: ServerConnection) -> None:
        V201ChargePoint.__init__(self, identity.station.id, connection, logger=_ocpp_log)
        self._init_session(gateway, identity)

    def _key(self, kind: str, ident: str) -> str:
        return f"{self.ctx.tenant}/{self.ctx.station_id}/{kind}/{ident}"

    def load_reported_types(self) -> None:
        stored = self.gateway.state.get(self._key("connector-types", "all")) or {}
        reported = {(int(e), int(c)): kind for key, kind in stored.items() for e, c in [key.split("/")]}
        self.ctx = mapping.StationContext(self.ctx.tenant, self.ctx.station_id, self.ctx.registry, reported)

    @on(V201Action.boot_notification)
    async def on_boot(self, **_: Any) -> v201_result.BootNotification:
        return v201_result.BootNotification(
            current_time=format_timestamp(_now()),
            interval=self.gateway.config.heartbeat_interval,
            status=RegistrationStatusEnumType.accepted,
        )

    @on(V201Action.heartbeat)
    async def on_heartbeat(self) -> v201_result.Heartbeat:
        return v201_result.Heartbeat(current_time=format_timestamp(_now()))

    @on(V201Action.authorize)
    async def on_authorize(self, **_: Any) -> v201_result.Authorize:
        return v201_result.Authorize(id_token_info={"status": AuthorizationStatusEnumType.accepted})

    @on(V201Action.status_notification)
    async def on_status(self, **payload: Any) -> v201_result.StatusNotification:
        await _guard(lambda: self.publish(mapping.v201_status(self.ctx, payload, _now())))
        return v201_result.StatusNotification()

    @on(V201Action.meter_values)
    async def on_meter_values(self, **_: Any) -> v201_result.MeterValues:
        # Readings outside TransactionEvent belong to no transaction, so to no session.
        return v201_result.MeterValues()

    @on(V201Action.transaction_event)
    async def on_transaction_event(self, **payload: Any) -> v201_result.TransactionEvent:
        async def work() -> None:
            key = self._key("tx", str(payload["transaction_info"]["transaction_id"]))
            stored = self.gateway.state.get(key)
            state = None if stored is None else mapping.Transaction201.from_json(stored)
            events, new_state = mapping.v201_transaction_event(self.ctx, payload, state, _now())
            # Events first: if the state write then fails, the charger's retry is mapped from the
            # old state again and yields the same events with the same ids (idempotent). The
            # other order could record "start published" for a start that never was.
            await self.publish(events)
            if new_state != state:
                await self.gateway.state.put(key, new_state.to_json())

        await _guard(work)
        return v201_result.TransactionEvent()

    @on(V201Action.notify_report)
    async def on_notify_report(self, **payload: Any) -> v201_result.NotifyReport:
        async def work() -> None:
            reported = mapping.v201_reported_connector_types(payload)
            if not reported:
                return
            merged = {**(self.ctx.reported or {}), **reported}
            await self.gateway.state.put(
                self._key("connector-types", "all"), {f"{e}/{c}": kind for (e, c), kind in merged.items()}
            )
            self.ctx = mapping.StationContext(self.ctx.tenant, self.ctx.station_id, self.ctx.registry, merged)

        await _guard(work)
        return v201_result.NotifyReport()


_ocpp_log = logging.getLogger("charging_analytics.gateway.ocpp")
_ocpp_log.setLevel(logging.WARNING)  # the library logs every payload at INFO


# --------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------


class Gateway:
    """Serves one :class:`GatewayConfig`; ``await start()``, then ``await shutdown()``."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        ssl_context: ssl.SSLContext | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self._ssl = ssl_context
        self._publishers: dict[str, Publisher] = {}
        state_conf = {"bootstrap.servers": ",".join(config.state.bootstrap_servers)}
        self._state_key = _publisher_key(state_conf)
        state_publisher = self._publisher(state_conf)
        self.state = StateStore(config.state, state_publisher)
        self._server: Server | None = None
        # Weak: a connection that drops between the checks and the handler leaves nothing behind.
        self._identities: weakref.WeakKeyDictionary[ServerConnection, Identity] = weakref.WeakKeyDictionary()
        self._sessions: dict[ServerConnection, V16Session | V201Session] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.ready = False
        #: Why the gateway is not ready (for /readyz), empty when it is.
        self.not_ready = "state topic not read yet"

    def _publisher(self, conf: Mapping[str, Any]) -> Publisher:
        key = _publisher_key(conf)
        if key not in self._publishers:
            self._publishers[key] = Publisher(
                conf, delivery_timeout_s=self.config.delivery_timeout_s, observe=self.metrics.observe_produce
            )
        return self._publishers[key]

    async def publish(self, tenant: Tenant, events: list[OcppEvent]) -> None:
        """Publish to the tenant's topic (key: station id, so a station's events stay in order);
        returns when Kafka acknowledged every event."""
        if not events:
            return
        publisher = self._publisher(producer_config(tenant.kafka, tenant.kafka_credential))
        if len(events) == 1:  # the usual case, without gather's task per event
            await publisher.publish(tenant.topic, events[0].station_id.encode(), events[0].to_json_bytes())
        else:
            await asyncio.gather(
                *(publisher.publish(tenant.topic, e.station_id.encode(), e.to_json_bytes()) for e in events)
            )
        for e in events:
            self.metrics.published.labels(tenant.tenant, e.event_type).inc()

    def update_tenants(self, tenants: Mapping[str, Tenant]) -> None:
        """Serve ``tenants`` from now on (the tenant source saw a change): new stations are
        accepted at once; a connected station whose tenant or registry entry is gone, or whose
        password changed, is disconnected (1008) and refused when it reconnects; the others
        continue with their tenant's new settings. Publishers no longer used are closed."""
        self.config = replace(self.config, tenants=dict(tenants))
        for connection, session in list(self._sessions.items()):
            old = session.identity
            found = self.config.station(old.tenant.tenant, old.station.id)
            if found is None or found[1].password != old.station.password:
                _log.info("station no longer served: disconnecting", extra=session._log_fields())
                task = asyncio.ensure_future(connection.close(code=1008, reason="station no longer served"))
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
                continue
            session.reidentify(*found)
        in_use = {self._state_key} | {
            _publisher_key(producer_config(t.kafka, t.kafka_credential)) for t in self.config.tenants.values()
        }
        for key in [k for k in self._publishers if k not in in_use]:
            # In a thread: close() first waits for the deliveries still outstanding.
            threading.Thread(target=self._publishers.pop(key).close, daemon=True).start()

    def in_flight(self) -> _InFlight:
        return _InFlight(self)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, *, state_timeout: float = 30.0, retry_max: float = 30.0
    ) -> None:
        """Read the state topic, then listen. While Kafka is unavailable each attempt is bounded
        by ``state_timeout``, logged, and retried with backoff (up to ``retry_max`` seconds); the
        gateway stays not ready meanwhile. Cancelling ``start`` (SIGTERM) takes effect at once:
        the attempt in progress is abandoned in its daemon thread and cleans up after itself."""
        backoff = 1.0
        while True:
            abort = threading.Event()
            try:
                await _in_daemon_thread(functools.partial(self.state.start, state_timeout, abort))
                break
            except StateUnavailable as err:
                self.not_ready = str(err)
                _log.error("gateway state unavailable (retrying in %.0fs): %s", backoff, err)
            finally:
                abort.set()  # no-op after success; stops an attempt whose waiter was cancelled
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, retry_max)
        self.not_ready = "not listening yet"
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            subprotocols=list(SUBPROTOCOLS),  # type: ignore[arg-type]
            max_size=self.config.max_message_bytes,
            # No permessage-deflate: its zlib state costs about 100 KiB per connection whose
            # charger asks for it, for frames of a few hundred bytes.
            compression=None,
            # Frames are handled one at a time per connection (OCPP-J: one call outstanding),
            # so a short read queue is enough and bounds what a flooding charger can buffer.
            max_queue=4,
            ssl=self._ssl,
            server_header=None,
        )
        self.ready, self.not_ready = True, ""
        _log.info("gateway listening", extra={"host": host, "port": self.port, "tls": self._ssl is not None})

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        try:
            identity = authenticate(self.config, request)
        except Refused as refused:
            self.metrics.rejected.labels(refused.reason).inc()
            _log.warning(
                "handshake refused",
                extra={"reason": refused.reason, "status": int(refused.status), "path": request.path[:200]},
            )
            response = connection.respond(refused.status, refused.text + "\n")
            if refused.status == HTTPStatus.UNAUTHORIZED:
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
            return response
        self._identities[connection] = identity
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        identity = self._identities.pop(connection)
        current = self.config.station(identity.tenant.tenant, identity.station.id)
        if current is None or current[1].password != identity.station.password:
            # The tenants changed between the handshake checks and now.
            await connection.close(code=1008, reason="station no longer served")
            return
        identity = Identity(*current, identity.version)
        session: V16Session | V201Session
        if identity.version == "ocpp1.6":
            session = V16Session(self, identity, connection)
        else:
            session = V201Session(self, identity, connection)
        tenant = identity.tenant.tenant
        self._sessions[connection] = session
        self.metrics.connected.labels(tenant).inc()
        _log.info("station connected", extra=session._log_fields())
        try:
            # What another replica stored for this station before it reconnected here.
            await self.state.catch_up()
            if isinstance(session, V201Session):
                session.load_reported_types()
            await session.serve()
        except ConnectionClosed as closed:
            _log.info(
                "station disconnected",
                extra={**session._log_fields(), "code": closed.rcvd.code if closed.rcvd else None},
            )
        finally:
            self._sessions.pop(connection, None)
            self.metrics.connected.labels(tenant).dec()

    async def shutdown(self, drain_timeout: float = 30.0) -> None:
        """Stop accepting, let calls being handled finish (their events acknowledged and their
        replies sent), close every socket with 1001 (going away), flush the producers."""
        self.ready = False
        if self._server is not None:
            self._server.close(close_connections=False)
        try:
            await asyncio.wait_for(self._idle.wait(), drain_timeout)
        except TimeoutError:
            _log.warning("shutdown: calls still in flight after %.0fs", drain_timeout)
        await asyncio.gather(
            *(c.close(code=1001, reason="gateway shutting down") for c in list(self._sessions)),
            return_exceptions=True,
        )
        if self._server is not None:
            await self._server.wait_closed()
        self.state.close()
        for publisher in self._publishers.values():
            await asyncio.to_thread(publisher.close)


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    """``work()`` in a daemon thread. Unlike ``asyncio.to_thread`` the process never waits for
    it at exit, so a Kafka call that is slow to give up cannot delay a SIGTERM."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(result)
        else:
            done.set_exception(error)

    def run() -> None:
        try:
            result, error = work(), None
        except BaseException as err:
            result, error = None, err
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="gateway-start", daemon=True).start()
    return await done


def _publisher_key(conf: Mapping[str, Any]) -> str:
    """Tenants with the same Kafka settings share one producer."""
    return json.dumps(conf, sort_keys=True)


class _InFlight:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __aenter__(self) -> None:
        self._gateway._busy += 1
        self._gateway._idle.clear()

    async def __aexit__(self, *_: object) -> None:
        self._gateway._busy -= 1
        if self._gateway._busy == 0:
            self._gateway._idle.set()


__all__ = ["SUBPROTOCOLS", "Gateway", "Identity", "Metrics", "Refused", "authenticate"]
