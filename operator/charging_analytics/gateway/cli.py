"""``charging-analytics gateway``: run the OCPP gateway with probes and Prometheus metrics."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .config import ConfigError, load_tenants_file
from .server import Gateway

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
    p.add_argument(
        "--tenants-file", required=True, help="tenants, stations and credentials (docs/gateway.md)"
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


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # OCPP security profile 2
    context.load_cert_chain(cert, key)
    return context


async def _probe_app(gateway: Gateway) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if gateway.ready else web.Response(status=503, text="not ready\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(gateway.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner


async def run_gateway(args: argparse.Namespace) -> int:
    config = load_tenants_file(
        Path(args.tenants_file),
        max_message_bytes=args.max_message_bytes,
        delivery_timeout_s=args.delivery_timeout,
    )
    context = server_ssl_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    gateway = Gateway(config, ssl_context=context)
    runner = await _probe_app(gateway)
    await web.TCPSite(runner, args.host, args.metrics_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await gateway.start(args.host, args.port)
    await stop.wait()
    _log.info("shutting down")
    await gateway.shutdown()
    await runner.cleanup()
    return 0


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
