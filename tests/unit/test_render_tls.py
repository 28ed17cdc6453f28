"""TLS material in the rendered pipeline: the Kafka source and sink take PEM strings
(``properties.ssl.*.pem``, as RISINGWAVE SECRETs with the secret store, inline otherwise, always
redacted in what is shown); the JDBC sink takes file paths on the RisingWave nodes in jdbc.url;
the operator's own Kafka client gets the PEMs as librdkafka accepts them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from charging_analytics.catalog import TenantCatalog
from charging_analytics.operator.checks import _kafka_config
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, RenderOptions, as_text, render
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.tls import PemFiles, TlsMaterial
from testbed.controlplane import CertificateAuthority
from testbed.specs import resource, tenant_spec
from testbed.sqllint import SecretRef, lint, parse_one_statement, with_properties

CA = CertificateAuthority.create("render-test-ca")
CERT, KEY = CA.issue("rw-client")
MATERIAL = TlsMaterial(ca=CA.cert_pem.decode(), certificate=CERT.decode(), private_key=KEY.decode())
OPTIONS = ("properties.ssl.ca.pem", "properties.ssl.certificate.pem", "properties.ssl.key.pem")


def _spec(**postgres: Any) -> ChargingAnalyticsSpec:
    security = {
        "protocol": "SASL_SSL",
        "saslMechanism": "PLAIN",
        "credentialsSecretRef": {"name": "kafka"},
        "tlsSecretRef": {
            "name": "kafka-tls",
            "caKey": "ca.crt",
            "certificateKey": "tls.crt",
            "privateKeyKey": "tls.key",
        },
    }
    sink = {
        "host": "db",
        "database": "alerts",
        "sslmode": "verify-full",
        "credentialsSecretRef": {"name": "pg"},
    }
    return tenant_spec(
        "acme",
        bootstrap="k0:9093",
        events_topic="events",
        kafka={"security": security},
        alerts={
            "stalledSessionMinutes": None,
            "sinks": {"kafka": {"topic": "alerts"}, "postgres": sink | postgres},
        },
    )


def _creds() -> Credentials:
    return Credentials(kafka=Credential("u", "p4ss"), alerts_db=Credential("w", "dbpw"), kafka_tls=MATERIAL)


def _by_name(objects: list[Any]) -> dict[str, Any]:
    return {o.name: o for o in objects}


def test_inline_kafka_source_and_sink_carry_the_pems_and_show_them_redacted() -> None:
    objects = _by_name(render(_spec(), RenderOptions(secret_store="inline", credentials=_creds())))
    for name in ("ocpp_events", "alerts_to_kafka"):
        o = objects[name]
        executable = with_properties(parse_one_statement(as_text(o.statement)))
        shown = with_properties(parse_one_statement(o.sql))
        assert [executable[k].name for k in OPTIONS] == [
            MATERIAL.ca,
            MATERIAL.certificate,
            MATERIAL.private_key,
        ]
        assert {shown[k].name for k in OPTIONS} == {"[redacted]"}
        assert set(MATERIAL.values()) <= set(o.sensitive)  # an error echoing one is scrubbed of it
        for value in MATERIAL.values():
            assert value.splitlines()[1] not in o.sql
    report = lint(o.sql for o in objects.values())
    assert report.violations == [], str(report)


def test_with_the_secret_store_the_pems_are_risingwave_secrets_the_connectors_reference() -> None:
    objects = _by_name(render(_spec(), RenderOptions(secret_store="risingwave", credentials=_creds())))
    secrets = {f"kafka_tls_{p}" for p in ("ca", "certificate", "private_key")}
    assert secrets <= {n for n, o in objects.items() if o.kind == "Secret"}
    for name in ("ocpp_events", "alerts_to_kafka"):
        o = objects[name]
        props = with_properties(parse_one_statement(as_text(o.statement)))
        refs = [props[k] for k in OPTIONS]
        assert all(isinstance(r, SecretRef) for r in refs)
        assert secrets <= set(o.depends_on)
        assert not any(v.splitlines()[1] in as_text(o.statement) for v in MATERIAL.values())
    ca_secret = objects["kafka_tls_ca"]
    assert MATERIAL.ca is not None
    assert MATERIAL.ca in as_text(ca_secret.statement)
    assert MATERIAL.ca.splitlines()[1] not in ca_secret.sql
    report = lint(o.sql for o in objects.values())
    assert report.violations == [], str(report)


def test_a_rotated_certificate_rebuilds_the_source_instead_of_an_alter_that_keeps_the_old_one() -> None:
    options = RenderOptions(secret_store="inline", credentials=_creds())
    source = _by_name(render(_spec(), options))["ocpp_events"]
    assert source.update_statement is None  # ALTER SOURCE CONNECTOR cannot change ssl.*.pem before v3.0
    other_cert, other_key = CA.issue("rotated")
    rotated = Credentials(
        kafka=Credential("u", "p4ss"),
        alerts_db=Credential("w", "dbpw"),
        kafka_tls=TlsMaterial(
            ca=MATERIAL.ca, certificate=other_cert.decode(), private_key=other_key.decode()
        ),
    )
    again = _by_name(render(_spec(), RenderOptions(secret_store="inline", credentials=rotated)))[
        "ocpp_events"
    ]
    assert again.hash == source.hash  # same definition shown ...
    assert again.credential_digest != source.credential_digest  # ... but a change the ledger sees


def test_without_the_tls_secret_the_apply_is_refused_as_unresolved() -> None:
    creds = Credentials(kafka=Credential("u", "p"), alerts_db=Credential("w", "x"))
    objects = render(_spec(), RenderOptions(secret_store="inline", credentials=creds))
    assert {r for o in objects for r in o.unresolved} == {"kafka_tls"}
    plan = build_plan(objects, TenantCatalog("acme", schema_exists=False), PlanOptions(owner="ns/t"))
    assert all("BEGIN CERTIFICATE" not in s for s in plan.statements())


def test_jdbc_sink_names_the_node_files_in_its_url() -> None:
    files = {
        "caPath": "/etc/pg/ca.pem",
        "certificatePath": "/etc/pg/tls.crt",
        "privateKeyPath": "/etc/pg/tls.pk8",
    }
    sink = _by_name(render(_spec(sinkTlsFiles=files), RenderOptions(credentials=_creds())))[
        "alerts_to_postgres"
    ]
    url = with_properties(parse_one_statement(sink.sql))["jdbc.url"].name
    assert url == (
        "jdbc:postgresql://db:5432/alerts?sslmode=verify-full"
        "&sslrootcert=/etc/pg/ca.pem&sslcert=/etc/pg/tls.crt&sslkey=/etc/pg/tls.pk8"
    )


def test_librdkafka_accepts_the_pems_from_a_secret_and_refuses_a_damaged_one() -> None:
    spec = _spec()
    conf = _kafka_config(spec, Credential("u", "p"), 1.0, MATERIAL)
    assert conf["ssl.ca.pem"] == MATERIAL.ca
    AdminClient(conf)  # librdkafka parses ssl.*.pem when the client is made
    damaged = TlsMaterial(ca=MATERIAL.ca, certificate=MATERIAL.certificate, private_key="-----BEGIN x-----")
    with pytest.raises(Exception, match=r"ssl\.key\.pem"):
        AdminClient(_kafka_config(spec, Credential("u", "p"), 1.0, damaged))


def test_pem_files_are_private_and_removed_on_close() -> None:
    with PemFiles(MATERIAL) as files:
        paths = files.libpq()
        assert set(paths) == {"sslrootcert", "sslcert", "sslkey"}
        for path in map(Path, paths.values()):
            assert path.stat().st_mode & 0o777 == 0o600
            assert path.parent.stat().st_mode & 0o777 == 0o700
        assert Path(paths["sslkey"]).read_text() == MATERIAL.private_key
    assert not any(Path(p).exists() for p in paths.values())
    assert not Path(paths["sslkey"]).parent.exists()
    assert PemFiles(None).libpq() == {}
    assert "BEGIN" not in repr(MATERIAL)


def test_the_cli_reads_tls_material_from_a_secret_in_the_file_and_names_one_that_is_missing() -> None:
    from charging_analytics.validation import parse_documents

    manifest = resource("t", "ns", _spec().model_dump(by_alias=True, exclude_none=True))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "kafka-tls", "namespace": "ns"},
        "stringData": {
            "ca.crt": MATERIAL.ca,
            "tls.crt": MATERIAL.certificate,
            "tls.key": MATERIAL.private_key,
        },
    }
    with_secret = parse_documents([manifest, secret], "m.yaml")
    creds, missing = asyncio.run(with_secret.credentials_for(with_secret.resources[0], generated=False))
    assert creds.kafka_tls == MATERIAL
    assert not any("kafka-tls" in m for m in missing)
    without = parse_documents([manifest], "m.yaml")
    creds, missing = asyncio.run(without.credentials_for(without.resources[0], generated=False))
    assert creds.kafka_tls is None
    assert "Secret kafka-tls (keys ca.crt, tls.crt, tls.key)" in missing
