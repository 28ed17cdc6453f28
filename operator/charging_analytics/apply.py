"""Execute a plan through the RisingWave client, one autocommitted statement at a time.

Every action is idempotent on its own (``IF NOT EXISTS`` / ``IF EXISTS``), and its ledger rows are
written only after its DDL succeeded. A run interrupted after any statement therefore leaves a
state the next plan converges from: an object without a ledger row is rebuilt, a leftover shadow
sends its subgraph down the recreate path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from psycopg import sql

from .catalog import CatalogSnapshot
from .plan import Action, Plan
from .render import as_text

log = logging.getLogger(__name__)


class StatementRunner(Protocol):
    """The part of the RisingWave client that apply needs."""

    async def execute(self, statement: str, *, sensitive: tuple[str, ...] = ()) -> None: ...

    async def snapshot(self) -> CatalogSnapshot: ...


class ApplyError(RuntimeError):
    """An action failed; ``done`` actions were applied before it."""

    def __init__(self, action: Action, cause: BaseException, done: int) -> None:
        super().__init__(f"{action.type} {action.kind} {action.name} failed: {cause}")
        self.action = action
        self.cause = cause
        self.done = done


@dataclass
class ApplyResult:
    applied: list[Action] = field(default_factory=list)
    seconds: float = 0.0


#: Runs a statement on a sink's target database (the PostgreSQL alert table).
TargetRunner = Callable[[sql.Composable], Awaitable[None]]


async def apply_plan(
    runner: StatementRunner,
    plan: Plan,
    *,
    on_action: Callable[[Action], Awaitable[None]] | None = None,
    target: TargetRunner | None = None,
) -> ApplyResult:
    """Run every action of ``plan`` in order; raise :class:`ApplyError` on the first failure.

    ``target`` runs an action's ``target_reset`` (clearing the alert table before its sink is
    recreated); without one the reset is skipped with a warning (the table is not managed here).
    """
    result = ApplyResult()
    started = time.monotonic()
    for action in plan.actions:
        try:
            for stmt in action.pre:
                await _run(runner, stmt)
            if action.pre:
                await runner.execute("FLUSH")
            if action.target_reset is not None:
                if target is not None:
                    await target(action.target_reset)
                else:
                    log.warning("not clearing the target table of %s: no connection to it", action.name)
            await _run(runner, action.statement, action.sensitive)
            for stmt in action.ledger:
                await _run(runner, stmt)
            if action.ledger or action.kind == "Ledger":
                # DML becomes visible at the next checkpoint; FLUSH makes the ledger write visible
                # to the next snapshot.
                await runner.execute("FLUSH")
        except Exception as err:
            raise ApplyError(action, err, len(result.applied)) from err
        log.info("applied %s", action.describe())
        result.applied.append(action)
        if on_action is not None:
            await on_action(action)
    result.seconds = time.monotonic() - started
    return result


async def _run(runner: StatementRunner, statement: sql.Composable, sensitive: tuple[str, ...] = ()) -> None:
    # ``sensitive``: the credential values the statement embeds, which the runner keeps out of any
    # error it reports
    await runner.execute(as_text(statement), sensitive=sensitive)
