"""Execute a plan through the RisingWave client, one autocommitted statement at a time.

Every action is idempotent on its own (``IF NOT EXISTS`` / ``IF EXISTS``). The plan marks its work
in the ledger before the first DDL and records it after the last (:mod:`charging_analytics.ledger`),
so a run interrupted after any statement leaves a state the next plan converges from. DML becomes
visible to reads at RisingWave's next checkpoint; one ``FLUSH`` at the end of the apply (and after
a failure, so the next snapshot sees the marks) forces it, instead of one per write.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from psycopg import sql

from .plan import Action, Plan
from .render import as_text

log = logging.getLogger(__name__)


class StatementRunner(Protocol):
    """The part of the RisingWave client that apply needs."""

    async def execute(self, statement: str, *, sensitive: tuple[str, ...] = ()) -> None: ...


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
    wrote = False  # ledger DML ran that the next snapshot must see
    for action in plan.actions:
        try:
            for stmt in action.pre:
                wrote = True
                await _run(runner, stmt)
            if action.target_reset is not None:
                if target is not None:
                    await target(action.target_reset)
                else:
                    log.warning("not clearing the target table of %s: no connection to it", action.name)
            wrote = wrote or (action.kind == "Ledger" and action.type != "bootstrap")
            await _run(runner, action.statement, action.sensitive)
            for stmt in action.ledger:
                wrote = True
                await _run(runner, stmt)
        except Exception as err:
            if wrote:
                await _flush_after_failure(runner)
            raise ApplyError(action, err, len(result.applied)) from err
        log.info("applied %s", action.describe())
        result.applied.append(action)
        if on_action is not None:
            await on_action(action)
    if wrote:
        try:
            await runner.execute("FLUSH")
        except Exception as err:
            raise ApplyError(plan.actions[-1], err, len(result.applied)) from err
    result.seconds = time.monotonic() - started
    return result


async def _flush_after_failure(runner: StatementRunner) -> None:
    """Best effort: make the marks written so far visible to the next snapshot (a kill skips
    this; the client's first snapshot flushes then)."""
    try:
        await runner.execute("FLUSH")
    except Exception:
        log.debug("FLUSH after a failed statement failed too", exc_info=True)


async def _run(runner: StatementRunner, statement: sql.Composable, sensitive: tuple[str, ...] = ()) -> None:
    # ``sensitive``: the credential values the statement embeds, which the runner keeps out of any
    # error it reports
    await runner.execute(as_text(statement), sensitive=sensitive)
