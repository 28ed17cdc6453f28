"""TLS material by Secret reference, on a real PostgreSQL that speaks TLS and requires a client
certificate of the alerts user: ``sslmode: verify-full`` with the CA (and client certificate) from a
Secret works; without the CA it stalls with a reason that says TLS; no PEM ever reaches status,
Events, plans or the operator's output, and no PEM file outlives its use."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from charging_analytics import constants as c
from testbed.controlplane import CertificateAuthority, ControlPlane
from testbed.postgres import PostgresServer
from tests.rw_double.fixtures import RisingWaveTarget
from tests.rw_double.server import RisingWaveDouble
from tests.service.harness import Harness


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("alerts-db-test-ca")


@pytest.fixture(scope="module")
def tls_postgres(ca: CertificateAuthority) -> Iterator[PostgresServer]:
    server = PostgresServer(
        server_tls=ca.issue("postgres", ip_addresses=["127.0.0.1"], server=True), client_ca=ca.cert_pem
    )
    with server:
        yield server


@pytest.fixture
def tls_harness(
    control_plane: ControlPlane,
    namespace: str,
    kafka_broker: str,
    tls_postgres: PostgresServer,
    risingwave: RisingWaveTarget,
    monkeypatch: pytest.MonkeyPatch,
) -> Harness:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    return Harness(control_plane, namespace, kafka_broker, tls_postgres, risingwave)


def _pem_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("cha-tls-*"))


def _tls_tenant(h: Harness, name: str, tls_ref: dict[str, str] | None) -> dict[str, object]:
    body = h.tenant(name, postgres_sink=True, kafka_sink=False)
    pg = body["spec"]["alerts"]["sinks"]["postgres"]  # type: ignore[index]
    pg["sslmode"] = "verify-full"
    if tls_ref is not None:
        pg["tlsSecretRef"] = tls_ref
    return body


def test_verify_full_with_the_ca_and_client_certificate_from_a_secret_creates_the_alerts_table(
    tls_harness: Harness, ca: CertificateAuthority
) -> None:
    h = tls_harness
    cert, key = ca.issue(h.pg.alerts_user)
    pems = {"ca.crt": ca.cert_pem.decode(), "tls.crt": cert.decode(), "tls.key": key.decode()}
    h.secret("db-tls", pems)
    h.alerts_db_secret("secure")
    ref = {"name": "db-tls", "caKey": "ca.crt", "certificateKey": "tls.crt", "privateKeyKey": "tls.key"}
    body = _tls_tenant(h, "secure", ref)
    tenant = body["spec"]["tenant"]  # type: ignore[index]
    before = _pem_dirs()
    with h.operator() as runner:
        h.create(body)
        obj = h.wait_ready("secure", timeout=60)
    # pg_hba lets the alerts user in only over TLS with a certificate this CA signed
    with h.pg.connect(dbname=h.pg.alerts_db) as conn:
        found = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = %s", (f"{tenant}_alerts",))
        assert found.fetchone() == (1,)
    sink = h.rw.object(f"{tenant}.alerts_to_postgres").definition
    assert "sslmode=verify-full" in sink
    shown = "\n".join([str(obj), str(h.events()), runner.output, *h.outputs])
    for value in pems.values():
        for line in value.splitlines():
            if "-----" not in line:
                assert line not in shown
    assert _pem_dirs() - before == set()  # every PEM file written for libpq was removed


def test_verify_full_without_the_ca_stalls_with_a_tls_reason(tls_harness: Harness) -> None:
    h = tls_harness
    h.alerts_db_secret("noca")
    body = _tls_tenant(h, "noca", None)
    with h.operator():
        h.create(body)
        obj = h.wait_condition("noca", c.COND_STALLED, "True", reason="AlertsDatabaseTlsFailed", timeout=60)
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "(sslmode verify-full)" in stalled["message"]
    assert "root certificate" in stalled["message"]  # libpq's words: no CA to verify the server with
    assert h.rw_objects(body["spec"]["tenant"]) == set()  # type: ignore[index]


def test_a_ca_that_did_not_sign_the_server_certificate_stalls_with_a_tls_reason(tls_harness: Harness) -> None:
    h = tls_harness
    other = CertificateAuthority.create("someone-else")
    h.secret("wrong-ca", {"ca.crt": other.cert_pem.decode()})
    h.alerts_db_secret("wrongca")
    body = _tls_tenant(h, "wrongca", {"name": "wrong-ca", "caKey": "ca.crt"})
    with h.operator():
        h.create(body)
        obj = h.wait_condition(
            "wrongca", c.COND_STALLED, "True", reason="AlertsDatabaseTlsFailed", timeout=60
        )
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "certificate verify failed" in stalled["message"]


def test_a_tls_key_that_is_not_pem_stalls_naming_the_key(tls_harness: Harness) -> None:
    h = tls_harness
    h.secret("not-pem", {"ca.crt": "hello"})
    h.alerts_db_secret("notpem")
    body = _tls_tenant(h, "notpem", {"name": "not-pem", "caKey": "ca.crt"})
    with h.operator():
        h.create(body)
        obj = h.wait_condition("notpem", c.COND_STALLED, "True", reason="SecretValueInvalid", timeout=60)
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "spec.alerts.sinks.postgres.tlsSecretRef" in stalled["message"]
    assert "key 'ca.crt' is not PEM text" in stalled["message"]


@pytest.fixture(scope="module")
def tls_risingwave(
    ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RisingWaveTarget]:
    """The RisingWave double speaking TLS with a certificate for 127.0.0.1 (RW_SSL_CERT/RW_SSL_KEY)."""
    cert, key = ca.issue("risingwave", ip_addresses=["127.0.0.1"], server=True)
    tmp = tmp_path_factory.mktemp("rw-tls")
    (tmp / "rw.crt").write_bytes(cert)
    (tmp / "rw.key").write_bytes(key)
    with RisingWaveDouble(tls=(tmp / "rw.crt", tmp / "rw.key")) as double:
        yield RisingWaveTarget(double.dsn, double)


def _rw_tls_tenant(h: Harness, name: str, tls_ref: dict[str, str] | None) -> dict[str, object]:
    body = h.tenant(name)
    rw = body["spec"]["risingwave"]  # type: ignore[index]
    rw["sslmode"] = "verify-full"
    if tls_ref is not None:
        rw["tlsSecretRef"] = tls_ref
    return body


def test_risingwave_over_verify_full_with_the_ca_from_a_secret_builds_the_tenant(
    control_plane: ControlPlane,
    namespace: str,
    kafka_broker: str,
    postgres_server: PostgresServer,
    tls_risingwave: RisingWaveTarget,
    ca: CertificateAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))
    h = Harness(control_plane, namespace, kafka_broker, postgres_server, tls_risingwave)
    h.secret("rw-ca", {"ca.crt": ca.cert_pem.decode()})
    ok = _rw_tls_tenant(h, "withca", {"name": "rw-ca", "caKey": "ca.crt"})
    missing = _rw_tls_tenant(h, "noca", None)
    before = _pem_dirs()
    with h.operator():
        h.create(ok)
        h.create(missing)
        h.wait_ready("withca", timeout=60)
        obj = h.wait_condition("noca", c.COND_STALLED, "True", reason="RisingWaveTlsFailed", timeout=60)
    assert len(h.rw_objects(ok["spec"]["tenant"])) >= 10  # type: ignore[index]
    stalled = next(x for x in obj["status"]["conditions"] if x["type"] == c.COND_STALLED)
    assert "root certificate" in stalled["message"]
    assert h.rw_objects(missing["spec"]["tenant"]) == set()  # type: ignore[index]
    # the pool's PEM files lived as long as the pool: the operator closed it on exit
    assert _pem_dirs() - before == set()
