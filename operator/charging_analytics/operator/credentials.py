"""Credentials from Kubernetes Secrets: resolved for a reconcile, never logged or kept in status.

:class:`SecretResolver` reads the Secrets a spec references (failures become Stalled reasons
naming the field and the key), keeps the read-only user's generated Secret, remembers which
resources reference which Secret (so a changed Secret reconciles them) and each Secret's
resourceVersion (so a credential whose Secret has not changed needs no new digest after a restart).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import constants as c
from ..pipeline import reader_name
from ..render import (
    TLS_PATHS,
    Credential,
    Credentials,
    Digester,
    digest_salt,
    referenced_secrets,
    referenced_tls,
)
from ..spec import (
    ChargingAnalyticsSpec,
    CredentialDigests,
    CredentialsSecretRef,
    CredentialVersion,
    SecretRef,
    TlsSecretRef,
)
from ..status import Reason
from ..tls import TlsMaterial, tls_keys
from .checks import CheckFailure
from .dashboards import Owner, read_only_secret
from .kube import KubeApi, KubeError, SecretNotOwned, StoredSecret

log = logging.getLogger(__name__)

_PATHS = {
    "kafka": "spec.kafka.security.credentialsSecretRef",
    "alerts_db": "spec.alerts.sinks.postgres.credentialsSecretRef",
}
_PARTS = ("username", "password")


@dataclass(frozen=True)
class Versioned:
    """A resolved credential with the Secret and resourceVersion it was read from."""

    role: str
    secret: str
    resource_version: str
    credential: Credential


class SecretResolver:
    def __init__(self, kube: KubeApi) -> None:
        self.kube = kube
        #: (namespace, Secret) -> its resourceVersion when last read
        self._versions: dict[tuple[str, str], str | None] = {}

    # -- reading ----------------------------------------------------------------------------------

    async def values(
        self, namespace: str, ref: SecretRef, field_path: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The text of ``keys`` in the referenced Secret (Stalled reasons name the field and key).

        Only the keys used must be text: other keys (a truststore, a keystore) may be binary."""
        where = f"{field_path}: Secret {namespace}/{ref.name}"
        try:
            stored = await self.kube.read_secret(namespace, ref.name)
        except KubeError as err:
            raise CheckFailure(
                Reason.SECRET_UNREADABLE, f"{field_path}: cannot read Secret {namespace}/{ref.name}: {err}"
            ) from err
        if stored is None:
            raise CheckFailure(Reason.SECRET_MISSING, f"{where} not found")
        self._versions[(namespace, ref.name)] = stored.resource_version
        for key in keys:
            if key not in stored.data:
                raise CheckFailure(Reason.SECRET_KEY_MISSING, f"{where} has no key {key!r}")
        values = {key: _text(stored.data[key], where, key) for key in keys}
        for key, value in values.items():
            if "\0" in value:
                # no SQL string literal can carry NUL (the wire protocol ends the query there)
                raise CheckFailure(
                    Reason.SECRET_VALUE_INVALID, f"{where} key {key!r} contains a NUL character"
                )
        return values

    async def credential(self, namespace: str, ref: CredentialsSecretRef, field_path: str) -> Credential:
        values = await self.values(namespace, ref, field_path, (ref.username_key, ref.password_key))
        return Credential(values[ref.username_key], values[ref.password_key])

    async def tls(self, namespace: str, ref: TlsSecretRef, field_path: str) -> TlsMaterial:
        """The PEM material a ``tlsSecretRef`` names; each key must hold PEM text."""
        named = tls_keys(ref)
        values = await self.values(namespace, ref, field_path, tuple(named.values()))
        for key in named.values():
            if "-----BEGIN " not in values[key]:
                raise CheckFailure(
                    Reason.SECRET_VALUE_INVALID,
                    f"{field_path}: Secret {namespace}/{ref.name} key {key!r} is not PEM text "
                    "(expected a -----BEGIN ...----- block)",
                )
        return TlsMaterial(**{part: values[key] for part, key in named.items()})

    async def credentials(self, namespace: str, spec: ChargingAnalyticsSpec) -> Credentials:
        """Every credential and TLS material the spec references (the reader's aside)."""
        found = {
            role: await self.credential(namespace, ref, _PATHS[role])
            for role, ref in referenced_secrets(spec).items()
        }
        tls = {
            role: await self.tls(namespace, ref, TLS_PATHS[role])
            for role, ref in referenced_tls(spec).items()
        }
        return Credentials(
            kafka=found.get("kafka"),
            alerts_db=found.get("alerts_db"),
            kafka_tls=tls.get("kafka_tls"),
            alerts_db_tls=tls.get("alerts_db_tls"),
        )

    def versions(
        self, namespace: str, owner: Owner, spec: ChargingAnalyticsSpec, creds: Credentials
    ) -> list[Versioned]:
        """Each resolved credential with the Secret and resourceVersion it was read from."""
        secrets_by_role = {role: ref.name for role, ref in referenced_secrets(spec).items()}
        if creds.reader is not None:
            secrets_by_role["reader"] = read_only_secret(owner, spec)
        out = []
        for role, secret in secrets_by_role.items():
            cred: Credential | None = getattr(creds, role)
            version = self._versions.get((namespace, secret))
            if cred is not None and version:
                out.append(Versioned(role, secret, version, cred))
        return out

    # -- the read-only user's Secret --------------------------------------------------------------

    async def reader(
        self, owner: Owner, spec: ChargingAnalyticsSpec, target: Mapping[str, str]
    ) -> Credential | None:
        """The read-only user's credentials, generated once and kept in a Secret of the namespace.

        Deleting that Secret rotates the password on the next reconcile. Plan mode writes nothing.
        ``target``: the endpoint's connection details, written beside the credential.
        """
        if not spec.read_only_user.enabled:
            return None
        secret = read_only_secret(owner, spec)
        stored = await self._own_secret(owner, secret)
        user = reader_name(spec.tenant)
        if stored is not None and stored.data.get("username") == user.encode():
            try:
                password = stored.data.get("password", b"").decode()
            except UnicodeDecodeError:  # the operator's own Secret, damaged: regenerate it
                password = ""
            if password:
                self._versions[(owner.namespace, secret)] = stored.resource_version
                return Credential(user, password)
        if spec.mode != "Apply":
            return None
        self._versions.pop((owner.namespace, secret), None)  # known after the next read
        password = secrets.token_urlsafe(24)
        data = {"username": user, "password": password, **target, "schema": spec.tenant}
        await self._write(owner, secret, data, stored)
        return Credential(user, password)

    async def _own_secret(self, owner: Owner, secret: str) -> StoredSecret | None:
        """The reader's Secret, if it exists and this resource owns it."""
        try:
            stored = await self.kube.read_secret(owner.namespace, secret)
        except KubeError as err:
            raise CheckFailure(
                Reason.SECRET_UNREADABLE, f"cannot read Secret {owner.namespace}/{secret}: {err}"
            ) from err
        if stored is not None and (owner.uid is None or owner.uid not in stored.owner_uids):
            # Someone else's Secret (another application's, or another resource's reader):
            # writing would destroy its credentials, or two resources would rotate each other.
            raise CheckFailure(
                Reason.SECRET_NOT_OWNED,
                f"{_reader_field(owner, secret)} exists and is not owned by this resource; the "
                "operator only writes Secrets it created: name a Secret that does not exist, or "
                "delete this one",
            )
        return stored

    async def _write(
        self, owner: Owner, secret: str, data: Mapping[str, str], stored: StoredSecret | None
    ) -> None:
        ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": owner.name, "uid": owner.uid or ""}
        try:
            await self.kube.write_secret(owner.namespace, secret, data, owner=ref, existing=stored)
        except SecretNotOwned as err:
            raise CheckFailure(Reason.SECRET_NOT_OWNED, f"{_reader_field(owner, secret)}: {err}") from err
        except KubeError as err:
            raise CheckFailure(
                Reason.SECRET_UNWRITABLE, f"cannot write Secret {owner.namespace}/{secret}: {err}"
            ) from err


