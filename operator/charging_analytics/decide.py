"""What a reconcile (or the CLI's ``apply``, or a deletion) may do, decided from facts (pure).

The service and the CLI gather the facts (the spec's switches, the tenant's owner as read from the
ledger, the plan, the credentials that could not be resolved, the approval given) and act on the
one :class:`Decision` this module returns; neither writes these rules again. The rules, first
match wins:

=====================  ===========================================================================
``SUSPENDED``          ``spec.suspend``: nothing is read or changed
``NOT_OWNER``          the tenant is claimed by another resource: nothing is changed
``PLAN_ONLY``          ``mode: Plan`` (the CLI's ``plan``): the plan is published, never applied
``UP_TO_DATE``         the plan is empty: nothing to send, so nothing else needs checking
``CREDENTIALS_MISSING``a credential the plan needs could not be resolved: never send a placeholder
``AWAITING_APPROVAL``  the plan is destructive and its hash is not the approved one
``APPLY``              apply the plan (for a teardown, which has no approval step: drop or release)
=====================  ===========================================================================

Facts a caller does not know yet are left out (``plan=None``): :func:`decide` then settles what the
known facts can, and returns ``APPLY`` when none of them stops the work ("go on"). The service asks
before any I/O (suspended?) and again once the ledger is read (owner?), so a suspended or
conflicting resource costs no RisingWave read or credential digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol


class Decision(StrEnum):
    SUSPENDED = "Suspended"
    NOT_OWNER = "NotOwner"
    PLAN_ONLY = "PlanOnly"
    UP_TO_DATE = "UpToDate"
    CREDENTIALS_MISSING = "CredentialsMissing"
    AWAITING_APPROVAL = "AwaitingApproval"
    APPLY = "Apply"


class PlanFacts(Protocol):
    """What the rules read of a plan (:class:`charging_analytics.plan.Plan` has it)."""

    @property
    def empty(self) -> bool: ...

    @property
    def destructive(self) -> bool: ...

    @property
    def hash(self) -> str: ...


@dataclass(frozen=True)
class Facts:
    """Everything :func:`decide` reads; ``me`` is the deciding resource's owner identity."""

    me: str
    suspended: bool = False
    #: the tenant's owner as recorded in the ledger (None: unclaimed, or not read yet)
    owner: str | None = None
    mode: Literal["Apply", "Plan"] = "Apply"
    plan: PlanFacts | None = None
    #: credentials the plan needs that could not be resolved (roles or Secret names)
    unresolved: Sequence[str] = ()
    #: the plan hash a human approved (annotation or ``--approve``)
    approved: str | None = None


def decide(facts: Facts) -> Decision:
    """The one decision the facts allow (rules in the module docstring, first match wins)."""
    if facts.suspended:
        return Decision.SUSPENDED
    if facts.owner is not None and facts.owner != facts.me:
        return Decision.NOT_OWNER
    plan = facts.plan
    if plan is None:
        return Decision.APPLY
    if facts.mode == "Plan":
        return Decision.PLAN_ONLY
    if plan.empty:
        return Decision.UP_TO_DATE
    if facts.unresolved:
        return Decision.CREDENTIALS_MISSING
    if plan.destructive and facts.approved != plan.hash:
        return Decision.AWAITING_APPROVAL
    return Decision.APPLY
