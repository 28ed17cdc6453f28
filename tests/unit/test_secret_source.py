"""One set of credential rules for the operator (Secrets on the API server) and the CLI (Secrets in
its ``-f`` files): the same credentials, and the same reason and message for a Secret that cannot
give what the spec needs."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Mapping
from typing import Any, cast

import pytest

from charging_analytics.operator.checks import CheckFailure
from charging_analytics.operator.credentials import SecretResolver
from charging_analytics.operator.kube import KubeApi, KubeError
from charging_analytics.render import Credential
from charging_analytics.secret_source import ManifestSecrets, StoredSecret, stored_reader
from charging_analytics.status import Reason
from charging_analytics.validation import parse_documents
from testbed.specs import resource, spec_dict

NS = "tenants"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
SPEC = spec_dict(
    "acme",
    kafka={
        "security": {
            "protocol": "SASL_SSL",
            "saslMechanism": "PLAIN",
            "credentialsSecretRef": {"name": "kafka-sasl"},
            "tlsSecretRef": {"name": "kafka-tls", "caKey": "ca.crt"},
        }
    },
)
GOOD: dict[str, dict[str, bytes]] = {
    "kafka-sasl": {"username": b"acme", "password": b"pw", "truststore.jks": b"\xfe\xed\xfe\xed"},
    "kafka-tls": {"ca.crt": PEM.encode()},
}


def _secret_doc(name: str, data: Mapping[str, bytes], namespace: str | None = NS) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": encoded}


class _Kube:
    """The API server's Secrets as the resolver reads them (the rest of KubeApi is not used)."""

    def __init__(self, secrets: Mapping[str, Mapping[str, bytes]], refused: bool = False) -> None:
        self.secrets = secrets
        self.refused = refused

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        if self.refused:
            raise KubeError(403, "Forbidden")
        data = self.secrets.get(name) if namespace == NS else None
        return None if data is None else StoredSecret(data=dict(data), resource_version="7")


def _operator(secrets: Mapping[str, Mapping[str, bytes]], refused: bool = False) -> Any:
    """What the operator resolves: the Credentials, or the CheckFailure that stalls the reconcile."""
    resolver = SecretResolver(cast(KubeApi, _Kube(secrets, refused)))
    spec = parse_documents([resource("acme", NS, SPEC)]).resources[0].spec
    try:
        return asyncio.run(resolver.credentials(NS, spec))
    except CheckFailure as failure:
        return failure


def _cli(secrets: Mapping[str, Mapping[str, bytes]]) -> Any:
    """What the CLI resolves from a file holding the resource and ``secrets``."""
    docs = [resource("acme", NS, SPEC), *(_secret_doc(n, d) for n, d in secrets.items())]
    manifests = parse_documents(docs)
    return asyncio.run(manifests.resolve(manifests.resources[0]))


def test_both_sources_give_the_same_credentials_and_an_unused_binary_key_is_no_problem() -> None:
    operator, cli = _operator(GOOD), _cli(GOOD)
    assert operator == cli.credentials
    assert operator.kafka == Credential("acme", "pw")
    assert operator.kafka_tls.ca == PEM
    assert (cli.absent, cli.unusable) == ([], [])


UNUSABLE = {
    "a value that is not UTF-8 text": (
        {"kafka-sasl": {**GOOD["kafka-sasl"], "password": b"\xff\xfe"}},
        Reason.SECRET_VALUE_NOT_TEXT,
        "spec.kafka.security.credentialsSecretRef: Secret tenants/kafka-sasl: key 'password' is not "
        "UTF-8 text (a user name or password must be)",
    ),
    "a value with a NUL character": (
        {"kafka-sasl": {**GOOD["kafka-sasl"], "username": b"ac\0me"}},
        Reason.SECRET_VALUE_INVALID,
        "spec.kafka.security.credentialsSecretRef: Secret tenants/kafka-sasl key 'username' contains a "
        "NUL character",
    ),
    "TLS material that is not PEM": (
        {"kafka-tls": {"ca.crt": b"hello"}},
        Reason.SECRET_VALUE_INVALID,
        "spec.kafka.security.tlsSecretRef: Secret tenants/kafka-tls key 'ca.crt' is not PEM text "
        "(expected a -----BEGIN ...----- block)",
    ),
}


@pytest.mark.parametrize("case", UNUSABLE, ids=list(UNUSABLE))
def test_an_unusable_value_has_one_reason_and_message_for_the_operator_and_the_cli(case: str) -> None:
    change, reason, message = UNUSABLE[case]
    secrets = {**GOOD, **change}
    failure = _operator(secrets)
    assert isinstance(failure, CheckFailure)
    assert (failure.reason, failure.message) == (reason, message)
    cli = _cli(secrets)
    assert (cli.absent, cli.unusable) == ([], [message])


ABSENT = {
    "the Secret": (
        {"kafka-tls": GOOD["kafka-tls"]},
        Reason.SECRET_MISSING,
        "spec.kafka.security.credentialsSecretRef: Secret tenants/kafka-sasl not found",
    ),
    "a key": (
        {**GOOD, "kafka-sasl": {"username": b"acme"}},
        Reason.SECRET_KEY_MISSING,
        "spec.kafka.security.credentialsSecretRef: Secret tenants/kafka-sasl has no key 'password'",
    ),
}


@pytest.mark.parametrize("case", ABSENT, ids=list(ABSENT))
def test_an_absent_secret_or_key_stalls_the_operator_and_is_named_with_its_keys_by_the_cli(case: str) -> None:
    secrets, reason, message = ABSENT[case]
    failure = _operator(secrets)
    assert isinstance(failure, CheckFailure)
    assert (failure.reason, failure.message) == (reason, message)
    cli = _cli(secrets)
    assert cli.credentials.kafka is None
    assert cli.credentials.kafka_tls is not None  # the other references still resolve
    assert (cli.absent, cli.unusable) == (["Secret kafka-sasl (keys username, password)"], [])


def test_a_secret_the_api_server_refuses_to_show_stalls_as_unreadable() -> None:
    failure = _operator(GOOD, refused=True)
    assert isinstance(failure, CheckFailure)
    assert failure.reason == Reason.SECRET_UNREADABLE
    assert failure.message == (
        "spec.kafka.security.credentialsSecretRef: cannot read Secret tenants/kafka-sasl: 403 Forbidden"
    )


def test_a_file_secret_without_a_namespace_serves_every_namespace_and_string_data_wins() -> None:
    secrets = ManifestSecrets()
    doc = _secret_doc("kafka-sasl", {"username": b"old", "password": b"pw"}, namespace=None)
    secrets.add(doc | {"stringData": {"username": "new"}})
    stored = asyncio.run(secrets.read_secret("anywhere", "kafka-sasl"))
    assert stored is not None
    assert dict(stored.data) == {"username": b"new", "password": b"pw"}
    assert asyncio.run(secrets.read_secret("anywhere", "other")) is None


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        ({"username": b"acme_reader", "password": b"pw"}, True),
        ({"username": b"someone_else", "password": b"pw"}, False),
        ({"password": b"pw"}, False),
        ({"username": b"acme_reader", "password": b""}, False),
        ({"username": b"acme_reader", "password": b"\xff"}, False),
    ],
)
def test_the_read_only_users_secret_is_kept_only_for_this_tenants_user_with_a_password(
    data: dict[str, bytes], kept: bool
) -> None:
    found = stored_reader(StoredSecret(data=data), "acme")
    assert (found == Credential("acme_reader", "pw")) if kept else found is None
