"""The reconcile decisions (``decide.py``): each rule, and the order in which they win."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from charging_analytics.decide import Decision, Facts, decide

ME = "tenants/acme"


@dataclass(frozen=True)
class P:
    """A plan as the rules see it."""

    empty: bool = False
    destructive: bool = False
    hash: str = "sha256:1"


def test_suspended_wins_over_every_other_fact() -> None:
    facts = Facts(me=ME, suspended=True, owner="other/x", plan=P(destructive=True), unresolved=["kafka"])
    assert decide(facts) is Decision.SUSPENDED


@pytest.mark.parametrize("owner", [None, ME])
def test_an_unclaimed_or_own_tenant_is_not_a_conflict(owner: str | None) -> None:
    assert decide(Facts(me=ME, owner=owner, plan=P())) is Decision.APPLY


def test_a_tenant_claimed_by_another_resource_is_never_changed() -> None:
    facts = Facts(me=ME, owner="tenants/other", plan=P(), mode="Plan")
    assert decide(facts) is Decision.NOT_OWNER


def test_without_a_plan_the_known_facts_let_the_work_go_on() -> None:
    # before the plan is built (the service's early questions) and for a teardown
    assert decide(Facts(me=ME)) is Decision.APPLY
    assert decide(Facts(me=ME, owner=ME)) is Decision.APPLY


@pytest.mark.parametrize("plan", [P(), P(empty=True), P(destructive=True)])
def test_plan_mode_only_publishes_whatever_the_plan(plan: P) -> None:
    assert decide(Facts(me=ME, mode="Plan", plan=plan, unresolved=["reader"])) is Decision.PLAN_ONLY


def test_an_empty_plan_is_up_to_date_even_without_every_credential() -> None:
    # nothing would be sent, so no placeholder credential can be
    assert decide(Facts(me=ME, plan=P(empty=True), unresolved=["kafka"])) is Decision.UP_TO_DATE


def test_unresolved_credentials_stop_an_apply_before_approval_is_asked() -> None:
    facts = Facts(me=ME, plan=P(destructive=True), unresolved=["alerts_db"])
    assert decide(facts) is Decision.CREDENTIALS_MISSING


@pytest.mark.parametrize("approved", [None, "sha256:stale"])
def test_a_destructive_plan_waits_for_the_approval_of_its_own_hash(approved: str | None) -> None:
    facts = Facts(me=ME, plan=P(destructive=True, hash="sha256:new"), approved=approved)
    assert decide(facts) is Decision.AWAITING_APPROVAL


def test_an_approved_destructive_plan_and_a_safe_plan_are_applied() -> None:
    approved = Facts(me=ME, plan=P(destructive=True, hash="sha256:new"), approved="sha256:new")
    assert decide(approved) is Decision.APPLY
    assert decide(Facts(me=ME, plan=P(), approved="sha256:unrelated")) is Decision.APPLY


def test_decisions_are_the_enum_values_seen_in_logs() -> None:
    assert {d.value for d in Decision} == {
        "Suspended",
        "NotOwner",
        "PlanOnly",
        "UpToDate",
        "CredentialsMissing",
        "AwaitingApproval",
        "Apply",
    }
