"""``charging-analytics gateway``: run the OCPP gateway with probes and Prometheus metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from .config import ConfigError, GatewayConfig, StateSpec, load_tenants_file
from .server import Gateway

if TYPE_CHECKING:  # the `kubernetes` client is imported only by `gateway --kubernetes`
    from .kube_tenants import KubeTenantSource

_log = logging.getLogger("charging_analytics.gateway")

#: Attributes every LogRecord has; anything else was passed in ``extra=`` and is logged.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; handlers pass only non-secret fields in ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def add_gateway_parser(sub: Any) -> None:
    p = sub.add_parser("gateway", help="run the OCPP gateway (charge points -> tenants' topics)")
    p.add_argument(
        "--host",
        default="0.0.0.0",  # noqa: S104 -- a server in a Pod serves its Pod IP
        help="address to listen on for charge points (default: all)",
    )
    p.add_argument("--port", type=int, default=9000, help="WebSocket port of the OCPP endpoint")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--tenants-file", help="tenants, stations and credentials from a file (docs/gateway.md)"
    )
    source.add_argument(
        "--kubernetes",
        action="store_true",
        help="tenants from the ChargingAnalytics resources (spec.gateway) and their Secrets in "
        "--namespace (default: $CHA_WATCH_NAMESPACES), followed while running",
    )
    _add_kubernetes_arguments(p)
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=30.0,
        help="seconds one start-up attempt (state topic, tenants) may take before it is logged and retried",
    )
    p.add_argument("--tls-cert", help="PEM certificate chain: serve wss:// (security profile 2)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--metrics-port", type=int, default=9100, help="/metrics, /healthz, /readyz")
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=65536,
        help="largest OCPP frame accepted; a larger one closes the connection (1009)",
    )
    p.add_argument("--delivery-timeout", type=float, default=10.0, help="seconds to wait for Kafka's ack")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")
    p.set_defaults(func=cmd_gateway)


def _add_kubernetes_arguments(p: Any) -> None:
    """What only ``--kubernetes`` uses (a tenants file carries these settings itself)."""
    p.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="with --kubernetes: a namespace to watch (repeatable, or comma-separated)",
    )
    p.add_argument(
        "--state-bootstrap-servers",
        help="with --kubernetes: Kafka host:port[,host:port] of the gateway's state topic",
    )
    p.add_argument(
        "--state-topic",
        default="charging-analytics-gateway-state",
        help="with --kubernetes: the compacted state topic (created when missing)",
    )
    p.add_argument(
        "--state-partitions", type=int, default=6, help="with --kubernetes: partitions of a new state topic"
    )
    p.add_argument(
        "--heartbeat-interval",
        type=int,
        default=300,
        help="with --kubernetes: heartbeat seconds sent in BootNotification",
    )


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security profile 2
    context.load_cert_chain(cert, key)
    return context


async def _probe_app(gateway: Gateway, waiting: Callable[[], str]) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        if gateway.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text=f"not ready: {waiting() or gateway.not_ready}\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(gateway.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


def _namespaces(args: argparse.Namespace) -> list[str]:
    given = args.namespace or [os.environ.get("CHA_WATCH_NAMESPACES", "")]
    return [ns.strip() for item in given for ns in item.split(",") if ns.strip()]


def kubernetes_config(args: argparse.Namespace) -> GatewayConfig:
    """The gateway-wide settings of ``--kubernetes`` (the tenants arrive from the source)."""
    if not args.state_bootstrap_servers:
        raise ConfigError("--kubernetes needs --state-bootstrap-servers (Kafka of the gateway's state topic)")
    if not _namespaces(args):
        raise ConfigError("--kubernetes needs --namespace or $CHA_WATCH_NAMESPACES (never cluster-wide)")
    try:
        state = StateSpec.model_validate(
            {
                "bootstrapServers": args.state_bootstrap_servers.split(","),
                "topic": args.state_topic,
                "partitions": args.state_partitions,
            }
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise ConfigError(f"--state-{first['loc'][0]}: {first['msg']}") from None
    if not 10 <= args.heartbeat_interval <= 86400:
        raise ConfigError("--heartbeat-interval must be 10..86400 seconds")
    return GatewayConfig(
        tenants={},
        state=state,
        heartbeat_interval=args.heartbeat_interval,
        max_message_bytes=args.max_message_bytes,
        delivery_timeout_s=args.delivery_timeout,
    )


async def _until(stop: asyncio.Event, work: Awaitable[None]) -> bool:
    """Run ``work`` to its end (True), unless ``stop`` is set first: then ``work`` is cancelled
    (False)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def _sync_tenants(source: KubeTenantSource, gateway: Gateway, attempt_s: float) -> None:
    """Wait for the first complete list of resources and Secrets, logging what is missing."""
    while not await asyncio.to_thread(source.wait_synced, attempt_s):
        _log.error("tenants not listed yet (retrying): %s", "; ".join(source.not_synced()))
    gateway.update_tenants(source.current())


async def run_gateway(args: argparse.Namespace) -> int:
    if args.kubernetes:
        config = kubernetes_config(args)
    else:
        config = load_tenants_file(
            Path(args.tenants_file),
            max_message_bytes=args.max_message_bytes,
            delivery_timeout_s=args.delivery_timeout,
        )
    context = server_ssl_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    gateway = Gateway(config, ssl_context=context)
    loop = asyncio.get_running_loop()
    source: KubeTenantSource | None = None
    if args.kubernetes:
        from .kube_tenants import KubeTenantSource

        source = KubeTenantSource(
            _namespaces(args), lambda tenants: loop.call_soon_threadsafe(gateway.update_tenants, tenants)
        )

    def waiting() -> str:
        if source is not None and not source.synced:
            return "tenants not listed yet: " + "; ".join(source.not_synced())
        return ""

    # Signals first: SIGTERM must work while the start-up still waits for Kafka or the apiserver.
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await _probe_app(gateway, waiting)
    await web.TCPSite(runner, args.host, args.metrics_port).start()
    try:
        if source is not None:
            source.start()
            if not await _until(stop, _sync_tenants(source, gateway, args.startup_timeout)):
                _log.info("stopped during start-up")
                return 0
        if not await _until(stop, gateway.start(args.host, args.port, state_timeout=args.startup_timeout)):
            _log.info("stopped during start-up")
            return 0
        await stop.wait()
        _log.info("shutting down")
        return 0
    finally:
        if source is not None:
            source.stop()
        await gateway.shutdown()
        await runner.cleanup()


def cmd_gateway(args: argparse.Namespace) -> int:
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    if args.tls_cert and not args.tls_key:
        print("error: --tls-cert needs --tls-key", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_gateway(args))
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
