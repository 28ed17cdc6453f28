"""Credentials from Kubernetes Secrets: resolved for a reconcile, never logged or kept in status.

:class:`SecretResolver` reads the Secrets a spec references through :class:`KubeSecrets` (the
Kubernetes :class:`~charging_analytics.secret_source.CredentialSource`) by the rules of
:class:`~charging_analytics.secret_source.CredentialReader`, whose problems become Stalled reasons
naming the field and the key; it keeps the read-only user's generated Secret and each Secret's
resourceVersion (so a credential whose Secret has not changed needs no new digest after a restart).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from .. import constants as c
from ..pipeline import reader_name
from ..render import Credential, Credentials, Digester, digest_salt, referenced_secrets
from ..secret_source import CredentialReader, SecretProblem, SecretUnreadable, StoredSecret, stored_reader
from ..spec import (
    ChargingAnalyticsSpec,
    CredentialDigests,
    CredentialsSecretRef,
    CredentialVersion,
    TlsSecretRef,
)
from ..status import Reason
from ..tls import TlsMaterial
from .checks import CheckFailure
from .dashboards import Owner, read_only_secret
from .kube import KubeApi, KubeError, SecretNotOwned

log = logging.getLogger(__name__)

_PARTS = ("username", "password")


@dataclass(frozen=True)
class Versioned:
    """A resolved credential with the Secret and resourceVersion it was read from."""

    role: str
    secret: str
    resource_version: str
    credential: Credential


class KubeSecrets:
    """The API server's Secrets as a credential source."""

    def __init__(self, kube: KubeApi) -> None:
        self.kube = kube

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        try:
            return await self.kube.read_secret(namespace, name)
        except KubeError as err:
            raise SecretUnreadable(str(err)) from err


@contextmanager
def _stalls() -> Iterator[None]:
    """A Secret that cannot give what the spec needs stalls the reconcile with its reason."""
    try:
        yield
    except SecretProblem as problem:
        raise CheckFailure(problem.reason, problem.message) from problem


class SecretResolver:
    def __init__(self, kube: KubeApi) -> None:
        self.kube = kube
        self._reader = CredentialReader(KubeSecrets(kube))
        #: (namespace, Secret) -> its resourceVersion when last read
        self._versions = self._reader.versions

    # -- reading ----------------------------------------------------------------------------------

    async def credential(self, namespace: str, ref: CredentialsSecretRef, field_path: str) -> Credential:
        with _stalls():
            return await self._reader.credential(namespace, ref, field_path)

    async def tls(self, namespace: str, ref: TlsSecretRef, field_path: str) -> TlsMaterial:
        """The PEM material a ``tlsSecretRef`` names; each key must hold PEM text."""
        with _stalls():
            return await self._reader.tls(namespace, ref, field_path)

    async def credentials(self, namespace: str, spec: ChargingAnalyticsSpec) -> Credentials:
        """Every credential and TLS material the spec references (the reader's aside)."""
        with _stalls():
            return await self._reader.credentials(namespace, spec)

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
        kept = stored_reader(stored, spec.tenant)
        if kept is not None and stored is not None:
            self._versions[(owner.namespace, secret)] = stored.resource_version
            return kept
        if spec.mode != "Apply":
            return None
        self._versions.pop((owner.namespace, secret), None)  # known after the next read
        user, password = reader_name(spec.tenant), secrets.token_urlsafe(24)
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
