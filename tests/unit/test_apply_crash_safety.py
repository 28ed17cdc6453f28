"""apply's crash-safety rule: the ledger marks the work before the first DDL and records it after
the last; the marks are made visible (FLUSH) after a failure as after success, so an apply stopped
at any statement leaves a state the next plan converges from (``test_plan.py`` replays those
states); nothing runs after a failed statement but that FLUSH."""

from __future__ import annotations

import asyncio

import pytest

from charging_analytics.apply import ApplyError, apply_plan
from charging_analytics.catalog import TenantCatalog
from charging_analytics.plan import Plan, PlanOptions, build_plan
from charging_analytics.render import as_text
from tests.unit.test_plan import BASE, OWNER, desired


class Runner:
    """Records every statement; fails the ``fail_at``-th one (0-based), as RisingWave would."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.statements: list[str] = []
        self.fail_at = fail_at

    async def execute(self, statement: str, *, sensitive: tuple[str, ...] = ()) -> None:
        index = len(self.statements)
        self.statements.append(statement)
        if index == self.fail_at:
            raise RuntimeError(f"statement {index} refused")


def fresh_plan() -> Plan:
    catalog = TenantCatalog(tenant=BASE.tenant, schema_exists=False)
    return build_plan(desired(BASE), catalog, PlanOptions(owner=OWNER, ledger_exists=False))


def ddl_texts(plan: Plan) -> list[str]:
    return [as_text(a.statement) for a in plan.actions if a.kind != "Ledger"]


def is_ledger_write(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("INSERT", "DELETE", "UPDATE"))


def test_a_successful_apply_marks_before_the_first_ddl_records_after_the_last_and_flushes_once() -> None:
    plan = fresh_plan()
    runner = Runner()
    result = asyncio.run(apply_plan(runner, plan))
    ddl = set(ddl_texts(plan))
    first_ddl = next(i for i, s in enumerate(runner.statements) if s in ddl)
    last_ddl = max(i for i, s in enumerate(runner.statements) if s in ddl)
    assert any(is_ledger_write(s) for s in runner.statements[:first_ddl]), "work marked before DDL"
    assert any(is_ledger_write(s) for s in runner.statements[last_ddl + 1 :]), "work recorded after"
    assert runner.statements.count("FLUSH") == 1
    assert runner.statements[-1] == "FLUSH"
    assert len(result.applied) == len(plan.actions)


@pytest.mark.parametrize("where", ["first DDL", "middle DDL", "last DDL"])
def test_a_failed_statement_stops_the_apply_and_flushes_the_marks_written_so_far(where: str) -> None:
    plan = fresh_plan()
    clean = Runner()
    asyncio.run(apply_plan(clean, plan))
    ddl_at = [i for i, s in enumerate(clean.statements) if s in set(ddl_texts(plan))]
    fail_at = {"first DDL": ddl_at[0], "middle DDL": ddl_at[len(ddl_at) // 2], "last DDL": ddl_at[-1]}[where]
    runner = Runner(fail_at=fail_at)
    with pytest.raises(ApplyError) as failed:
        asyncio.run(apply_plan(runner, plan))
    # exactly the statements up to the failed one, then the FLUSH of the marks: nothing else
    assert runner.statements[: fail_at + 1] == clean.statements[: fail_at + 1]
    assert runner.statements[fail_at + 1 :] == ["FLUSH"]
    failed_action = failed.value.action
    assert as_text(failed_action.statement) == clean.statements[fail_at]
    assert failed.value.done == plan.actions.index(failed_action)


def test_a_failure_before_anything_was_written_sends_no_flush() -> None:
    plan = fresh_plan()
    runner = Runner(fail_at=0)  # the ledger table's bootstrap DDL: no mark written yet
    assert plan.actions[0].kind == "Ledger"
    assert plan.actions[0].type == "bootstrap"
    with pytest.raises(ApplyError) as failed:
        asyncio.run(apply_plan(runner, plan))
    assert runner.statements == [as_text(plan.actions[0].statement)]
    assert failed.value.done == 0
