"""Security profile 2: HTTP Basic over TLS, with the gateway's own server context."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
import websockets
from ocpp.v201 import ChargePoint as V201ChargePoint
from ocpp.v201 import call as v201
from websockets.exceptions import InvalidStatus

from charging_analytics.gateway.cli import server_ssl_context
from charging_analytics.gateway.server import Gateway
from testbed.controlplane import CertificateAuthority
from tests.e2e.gateway.support import PASSWORD, basic, gateway_config, tenant


def test_profile_2_accepts_trusted_tls_with_credentials_and_refuses_the_rest(
    kafka_broker: str, tmp_path: Path
) -> None:
    ca = CertificateAuthority.create()
    cert, key = ca.issue("gateway", ip_addresses=["127.0.0.1"], server=True)
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    trusting = ssl.create_default_context(cadata=ca.cert_pem.decode())
    untrusting = ssl.create_default_context(cadata=CertificateAuthority.create().cert_pem.decode())
    acme = tenant(kafka_broker, "acme", {"ST-1": {1: "CCS"}})
    good = basic("ST-1", f"{PASSWORD}-ST-1")

    async def attempts() -> tuple[str, int, type[BaseException], type[BaseException]]:
        gw = Gateway(
            gateway_config(kafka_broker, acme),
            ssl_context=server_ssl_context(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key")),
        )
        await gw.start("127.0.0.1", 0)
        url = f"wss://127.0.0.1:{gw.port}/ocpp/acme/ST-1"
        try:
            async with websockets.connect(
                url,
                subprotocols=["ocpp2.0.1"],
                additional_headers=good,
                ssl=trusting,  # type: ignore[list-item]
            ) as ws:
                cp = V201ChargePoint("ST-1", ws)
                task = asyncio.create_task(cp.start())
                hb = await cp.call(v201.Heartbeat())
                task.cancel()
            with pytest.raises(InvalidStatus) as wrong:
                await websockets.connect(
                    url,
                    subprotocols=["ocpp2.0.1"],
                    additional_headers=basic("ST-1", "x"),
                    ssl=trusting,  # type: ignore[list-item]
                )
            with pytest.raises(ssl.SSLCertVerificationError) as untrusted:
                await websockets.connect(
                    url, subprotocols=["ocpp2.0.1"], additional_headers=good, ssl=untrusting
                )  # type: ignore[list-item]
            with pytest.raises((ConnectionError, websockets.InvalidMessage, EOFError, TimeoutError)) as plain:
                await websockets.connect(
                    f"ws://127.0.0.1:{gw.port}/ocpp/acme/ST-1",
                    subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                    additional_headers=good,
                    open_timeout=5,
                )
            return hb.current_time, int(wrong.value.response.status_code), untrusted.type, plain.type
        finally:
            await gw.shutdown(drain_timeout=5)

    current_time, wrong_status, untrusted, plain = asyncio.run(attempts())
    assert current_time.endswith("Z")
    assert wrong_status == 401
    assert untrusted is ssl.SSLCertVerificationError
    assert plain is not None  # plain WebSocket to the TLS port never gets a handshake
