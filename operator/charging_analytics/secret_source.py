"""Credentials and TLS material from Secrets, by one set of rules wherever the Secrets come from.

A :class:`CredentialSource` gives the data of a Secret (the operator's reads the API server,
:class:`ManifestSecrets` the Secrets of the CLI's ``-f`` files). :class:`CredentialReader` turns a
spec's references into :class:`~charging_analytics.render.Credentials` over any source: the same
checks (the Secret exists, has the keys, each key used holds text without NUL, TLS keys hold PEM)
and the same :class:`SecretProblem` (a ``status.Reason`` and a message naming the field, the
Secret and the key) for the operator's Stalled condition and for the CLI's notes.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .pipeline import reader_name
from .render import Credential, Credentials, referenced_secrets, referenced_tls
from .spec import ChargingAnalyticsSpec, CredentialsSecretRef, SecretRef, TlsSecretRef
from .status import Reason
from .tls import TlsMaterial, tls_keys

T = TypeVar("T")

#: The spec field of each credential role (messages name it).
CREDENTIAL_PATHS: Mapping[str, str] = {
    "kafka": "spec.kafka.security.credentialsSecretRef",
    "alerts_db": "spec.alerts.sinks.postgres.credentialsSecretRef",
}
#: The spec field of each TLS role (messages name it).
TLS_PATHS: Mapping[str, str] = {
    "kafka_tls": "spec.kafka.security.tlsSecretRef",
    "alerts_db_tls": "spec.alerts.sinks.postgres.tlsSecretRef",
}
#: Reasons that say the Secret or a key is not there at all (not that a value is unusable).
ABSENT: frozenset[Reason] = frozenset({Reason.SECRET_MISSING, Reason.SECRET_KEY_MISSING})


@dataclass(frozen=True)
class StoredSecret:
    """What is read of a Secret: its data as bytes, and which resources own it."""

    data: Mapping[str, bytes] = field(repr=False)
    owner_uids: frozenset[str] = frozenset()
    resource_version: str | None = None


class SecretUnreadable(Exception):
    """The source could not say whether the Secret exists (e.g. the API server refused: 403)."""


class CredentialSource(Protocol):
    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        """The Secret's data and owners, None if it does not exist (else :class:`SecretUnreadable`)."""
        ...


class SecretProblem(Exception):
    """A referenced Secret that cannot give what the spec needs of it."""

    def __init__(self, reason: Reason, message: str, *, secret: str, keys: Sequence[str]) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.secret = secret
        #: every key the reference needs of the Secret
        self.keys = tuple(keys)

    @property
    def absent(self) -> bool:
        return self.reason in ABSENT


