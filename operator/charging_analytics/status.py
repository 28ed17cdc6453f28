"""Status of a ChargingAnalytics resource (pure): conditions, objects[], plan summary.

A status is a :class:`~charging_analytics.spec.ChargingAnalyticsStatus` from end to end: the one
read from a resource is parsed once (:func:`read_status`), a reconcile builds its own from typed
parts, and :func:`published` turns it into the JSON merge patch that is written.

Conditions follow the Kubernetes API conventions and kstatus: ``Ready`` is the summary,
``Reconciling`` says work is in progress, ``Stalled`` says the operator cannot make progress
without a change from a human (or the world), ``Drifted`` says RisingWave differs from the spec.
``lastTransitionTime`` changes only when a condition's status changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, get_args, get_origin

from pydantic import TypeAdapter, ValidationError

from . import constants as c
from .catalog import TenantCatalog
from .plan import Plan, fingerprint
from .render import SHADOW_SUFFIX, DesiredObject
from .spec import ChargingAnalyticsStatus, Condition, ObjectStatus, PlanStatus

CondStatus = Literal["True", "False", "Unknown"]


class Reason(StrEnum):
    """Every reason the operator writes: a condition's ``reason`` or an Event's. The values are
    the wire strings (Argo CD's health check in the chart compares some of them exactly;
    ``tests/chart/test_argocd_health.py`` checks the script against this enum)."""

    # -- converged or waiting (Ready True, or False while waiting for a human) ------------------
    APPLIED = "Applied"
    UP_TO_DATE = "UpToDate"
    PLAN_READY = "PlanReady"
    APPROVAL_PENDING = "ApprovalPending"
    SUSPENDED = "Suspended"
    # -- in progress (Reconciling True) ---------------------------------------------------------
    BACKFILLING = "Backfilling"
    DELETING = "Deleting"
    # -- stalled (Stalled True): the spec or the world must change ------------------------------
    INVALID_SPEC = "InvalidSpec"
    TENANT_CONFLICT = "TenantConflict"
    CREDENTIALS_UNRESOLVED = "CredentialsUnresolved"
    APPLY_FAILED = "ApplyFailed"
    DELETION_BLOCKED = "DeletionBlocked"
    NO_RISINGWAVE_ENDPOINT = "NoRisingWaveEndpoint"
    RISINGWAVE_UNAVAILABLE = "RisingWaveUnavailable"
    RISINGWAVE_TLS_FAILED = "RisingWaveTlsFailed"
    UNSUPPORTED_RISINGWAVE_VERSION = "UnsupportedRisingWaveVersion"
    SECRET_UNREADABLE = "SecretUnreadable"
    SECRET_MISSING = "SecretMissing"
    SECRET_KEY_MISSING = "SecretKeyMissing"
    SECRET_VALUE_INVALID = "SecretValueInvalid"
    SECRET_VALUE_NOT_TEXT = "SecretValueNotText"
    SECRET_NOT_OWNED = "SecretNotOwned"
    SECRET_UNWRITABLE = "SecretUnwritable"
    KAFKA_UNREACHABLE = "KafkaUnreachable"
    KAFKA_AUTHENTICATION_FAILED = "KafkaAuthenticationFailed"
    KAFKA_AUTHORIZATION_FAILED = "KafkaAuthorizationFailed"
    EVENTS_TOPIC_MISSING = "EventsTopicMissing"
    ALERTS_TOPIC_FAILED = "AlertsTopicFailed"
    ALERTS_TABLE_FAILED = "AlertsTableFailed"
    ALERTS_DATABASE_UNAVAILABLE = "AlertsDatabaseUnavailable"
    ALERTS_DATABASE_TLS_FAILED = "AlertsDatabaseTlsFailed"
    # -- the Drifted condition --------------------------------------------------------------------
    IN_SYNC = "InSync"
    DRIFT_DETECTED = "DriftDetected"
    # -- Events only ------------------------------------------------------------------------------
    DRIFT_CORRECTED = "DriftCorrected"
    APPROVAL_REQUIRED = "ApprovalRequired"
    TOPIC_CREATED = "TopicCreated"
    NOT_OWNER = "NotOwner"
    NOTHING_TO_DELETE = "NothingToDelete"
    DELETED = "Deleted"
    FINALIZER_RELEASED = "FinalizerReleased"
    DASHBOARD_CREATED = "DashboardCreated"
    DASHBOARD_UPDATED = "DashboardUpdated"
    DASHBOARD_DELETED = "DashboardDeleted"
    DASHBOARDS_FAILED = "DashboardsFailed"


#: Reasons only Events carry, never a condition.
EVENT_REASONS: frozenset[Reason] = frozenset(
    {
        Reason.DRIFT_CORRECTED,
        Reason.APPROVAL_REQUIRED,
        Reason.TOPIC_CREATED,
        Reason.NOT_OWNER,
        Reason.NOTHING_TO_DELETE,
        Reason.DELETED,
        Reason.FINALIZER_RELEASED,
        Reason.DASHBOARD_CREATED,
        Reason.DASHBOARD_UPDATED,
        Reason.DASHBOARD_DELETED,
        Reason.DASHBOARDS_FAILED,
    }
)
#: Reasons of the Drifted condition.
DRIFT_REASONS: frozenset[Reason] = frozenset({Reason.IN_SYNC, Reason.DRIFT_DETECTED})
#: Reasons a resource is Ready=True with (converged, or Plan mode's plan published).
READY_REASONS: frozenset[Reason] = frozenset({Reason.APPLIED, Reason.UP_TO_DATE, Reason.PLAN_READY})
#: Reasons a resource waits for a human with (Ready=False, neither reconciling nor stalled).
WAITING_REASONS: frozenset[Reason] = frozenset({Reason.APPROVAL_PENDING, Reason.SUSPENDED})
#: Reasons of work in progress (Reconciling=True).
PROGRESS_REASONS: frozenset[Reason] = frozenset({Reason.BACKFILLING, Reason.DELETING})
#: Reasons of a Stalled=True condition: only a change to the spec or the world helps (README's
#: troubleshooting table explains each one).
STALLED_REASONS: frozenset[Reason] = frozenset(Reason) - (
    EVENT_REASONS | DRIFT_REASONS | READY_REASONS | WAITING_REASONS | PROGRESS_REASONS
)


class Origin(StrEnum):
    """What started a reconcile (Kopf's handler, or a Secret the resource references)."""

    CREATE = "create"
    UPDATE = "update"
    RESUME = "resume"
    TIMER = "timer"
    SECRET = "secret"


class Result(StrEnum):
    """How a reconcile ended (the ``result`` label of ``cha_reconcile_duration_seconds``)."""

    OK = "ok"
    BACKFILLING = "backfilling"
    STALLED = "stalled"
    PLAN = "plan"
    APPROVAL = "approval"
    SUSPENDED = "suspended"
    SKIPPED = "skipped"


MAX_PLAN_STATEMENTS = 50
MAX_STATEMENT_CHARS = 4000
MAX_MESSAGE_CHARS = 1024
#: The status schema's bound on objects[].backfillProgress (one definition: the model's).
MAX_PROGRESS_CHARS = next(
    m.max_length for m in ObjectStatus.model_fields["backfill_progress"].metadata if hasattr(m, "max_length")
)


def now_rfc3339() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Cond:
    type: str
    status: CondStatus
    reason: Reason
    message: str = ""


def merge_conditions(
    existing: Iterable[Condition] | None,
    updates: Iterable[Cond],
    generation: int | None,
    now: str | None = None,
) -> list[Condition]:
    """New condition list: ``updates`` replace same-typed entries; transition time kept when the
    status is unchanged; unknown types are preserved; output in the canonical type order."""
    now = now or now_rfc3339()
    current = {cond.type: cond for cond in (existing or [])}
    for u in updates:
        old = current.get(u.type)
        current[u.type] = Condition(
            type=u.type,
            status=u.status,
            reason=str(u.reason),
            message=u.message[:MAX_MESSAGE_CHARS],
            last_transition_time=now if old is None or old.status != u.status else old.last_transition_time,
            observed_generation=generation,
        )
    order = {t: i for i, t in enumerate(c.CONDITION_TYPES)}
    return sorted(current.values(), key=lambda cond: (order.get(cond.type, 99), cond.type))


def ready(reason: Reason, message: str) -> list[Cond]:
    return [
        Cond(c.COND_READY, "True", reason, message),
        Cond(c.COND_RECONCILING, "False", reason, ""),
        Cond(c.COND_STALLED, "False", reason, ""),
    ]


def stalled(reason: Reason, message: str) -> list[Cond]:
    return [
        Cond(c.COND_READY, "False", reason, message),
        Cond(c.COND_RECONCILING, "False", reason, ""),
        Cond(c.COND_STALLED, "True", reason, message),
    ]


def reconciling(reason: Reason, message: str) -> list[Cond]:
    return [
        Cond(c.COND_READY, "False", reason, message),
        Cond(c.COND_RECONCILING, "True", reason, message),
        Cond(c.COND_STALLED, "False", reason, ""),
    ]


def waiting(reason: Reason, message: str) -> list[Cond]:
    """Not ready, not failing, waiting for a human (approval, plan mode, suspend)."""
    return [
        Cond(c.COND_READY, "False", reason, message),
        Cond(c.COND_RECONCILING, "False", reason, ""),
        Cond(c.COND_STALLED, "False", reason, ""),
    ]


def drifted(plan: Plan | None) -> Cond:
    if plan is None or not plan.drift:
        return Cond(c.COND_DRIFTED, "False", Reason.IN_SYNC, "RisingWave matches the spec")
    items = "; ".join(d.describe() for d in plan.drift[:10])
    more = f" (+{len(plan.drift) - 10} more)" if len(plan.drift) > 10 else ""
    return Cond(c.COND_DRIFTED, "True", Reason.DRIFT_DETECTED, items + more)


def plan_status(plan: Plan) -> PlanStatus:
    statements = [s[:MAX_STATEMENT_CHARS] for s in plan.statements()[:MAX_PLAN_STATEMENTS]]
    return PlanStatus(
        hash=plan.hash,
        destructive=plan.destructive,
        actions=len(plan.actions),
        statements=statements,
        truncated=len(plan.actions) > MAX_PLAN_STATEMENTS
        or any(len(s) > MAX_STATEMENT_CHARS for s in plan.statements()),
    )


def objects_status(desired: Sequence[DesiredObject], catalog: TenantCatalog) -> list[ObjectStatus]:
    """One entry per desired object: its state in RisingWave and the recorded hash."""
    out: list[ObjectStatus] = []
    for o in desired:
        if o.kind == "Schema":
            present = catalog.schema_exists
            seen = None
        elif o.kind == "User":
            present = o.name in catalog.users
            seen = None
        else:
            seen = catalog.objects.get(o.name)
            present = seen is not None
        entry = catalog.ledger.get(o.key)
        # a rebuild runs under the shadow name; a first build under the object's own name
        progress = catalog.ddl_progress.get(o.name) or catalog.ddl_progress.get(o.name + SHADOW_SUFFIX)
        if progress is not None:
            state = "Creating"
        elif not present:
            state = "Missing"
        elif entry is None or not o.recorded_as(entry.hash):
            state = "Pending"
        else:
            state = "Ready"
        # only what is known is set: an unset field is absent from the published entry
        extra: dict[str, str] = {}
        if progress is not None:  # RisingWave's text: bounded here so status stays writable
            extra["backfill_progress"] = progress[:MAX_PROGRESS_CHARS]
        if seen is not None and seen.id is not None:  # as read from RisingWave, not derived
            extra["fingerprint"] = fingerprint(seen)
        out.append(
            ObjectStatus.model_validate(
                {"kind": o.kind, "name": o.qualified, "state": state, "hash": o.hash, **extra}
            )
        )
    return out


def fingerprints_from(status: ChargingAnalyticsStatus) -> dict[str, str]:
    """Fingerprints recorded in a previous status, by object name inside the tenant."""
    return {o.name.split(".", 1)[1]: o.fingerprint for o in status.objects if o.fingerprint and "." in o.name}


# --------------------------------------------------------------------------------------------
# The status on the wire
# --------------------------------------------------------------------------------------------


def published(status: ChargingAnalyticsStatus) -> dict[str, Any]:
    """The status as it is written: a JSON merge patch of the fields it sets. A field set to None
    is removed from the resource (``plan`` once applied), a field never set keeps the value the
    resource has (a reconcile that stalls early leaves ``objects`` as they were). Entries carry
    the keys they were built or read with, so an optional field left unset is absent."""
    return status.model_dump(by_alias=True, exclude_unset=True, mode="json")


def read_status(stored: Mapping[str, Any] | None) -> ChargingAnalyticsStatus:
    """The status a resource holds, parsed once: ``published(read_status(s)) == s`` for every
    status the operator writes. A status from an older operator, or a partial one, never fails
    the reconcile: a field the model refuses is read as unset, an entry of a list it refuses is
    left out (the schema the API server holds the patch to is the same model, so such content
    could not be written back), and keys the model does not know are kept."""
    stored = stored if isinstance(stored, Mapping) else {}
    try:
        return ChargingAnalyticsStatus.model_validate(stored)
    except ValidationError:
        pass
    kept: dict[str, Any] = {}
    for key, value in stored.items():
        if _valid({key: value}):
            kept[key] = value
        elif isinstance(value, list) and (entries := _valid_entries(key, value)) is not None:
            kept[key] = entries
    return ChargingAnalyticsStatus.model_validate(kept)


def _valid(fields: Mapping[str, Any]) -> bool:
    try:
        ChargingAnalyticsStatus.model_validate(fields)
    except ValidationError:
        return False
    return True


def _valid_entries(key: str, entries: list[Any]) -> list[Any] | None:
    """The entries of a list field the model accepts (None when ``key`` is no list field, or when
    even those entries do not fit)."""
    field = next((f for f in ChargingAnalyticsStatus.model_fields.values() if f.alias == key), None)
    if field is None or get_origin(field.annotation) is not list:
        return None
    adapter: TypeAdapter[Any] = TypeAdapter(get_args(field.annotation)[0])
    kept = []
    for entry in entries:
        try:
            adapter.validate_python(entry)
        except ValidationError:
            continue
        kept.append(entry)
    return kept if _valid({key: kept}) else None
