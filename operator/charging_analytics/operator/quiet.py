"""What a Ready tenant's last drift pass found, so that a pass with the same inputs does no work.

A drift pass renders the tenant's objects and plans them against the endpoint's shared
snapshot. When nothing changed, both are pure functions of inputs that are the same as at the
last pass: the spec, the credentials, the secret store and RisingWave capabilities, the owner
recorded in the ledger, the tenant's catalog slice and the status (its fingerprints). So
the service remembers, per resource, the report of its last up-to-date drift pass with those
inputs, and a later pass whose inputs are equal takes that report instead of rendering and
planning again: O(1) per tenant, however many objects the tenant has.

Any difference (a spec edit, a rotated credential, an object changed or dropped in RisingWave, a
new status) is a miss, and the pass renders and plans as usual. Credentials are compared through
an HMAC under a key that exists only in this process, so no credential is kept here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..catalog import TenantCatalog
from ..render import Credential, Credentials
from ..rw.capabilities import Capabilities
from ..spec import ChargingAnalyticsSpec, CredentialVersion, ObjectStatus
from ..status import Cond

_PROCESS_KEY = secrets.token_bytes(32)


@dataclass(frozen=True)
class PassInputs:
    """Everything besides the catalog slice that a drift pass's render, plan and decision read."""

    #: the raw spec and status, as the API server holds them (compared by value; never changed in
    #: place: a watch event brings new ones)
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    #: the resource's generation (a spec edited and edited back has the same spec and a new
    #: generation, which the status must report)
    generation: int | None
    endpoint: str
    store: str
    capabilities: Capabilities
    credentials: bytes  # HMAC of every credential and TLS material resolved for the pass
    owner: str | None  # the owner row in the ledger
    ledger_exists: bool
    approved: str | None  # the approved-plan annotation


#: An object's status entry as the values of :data:`_ENTRY_FIELDS` (None: not set).
Entry = tuple[str | None, ...]
_ENTRY_FIELDS = tuple(ObjectStatus.model_fields)


def entries(objects: list[ObjectStatus]) -> tuple[Entry, ...]:
    """Status entries as plain values: a tenant's report is kept for as long as it is Ready, and
    a model per object was the largest part of it."""
    return tuple(tuple(getattr(o, f) for f in _ENTRY_FIELDS) for o in objects)


def entry_models(kept: tuple[Entry, ...]) -> list[ObjectStatus]:
    """The models again (validated when the pass made them: not again); an unset field stays
    unset, so the published entry has the same keys."""
    models: list[ObjectStatus] = []
    for e in kept:
        fields: dict[str, Any] = {f: v for f, v in zip(_ENTRY_FIELDS, e, strict=True) if v is not None}
        models.append(ObjectStatus.model_construct(**fields))
    return models


@dataclass(frozen=True)
class QuietReport:
    """The status parts an up-to-date drift pass reported."""

    inputs: PassInputs
    catalog: TenantCatalog
    objects: tuple[Entry, ...]  # entries(...) of the status objects
    count: int  # desired objects
    drift: Cond
    plan_hash: str | None
    credentials: list[CredentialVersion]
    #: The stored status already says what this report yields, and the Grafana step had nothing
    #: to do: the pass that last used it wrote nothing. A pass that takes a settled report has
    #: nothing to publish either (same inputs, same status), so it neither parses the stored
    #: status nor builds the patch to compare.
    settled: bool = False


def pass_inputs(
    spec: Mapping[str, Any],
    *,
    endpoint: str,
    store: str,
    capabilities: Capabilities,
    creds: Credentials,
    owner: str | None,
    ledger_exists: bool,
    status: Mapping[str, Any],
    generation: int | None,
    approved: str | None,
) -> PassInputs:
    return PassInputs(
        spec=spec,
        status=status,
        generation=generation,
        endpoint=endpoint,
        store=store,
        capabilities=capabilities,
        credentials=hmac.new(_PROCESS_KEY, _material(creds), hashlib.sha256).digest(),
        owner=owner,
        ledger_exists=ledger_exists,
        approved=approved,
    )


def _material(creds: Credentials) -> bytes:
    """Every credential and TLS material of ``creds``, role by role, as one byte string."""
    parts: list[str] = []
    for f in dataclasses.fields(creds):
        value = getattr(creds, f.name)
        if value is None:
            parts.append("")
        elif isinstance(value, Credential):
            parts += [value.username, value.password]
        else:  # TLS material
            parts += [v or "" for v in (value.ca, value.certificate, value.private_key)]
    return "\0".join(f"{len(p)}:{p}" for p in parts).encode()


class QuietPasses:
    """The last up-to-date drift pass of each resource (by owner identity)."""

    def __init__(self) -> None:
        self._last: dict[str, QuietReport] = {}

    def __len__(self) -> int:
        return len(self._last)

    def find(self, owner: str, inputs: PassInputs, catalog: TenantCatalog) -> QuietReport | None:
        """The last report, if it was made from exactly these inputs and this catalog slice."""
        last = self._last.get(owner)
        if last is None or last.inputs != inputs or last.catalog != catalog:
            return None
        return last

    def remember(self, owner: str, report: QuietReport) -> None:
        self._last[owner] = report

    def settle(self, owner: str, inputs: PassInputs) -> None:
        """The pass with ``inputs`` wrote nothing: its report is :attr:`QuietReport.settled`."""
        last = self._last.get(owner)
        if last is not None and last.inputs is inputs and not last.settled:
            self._last[owner] = dataclasses.replace(last, settled=True)

    def forget(self, owner: str) -> None:
        self._last.pop(owner, None)


class ValidatedSpecs:
    """Each resource's spec model, validated again only when its raw spec differs from the one
    validated last (a reconcile and its Grafana step both need it, every pass)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[dict[str, Any], ChargingAnalyticsSpec]] = {}

    def model(self, owner: str, raw: Mapping[str, Any]) -> ChargingAnalyticsSpec:
        """The validated spec (raises pydantic's ``ValidationError`` as validation does).

        The raw spec kept for the comparison is a shallow copy: its values are the watched
        body's own, which Kopf replaces with a newly parsed body on every event and never
        changes in place (a deep copy per tenant was about 3 KB, 3 MB at a thousand tenants). An
        equal spec from a newer body takes the older one's place, so the older body is not kept
        alive for it."""
        last = self._last.get(owner)
        if last is not None and last[0] == raw:
            self._last[owner] = (dict(raw), last[1])
            return last[1]
        spec = ChargingAnalyticsSpec.model_validate(raw)
        self._last[owner] = (dict(raw), spec)
        return spec

    def forget(self, owner: str) -> None:
        self._last.pop(owner, None)