class CredentialReader:
    """Reads the Secrets a spec references from one source; remembers each Secret's
    resourceVersion when last read (a credential read from an unchanged Secret is unchanged)."""

    def __init__(self, source: CredentialSource) -> None:
        self.source = source
        #: (namespace, Secret) -> its resourceVersion when last read
        self.versions: dict[tuple[str, str], str | None] = {}

    async def values(
        self, namespace: str, ref: SecretRef, field_path: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The text of ``keys`` in the referenced Secret.

        Only the keys used must be text: other keys (a truststore, a keystore) may be binary."""
        where = f"{field_path}: Secret {namespace}/{ref.name}"

        def problem(reason: Reason, message: str) -> SecretProblem:
            return SecretProblem(reason, message, secret=ref.name, keys=keys)

        try:
            stored = await self.source.read_secret(namespace, ref.name)
        except SecretUnreadable as err:
            message = f"{field_path}: cannot read Secret {namespace}/{ref.name}: {err}"
            raise problem(Reason.SECRET_UNREADABLE, message) from err
        if stored is None:
            raise problem(Reason.SECRET_MISSING, f"{where} not found")
        self.versions[(namespace, ref.name)] = stored.resource_version
        for key in keys:
            if key not in stored.data:
                raise problem(Reason.SECRET_KEY_MISSING, f"{where} has no key {key!r}")
        values: dict[str, str] = {}
        for key in keys:
            try:
                values[key] = stored.data[key].decode("utf-8")
            except UnicodeDecodeError as err:
                message = f"{where}: key {key!r} is not UTF-8 text (a user name or password must be)"
                raise problem(Reason.SECRET_VALUE_NOT_TEXT, message) from err
        for key, value in values.items():
            if "\0" in value:
                # no SQL string literal can carry NUL (the wire protocol ends the query there)
                raise problem(Reason.SECRET_VALUE_INVALID, f"{where} key {key!r} contains a NUL character")
        return values

    async def credential(self, namespace: str, ref: CredentialsSecretRef, field_path: str) -> Credential:
        values = await self.values(namespace, ref, field_path, (ref.username_key, ref.password_key))
        return Credential(values[ref.username_key], values[ref.password_key])

    async def tls(self, namespace: str, ref: TlsSecretRef, field_path: str) -> TlsMaterial:
        """The PEM material a ``tlsSecretRef`` names; each key must hold PEM text."""
        named = tls_keys(ref)
        keys = tuple(named.values())
        values = await self.values(namespace, ref, field_path, keys)
        for key in keys:
            if "-----BEGIN " not in values[key]:
                raise SecretProblem(
                    Reason.SECRET_VALUE_INVALID,
                    f"{field_path}: Secret {namespace}/{ref.name} key {key!r} is not PEM text "
                    "(expected a -----BEGIN ...----- block)",
                    secret=ref.name,
                    keys=keys,
                )
        return TlsMaterial(**{part: values[key] for part, key in named.items()})

    async def credentials(self, namespace: str, spec: ChargingAnalyticsSpec) -> Credentials:
        """Every credential and TLS material the spec references (the reader's aside); the first
        reference that cannot be resolved raises its :class:`SecretProblem`."""
        return await self._resolve(namespace, spec, None)

    async def available(
        self, namespace: str, spec: ChargingAnalyticsSpec
    ) -> tuple[Credentials, list[SecretProblem]]:
        """What :meth:`credentials` resolves, and the problem of every reference it could not."""
        problems: list[SecretProblem] = []
        return await self._resolve(namespace, spec, problems), problems

    async def _resolve(
        self, namespace: str, spec: ChargingAnalyticsSpec, problems: list[SecretProblem] | None
    ) -> Credentials:
        found = await _each(
            problems,
            {
                role: functools.partial(self.credential, namespace, ref, CREDENTIAL_PATHS[role])
                for role, ref in referenced_secrets(spec).items()
            },
        )
        tls = await _each(
            problems,
            {
                role: functools.partial(self.tls, namespace, ref, TLS_PATHS[role])
                for role, ref in referenced_tls(spec).items()
            },
        )
        return Credentials(
            kafka=found.get("kafka"),
            alerts_db=found.get("alerts_db"),
            kafka_tls=tls.get("kafka_tls"),
            alerts_db_tls=tls.get("alerts_db_tls"),
        )


async def _each(
    problems: list[SecretProblem] | None, lookups: Mapping[str, Callable[[], Awaitable[T]]]
) -> dict[str, T]:
    """Each role's lookup; a problem is raised (``problems`` None) or collected."""
    out: dict[str, T] = {}
    for role, lookup in lookups.items():
        try:
            out[role] = await lookup()
        except SecretProblem as problem:
            if problems is None:
                raise
            problems.append(problem)
    return out


def stored_reader(stored: StoredSecret | None, tenant: str) -> Credential | None:
    """The read-only user's credential kept in its Secret: only if the Secret names this tenant's
    user and holds a password (the operator generates a new one otherwise)."""
    user = reader_name(tenant)
    if stored is None or stored.data.get("username") != user.encode():
        return None
    try:
        password = stored.data.get("password", b"").decode()
    except UnicodeDecodeError:  # the operator's own Secret, damaged: it is regenerated
        return None
    return Credential(user, password) if password else None


class ManifestSecrets:
    """The Secrets of manifest files, as a :class:`CredentialSource`. A Secret without a
    namespace serves every namespace (a file meant for ``kubectl apply -n``)."""

    def __init__(self) -> None:
        self._secrets: dict[tuple[str | None, str], StoredSecret] = {}

    def __repr__(self) -> str:
        return f"ManifestSecrets({len(self._secrets)} Secrets)"

    def add(self, doc: Mapping[str, Any]) -> None:
        """A ``v1`` Secret document (``stringData`` wins over ``data``, as the API server merges them)."""
        raw_meta = doc.get("metadata")
        meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
        data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
        data.update({k: str(v).encode() for k, v in (doc.get("stringData") or {}).items()})
        version = meta.get("resourceVersion")
        self._secrets[(meta.get("namespace"), str(meta.get("name")))] = StoredSecret(
            data=data, resource_version=str(version) if version is not None else None
        )

    def update(self, other: ManifestSecrets) -> None:
        self._secrets.update(other._secrets)

    async def read_secret(self, namespace: str, name: str) -> StoredSecret | None:
        return self._secrets.get((namespace, name)) or self._secrets.get((None, name))