def remember_digests(
    digester: Digester,
    spec: ChargingAnalyticsSpec,
    recorded: Sequence[CredentialVersion],
    versions: list[Versioned],
) -> None:
    """Take the digests recorded in status for credentials whose Secret has not changed since (same
    resourceVersion), so the first pass after a restart computes no digest for them."""
    by_version = {(e.role, e.secret, e.resource_version): e.digests for e in recorded}
    for v in versions:
        digests = by_version.get((v.role, v.secret, v.resource_version), CredentialDigests())
        for part in _PARTS:
            digest = getattr(digests, part)
            if isinstance(digest, str) and digest:
                digester.remember(digest_salt(spec.tenant, v.role, part), getattr(v.credential, part), digest)


def credentials_status(
    digester: Digester, spec: ChargingAnalyticsSpec, versions: list[Versioned]
) -> list[CredentialVersion]:
    """What :func:`remember_digests` reads back: the digests render computed (or took) this pass."""
    out = []
    for v in versions:
        digests = {}
        for part in _PARTS:
            digest = digester.known(digest_salt(spec.tenant, v.role, part), getattr(v.credential, part))
            if digest is not None:
                digests[part] = digest
        if digests:
            out.append(
                CredentialVersion(
                    role=v.role,
                    secret=v.secret,
                    resource_version=v.resource_version,
                    digests=CredentialDigests.model_validate(digests),
                )
            )
    return out


def _reader_field(owner: Owner, secret: str) -> str:
    return f"spec.readOnlyUser.secretName: Secret {owner.namespace}/{secret}"


def _text(value: bytes, where: str, key: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CheckFailure(
            Reason.SECRET_VALUE_NOT_TEXT,
            f"{where}: key {key!r} is not UTF-8 text (a user name or password must be)",
        ) from err
