"""Plan: desired objects vs a catalog snapshot -> ordered actions (pure).

RisingWave has no transactional DDL and no ``CREATE OR REPLACE`` for streaming objects
(docs/risingwave.md §10, §13), so a change is a sequence of single statements, each idempotent, each
followed by a ledger write. The plan is built in phases:

1. bootstrap — the operator's ledger table and the tenant ownership row;
2. build — missing objects, and *shadows* (``name__next``) of changed views (zero-downtime path);
3. swap — ``ALTER … SWAP WITH`` each shadow into place (RisingWave >= 2.2), dependency order;
4. drop — what must go, dependents first: sinks of the rebuilt subgraph (they stay bound to the
   old view otherwise), the old versions now under the shadow names, removed objects, and, on
   the recreate path, the changed objects themselves;
5. create — sinks of the rebuilt subgraph and, on the recreate path, every rebuilt object.

A change replaces the changed object and everything that depends on it, and nothing else. Views
use the shadow/swap path; a changed source (or a shadow left over by an interrupted run) takes the
recreate path for its subgraph. Dropping or recreating the source or the schema is destructive.

The ledger costs a plan O(1) statements (:mod:`charging_analytics.ledger`): one write of marks
before the first DDL (the tenant claim travels in it), and one delete and one write of records
after the last. An interrupted apply leaves the marks, which the next plan reads back as the
operator's own unfinished work: finished creations are recorded, missing ones created, and
nothing the operator created in that apply counts as destructive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, NamedTuple, TypeVar

from psycopg import sql
from psycopg.sql import Composable

from . import ledger
from .catalog import LedgerEntry, ObjectKind, ObservedObject, TenantCatalog, definition_fingerprint
from .ledger import GRANTED, OWNER_ROW, PENDING
from .render import (
    SCHEMA_KEY,
    SHADOW_SUFFIX,
    DesiredObject,
    as_text,
    drop_statement,
    rebind,
    swap_statement,
)

ActionType = Literal["bootstrap", "claim", "create", "shadow", "swap", "drop", "update", "grant", "record"]
DESTRUCTIVE_KINDS: frozenset[str] = frozenset({"Source", "Schema"})
#: Kinds changed in place rather than rebuilt.
IN_PLACE_KINDS: frozenset[str] = frozenset({"Secret", "User"})


@dataclass(frozen=True)
class Action:
    """One statement (DDL, or a ledger write for ``kind="Ledger"``) plus the ledger writes that
    precede and follow it (the planner batches them onto the first and the last action)."""

    type: ActionType
    kind: ObjectKind | Literal["Ledger"]
    name: str  # qualified name the statement acts on
    sql: str  # display form (credentials redacted)
    reason: str
    destructive: bool = False
    statement: Composable = field(repr=False, compare=False, default_factory=lambda: sql.SQL(""))
    ledger: tuple[Composable, ...] = field(repr=False, compare=False, default=())
    #: Ledger writes that run before the statement (marking work in progress).
    pre: tuple[Composable, ...] = field(repr=False, compare=False, default=())
    #: Credential values ``statement`` embeds (from render), so the client can keep every one of
    #: them out of the error it reports if RisingWave rejects the statement.
    sensitive: tuple[str, ...] = field(repr=False, compare=False, default=())
    #: Runs on the sink's target database right before the statement (clears the alert table).
    target_reset: Composable | None = field(repr=False, compare=False, default=None)

    def describe(self) -> str:
        flag = " [destructive]" if self.destructive else ""
        return f"{self.type:<9} {self.kind} {self.name}{flag} — {self.reason}"


DriftProblem = Literal["missing", "unrecorded", "modified", "unexpected", "kind-mismatch", "leftover-shadow"]


@dataclass(frozen=True)
class Drift:
    name: str
    kind: str
    problem: DriftProblem

    def describe(self) -> str:
        return f"{self.kind} {self.name} is {self.problem.replace('-', ' ')}"


@dataclass(frozen=True)
class Plan:
    tenant: str
    actions: tuple[Action, ...]
    drift: tuple[Drift, ...]
    #: Objects whose desired definition differs from the recorded one (spec changes).
    changed: tuple[str, ...]
    #: The tenant's ledger once every action has run (what the apply's own writes leave).
    ledger_after: Mapping[str, LedgerEntry] | None = field(default=None, compare=False)
    #: The owner row once every action has run.
    owner_after: str | None = None

    @property
    def empty(self) -> bool:
        return not self.actions

    @property
    def destructive(self) -> bool:
        return any(a.destructive for a in self.actions)

    @property
    def hash(self) -> str:
        """Identity of the plan (display statements in order); approvals carry it."""
        h = hashlib.sha256()
        for a in self.actions:
            h.update(a.type.encode())
            h.update(b"\0")
            h.update(a.sql.encode())
            h.update(b"\n")
        return "sha256:" + h.hexdigest()[:24]

    def statements(self) -> list[str]:
        return [a.sql for a in self.actions]

    def summary(self) -> str:
        if self.empty:
            return "no changes"
        counts: dict[str, int] = {}
        for a in self.actions:
            counts[a.type] = counts.get(a.type, 0) + 1
        return ", ".join(f"{n} {t}" for t, n in counts.items())


@dataclass(frozen=True)
class PlanOptions:
    #: Rebuild changed views as shadows and swap them in (RisingWave >= 2.2).
    zero_downtime: bool = True
    #: Identity written to the ledger's owner row ("namespace/name").
    owner: str | None = None
    #: Fingerprints of RisingWave's own definitions, as observed after the last apply; an object
    #: whose current fingerprint differs was changed behind the operator's back.
    expected_fingerprints: Mapping[str, str] = field(default_factory=dict)
    #: Whether the ledger table exists (from the snapshot).
    ledger_exists: bool = True
    #: Repair drift (``onDrift: Correct``); with False drift is only reported and spec changes
    #: are still applied.
    correct_drift: bool = True


def fingerprint(obj: ObservedObject) -> str:
    """Identity of an object as RisingWave stores it (id + normalised definition)."""
    return obj.fingerprint or definition_fingerprint(obj.kind, obj.id, None)


def _closure(roots: Iterable[str], dependents: Mapping[str, set[str]]) -> set[str]:
    out: set[str] = set()
    stack = list(roots)
    while stack:
        key = stack.pop()
        if key in out:
            continue
        out.add(key)
        stack.extend(dependents.get(key, ()))
    return out


_K = TypeVar("_K", str, "_DropKey")


def _reverse_topological(keys: set[_K], deps: Callable[[_K], Iterable[_K]]) -> list[_K]:
    """Order ``keys`` dependents-first using what each depends on (ties broken by key)."""
    order: list[_K] = []
    seen: set[_K] = set()

    def visit(k: _K) -> None:
        if k in seen:
            return
        seen.add(k)
        for d in sorted(deps(k)):
            if d in keys:
                visit(d)
        order.append(k)

    for k in sorted(keys):
        visit(k)
    return list(reversed(order))


def build_plan(
    desired: Sequence[DesiredObject],
    catalog: TenantCatalog,
    options: PlanOptions | None = None,
) -> Plan:
    """Assess every desired object once, then schedule the phases (see the module docstring)."""
    ctx = _Context.of(desired, catalog, options or PlanOptions())
    verdicts = _assess(ctx)
    scope = _scope(ctx, verdicts)
    schedule = _Schedule(ctx, verdicts, scope)
    schedule.bootstrap()
    schedule.build()
    schedule.swap()
    schedule.drop()
    schedule.create()
    schedule.grant()
    return schedule.finish()


@dataclass(frozen=True)
class _Context:
    """What the planner reads: the desired objects (in dependency order) and the catalog."""

    desired: Sequence[DesiredObject]
    catalog: TenantCatalog
    options: PlanOptions
    by_key: Mapping[str, DesiredObject]
    dependents: Mapping[str, set[str]]

    @classmethod
    def of(cls, desired: Sequence[DesiredObject], catalog: TenantCatalog, options: PlanOptions) -> _Context:
        dependents: dict[str, set[str]] = {}
        for o in desired:
            for d in o.depends_on:
                dependents.setdefault(d, set()).add(o.key)
        return cls(desired, catalog, options, {o.key: o for o in desired}, dependents)

    @property
    def tenant(self) -> str:
        return self.catalog.tenant

    def observed(self, key: str) -> ObservedObject | None:
        """The object as it exists in RisingWave now, or None: the one "is it present" rule."""
        catalog = self.catalog
        if key == SCHEMA_KEY:
            return ObservedObject("Schema", "", catalog.tenant) if catalog.schema_exists else None
        wanted = self.by_key.get(key)
        entry = catalog.ledger.get(key)
        if (wanted is not None and wanted.kind == "User") or (entry is not None and entry.kind == "User"):
            return ObservedObject("User", "", key) if key in catalog.users else None
        return catalog.objects.get(key)


@dataclass
class _Verdicts:
    """The assessment of every object: what must be (re)built and why."""

    drift: list[Drift] = field(default_factory=list)
    #: Qualified names whose desired definition differs from the recorded one.
    changed: list[str] = field(default_factory=list)
    #: Keys whose subgraph is rebuilt (or, for in-place kinds, updated).
    roots: set[str] = field(default_factory=set)
    #: Keys that must take the drop-and-recreate path.
    force_recreate: set[str] = field(default_factory=set)
    drifted: set[str] = field(default_factory=set)
    #: The operator's own unfinished work from an interrupted apply.
    resumed: set[str] = field(default_factory=set)
    #: Objects an interrupted apply finished building whose record it did not write.
    finished: set[str] = field(default_factory=set)
    #: Ledger entries with finished marks read as what they record.
    effective: dict[str, LedgerEntry] = field(default_factory=dict)
    #: Shadow objects (``name__next``) left by an interrupted rebuild.
    leftovers: list[str] = field(default_factory=list)

    def drifted_object(
        self, o: DesiredObject, problem: DriftProblem, correct: bool, recreate: bool = False
    ) -> None:
        self.drift.append(Drift(o.qualified, o.kind, problem))
        self.drifted.add(o.key)
        if correct:
            self.roots.add(o.key)
            if recreate:
                self.force_recreate.add(o.key)

    def changed_object(self, o: DesiredObject) -> None:
        self.changed.append(o.qualified)
        self.roots.add(o.key)


def _assess(ctx: _Context) -> _Verdicts:
    verdicts = _Verdicts(effective=dict(ctx.catalog.ledger))
    for o in ctx.desired:
        _assess_one(ctx, verdicts, o)
    # Leftover shadows (an interrupted rebuild) force the recreate path for their base object.
    objects = ctx.catalog.objects
    verdicts.leftovers = [n for n in objects if n.endswith(SHADOW_SUFFIX)]
    for name in verdicts.leftovers:
        base = name[: -len(SHADOW_SUFFIX)]
        verdicts.drift.append(Drift(f"{ctx.tenant}.{name}", objects[name].kind, "leftover-shadow"))
        if base in ctx.by_key:
            verdicts.roots.add(base)
            verdicts.force_recreate.add(base)
    return verdicts


def _assess_one(ctx: _Context, v: _Verdicts, o: DesiredObject) -> None:
    """New, resumed, drifted, changed or unchanged: one object's verdict."""
    correct = ctx.options.correct_drift
    seen = ctx.observed(o.key)
    entry = ctx.catalog.ledger.get(o.key)
    if entry is not None:
        mark = ledger.decode(entry.hash)
        unfinished = mark.state == "pending" or (
            mark.state in ("creating", "replacing")
            and (seen is None or (mark.state == "replacing" and seen.id == mark.replaces))
        )
        if unfinished:
            v.roots.add(o.key)  # the operator's own unfinished work, not drift
            v.resumed.add(o.key)
            return
        if mark.state != "recorded":  # built by the interrupted apply: it is what it recorded
            entry = v.effective[o.key] = replace(entry, hash=mark.value)
            v.finished.add(o.key)
    if seen is None:
        if entry is not None and o.recorded_as(entry.hash):
            v.drifted_object(o, "missing", correct)
        else:
            v.roots.add(o.key)  # new in the spec (or changed while it was gone)
    elif seen.kind != o.kind:
        v.drifted_object(o, "kind-mismatch", correct, recreate=True)
    elif entry is None:
        v.drifted_object(o, "unrecorded", correct)
    elif _modified(ctx, o, seen):
        v.drifted_object(o, "modified", correct)
        if not o.recorded_as(entry.hash):
            v.changed_object(o)
    elif not o.recorded_as(entry.hash):
        v.changed_object(o)


def _modified(ctx: _Context, o: DesiredObject, seen: ObservedObject) -> bool:
    """Changed behind the operator's back: RisingWave's definition is not the one last applied."""
    expected = ctx.options.expected_fingerprints.get(o.key)
    return expected is not None and o.kind != "Schema" and expected != fingerprint(seen)


@dataclass(frozen=True)
class _Scope:
    """What the plan touches: in-place updates, the rebuilt subgraph, removed objects."""

    updates: list[str]
    dirty: set[str]
    removed: list[LedgerEntry]
    recreate_path: bool


def _scope(ctx: _Context, v: _Verdicts) -> _Scope:
    updates = [k for k in v.roots if _in_place(ctx, v, k)]
    dirty = _closure((r for r in v.roots if r not in updates), ctx.dependents)
    catalog, by_key = ctx.catalog, ctx.by_key
    # Objects the ledger knows that are no longer desired; unknown objects are only reported.
    removed = [e for k, e in catalog.ledger.items() if _obsolete(ctx, k)]
    managed = set(catalog.ledger) | set(by_key)
    for name, obj in catalog.objects.items():
        if name not in managed and not name.endswith(SHADOW_SUFFIX):
            v.drift.append(Drift(obj.qualified, obj.kind, "unexpected"))
    recreate_path = (not ctx.options.zero_downtime) or any(
        k in v.force_recreate or not by_key[k].swappable
        for k in dirty
        if ctx.observed(k) is not None and by_key[k].kind != "Sink"
    )
    return _Scope(updates, dirty, removed, recreate_path)


def _in_place(ctx: _Context, v: _Verdicts, key: str) -> bool:
    """Secrets and users change in place (ALTER SECRET / ALTER USER): nothing depends on them
    being rebuilt. An object whose only change is a rotated embedded credential, and that has
    an in-place statement for it (a Kafka source on RisingWave >= 2.6), is updated too."""
    o, entry = ctx.by_key[key], v.effective.get(key)
    if ctx.observed(key) is None or o.update_statement is None:
        return False
    if o.kind in IN_PLACE_KINDS:
        return True
    return (
        entry is not None
        and entry.hash.partition("~")[0] == o.hash
        and not o.recorded_as(entry.hash)
        and key not in v.force_recreate
        and key not in v.drifted
        and key not in v.resumed
    )


def _obsolete(ctx: _Context, key: str) -> bool:
    # a user's grants row goes with the user (forgotten by the user's drop)
    return key not in ctx.by_key and key != SCHEMA_KEY and ledger.records_an_object(key)


class _DropKey(NamedTuple):
    """What a drop is about: a desired or recorded object (by its key), or a shadow left over by
    an interrupted rebuild (by its name; it has no key of its own). Leftovers order after the
    objects, so, dependents first, they are dropped before anything else."""

    leftover: bool
    key: str


@dataclass(frozen=True)
class _Drop:
    """An object to drop in phase 4."""

    key: str
    leftover: bool
    kind: ObjectKind
    name: str
    reason: str

    @property
    def order_key(self) -> _DropKey:
        return _DropKey(True, self.name) if self.leftover else _DropKey(False, self.key)


class _Schedule:
    """The phases, each appending actions and ledger rows (marks before the first DDL, records
    and forgets after the last)."""

    def __init__(self, ctx: _Context, verdicts: _Verdicts, scope: _Scope) -> None:
        self.ctx, self.v, self.scope = ctx, verdicts, scope
        self.actions: list[Action] = []
        self.marks: list[ledger.Row] = []
        self.records: list[ledger.Row] = []
        self.forgets: list[str] = []
        self.shadows: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.swapped: list[str] = []
        self.rebuild_later: list[str] = []
        options, catalog = ctx.options, ctx.catalog
        self.claim = options.owner is not None and catalog.owner != options.owner
        self.owner_after = options.owner if self.claim else catalog.owner

    # -- helpers ----------------------------------------------------------------------------------

    def act(
        self,
        type_: ActionType,
        o_kind: ObjectKind | Literal["Ledger"],
        name: str,
        statement: sql.Composable,
        display: sql.Composable,
        reason: str,
        *,
        destructive: bool = False,
        then: tuple[sql.Composable, ...] = (),
        sensitive: tuple[str, ...] = (),
    ) -> None:
        text = as_text(display)
        self.actions.append(
            Action(type_, o_kind, name, text, reason, destructive, statement, then, (), sensitive)
        )

    def record(self, o: DesiredObject) -> None:
        self.records.append(ledger.Row(o.key, o.kind, o.ledger_value, o.depends_on))

    def mark_creating(self, o: DesiredObject) -> None:
        self.marks.append(ledger.Row(o.key, o.kind, ledger.creating(o.ledger_value), o.depends_on))

    def mark_replacing(self, o: DesiredObject) -> None:
        seen = self.ctx.observed(o.key)
        old_id = seen.id if seen is not None else None
        # until the old object is gone, drops must still be ordered by what it reads
        old = self.ctx.catalog.ledger.get(o.key)
        deps = tuple(dict.fromkeys((*(old.depends_on if old else ()), *o.depends_on)))
        self.marks.append(ledger.Row(o.key, o.kind, ledger.replacing(old_id, o.ledger_value), deps))

    def forget(self, key: str) -> None:
        entry = self.ctx.catalog.ledger.get(key)
        user = entry is not None and entry.kind == "User"
        self.forgets.extend([key] + ([ledger.grants_row(key)] if user else []))

    def reason_for(self, key: str) -> str:
        v = self.v
        if self.ctx.observed(key) is None:
            return "missing"
        if key in v.force_recreate:
            return "must be rebuilt"
        if key in v.resumed:
            return "resuming an interrupted apply"
        if key in v.roots:
            return "definition changed" if self.ctx.by_key[key].qualified in v.changed else "drifted"
        return "depends on a rebuilt object"

    # -- phases -----------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """1. The operator's ledger table, when the endpoint has none yet."""
        if not self.ctx.options.ledger_exists:
            for stmt in ledger.bootstrap():
                self.act("bootstrap", "Ledger", ledger.QUALIFIED, stmt, stmt, "operator ledger is missing")

    def build(self) -> None:
        """2. In-place updates, missing objects and shadows, in dependency order; what takes the
        recreate path (and every sink) is only noted for phase 5."""
        scope = self.scope
        for o in self.ctx.desired:
            if o.key in scope.updates:
                assert o.update_statement is not None
                assert o.update_display is not None
                self.act(
                    "update", o.kind, o.qualified, o.update_statement, o.update_display,
                    "credential rotated", sensitive=o.sensitive,
                )  # fmt: skip
                self.record(o)
            elif o.key not in scope.dirty:
                continue
            elif scope.recreate_path or o.kind == "Sink":
                self.rebuild_later.append(o.key)  # built in phase 5, after what it replaces is dropped
            elif self.ctx.observed(o.key) is None:
                self.mark_creating(o)
                self.act(
                    "create", o.kind, o.qualified, rebind(o.statement, self.shadows),
                    rebind(o.display, self.shadows), self.reason_for(o.key), sensitive=o.sensitive,
                )  # fmt: skip
                self.record(o)
            else:
                self.build_shadow(o)

    def build_shadow(self, o: DesiredObject) -> None:
        shadow = o.name + SHADOW_SUFFIX
        self.shadows[(o.schema, o.name)] = (o.schema, shadow)
        self.act(
            "shadow",
            o.kind,
            f"{o.schema}.{shadow}",
            rebind(o.statement, self.shadows),
            rebind(o.display, self.shadows),
            f"build the new {o.name} beside the old ({self.reason_for(o.key)})",
            sensitive=o.sensitive,
        )
        self.swapped.append(o.key)

    def swap(self) -> None:
        """3. ``ALTER … SWAP WITH`` each shadow into place, in dependency order."""
        for key in self.swapped:
            o = self.ctx.by_key[key]
            stmt = swap_statement(o.kind, o.schema, o.name, o.name + SHADOW_SUFFIX)
            self.act("swap", o.kind, o.qualified, stmt, stmt, "switch readers to the new definition")
            self.record(o)

    def drops(self) -> list[_Drop]:
        """What phase 4 drops: objects rebuilt on the recreate path, swapped-out old versions,
        objects no longer in the spec and leftover shadows."""
        ctx, out = self.ctx, []
        for key in self.rebuild_later:
            seen = ctx.observed(key)
            if seen is not None:
                out.append(_Drop(key, False, seen.kind, seen.name, f"rebuild ({self.reason_for(key)})"))
        for key in self.swapped:
            out.append(
                _Drop(key, False, ctx.by_key[key].kind, key + SHADOW_SUFFIX, "old version, swapped out")
            )
        for e in self.scope.removed:
            seen = ctx.observed(e.name)
            if seen is not None:
                out.append(_Drop(e.name, False, seen.kind, seen.name, "no longer in the spec"))
        for name in self.v.leftovers:
            kind = ctx.catalog.objects[name].kind
            out.append(_Drop(name, True, kind, name, "left over by an interrupted rebuild"))
        return out

    def drop(self) -> None:
        """4. Drop, dependents first (by the dependencies recorded when the objects were built)."""
        ctx, tenant = self.ctx, self.ctx.tenant
        old_deps: dict[str, list[str]] = {k: list(e.depends_on) for k, e in ctx.catalog.ledger.items()}
        for o in ctx.desired:
            old_deps.setdefault(o.key, list(o.depends_on))
        by_order = {d.order_key: d for d in self.drops()}  # a later reason for a key wins
        rebuilding = set(self.rebuild_later)
        removed_keys = {e.name for e in self.scope.removed}

        def depends_on(k: _DropKey) -> list[_DropKey]:
            return [] if k.leftover else [_DropKey(False, d) for d in old_deps.get(k.key, ())]

        for order_key in _reverse_topological(set(by_order), depends_on):
            d = by_order[order_key]
            stmt = drop_statement(d.kind, tenant, d.name, cascade=d.leftover)
            if not d.leftover and d.key in rebuilding:
                self.mark_replacing(ctx.by_key[d.key])
            destructive = d.kind in DESTRUCTIVE_KINDS
            self.act("drop", d.kind, f"{tenant}.{d.name}", stmt, stmt, d.reason, destructive=destructive)
            if not d.leftover and d.key in removed_keys:
                self.forget(d.key)
        for e in self.scope.removed:
            if ctx.observed(e.name) is None:
                self.forget(e.name)  # an object that is gone: only its row is left to forget

    def create(self) -> None:
        """5. Create what was dropped for rebuilding (and every sink), in dependency order."""
        for key in self.rebuild_later:
            o = self.ctx.by_key[key]
            exists = self.ctx.observed(key) is not None
            if not exists:
                self.mark_creating(o)  # (an object being rebuilt was marked at its drop)
            clears = " (clears its target table first)" if o.target_reset is not None else ""
            self.act(
                "create", o.kind, o.qualified, o.statement, o.display, self.reason_for(key) + clears,
                destructive=o.kind in DESTRUCTIVE_KINDS and exists, sensitive=o.sensitive,
            )  # fmt: skip
            if o.target_reset is not None:
                self.actions[-1] = replace(self.actions[-1], target_reset=o.target_reset)
            self.record(o)

    def grant(self) -> None:
        """6. ``GRANT ... ON ALL ... IN SCHEMA`` covers only what exists, so re-grant after any
        view was (re)built and when the user is new. The grants have a ledger row of their own,
        marked pending before the first change, so an interruption before them re-grants."""
        rebuilt = any(a.type in ("create", "shadow", "swap") for a in self.actions)
        scope = self.scope
        for o in self.ctx.desired:
            if not o.grants:
                continue
            key = ledger.grants_row(o.name)
            entry = self.ctx.catalog.ledger.get(key)
            current = entry is not None and entry.hash == GRANTED
            if not (rebuilt or o.key in scope.dirty or o.key in scope.updates or not current):
                continue
            self.marks.append(ledger.Row(key, o.kind, PENDING))
            for stmt in o.grants:
                self.act("grant", o.kind, o.qualified, stmt, stmt, "read access to the tenant's views")
            self.records.append(ledger.Row(key, o.kind, GRANTED))

    def finish(self) -> Plan:
        """7. The ledger writes: marks before the first DDL (with the claim), records after the
        last; then the plan and the ledger it leaves."""
        self.record_finished()
        work = self.write_marks()
        self.write_tail(work)
        ctx = self.ctx
        tenant = ctx.tenant
        after = {k: e for k, e in ctx.catalog.ledger.items() if k not in set(self.forgets)}
        for row in ledger.unique([*self.marks, *self.records]):
            if row.key != OWNER_ROW:
                after[row.key] = LedgerEntry(tenant, row.key, row.kind, row.value, row.depends_on)  # type: ignore[arg-type]
        return Plan(
            tenant=tenant,
            actions=tuple(self.actions),
            drift=tuple(self.v.drift),
            changed=tuple(self.v.changed),
            ledger_after=after,
            owner_after=self.owner_after,
        )

    def record_finished(self) -> None:
        """Objects an interrupted apply built and nothing here rebuilt: record what they are."""
        recorded = {r.key for r in self.records}
        for o in self.ctx.desired:
            if o.key in self.v.finished and o.key not in recorded:
                entry = self.ctx.catalog.ledger[o.key]
                value = ledger.decode(entry.hash).value
                deps = o.depends_on if o.recorded_as(value) else entry.depends_on
                self.records.append(ledger.Row(o.key, o.kind, value, deps))

    def write_marks(self) -> bool:
        """Put the marks (and the claim) before the first DDL; True when the plan has work."""
        owner = self.ctx.options.owner
        if self.claim:
            assert owner is not None
            self.marks.insert(0, ledger.Row(OWNER_ROW, "Tenant", owner))
        actions = self.actions
        work = any(a.type != "bootstrap" for a in actions)
        if not self.marks:
            return work
        marks = ledger.write(self.ctx.tenant, self.marks)
        if self.claim:
            reason = f"record {owner} as the tenant's owner"
            claim = Action("claim", "Ledger", self.ctx.tenant, as_text(marks), reason, statement=marks)
            actions.insert(sum(a.type == "bootstrap" for a in actions), claim)
            return True
        first = next(i for i, a in enumerate(actions) if a.type != "bootstrap")
        actions[first] = replace(actions[first], pre=(marks, *actions[first].pre))
        return work

    def write_tail(self, work: bool) -> None:
        """Forgets and records after the last statement, or as an action of their own."""
        tenant = self.ctx.tenant
        tail: list[sql.Composable] = []
        if self.forgets:
            tail.append(ledger.forget(tenant, self.forgets))
        if self.records:
            tail.append(ledger.write(tenant, self.records))
        if tail and work:
            self.actions[-1] = replace(self.actions[-1], ledger=(*self.actions[-1].ledger, *tail))
        elif tail:
            head, *rest = tail
            reason = (
                "record objects an interrupted apply built"
                if self.records
                else "forget objects that are gone"
            )
            self.act(
                "record" if self.records else "drop", "Ledger", tenant, head, head, reason, then=tuple(rest)
            )


def teardown_plan(catalog: TenantCatalog, *, orphan_ledger_only: bool = False) -> Plan:
    """Drop everything the tenant owns, dependents first (``deletionPolicy: Delete``)."""
    tenant = catalog.tenant
    actions: list[Action] = []
    if not orphan_ledger_only:
        deps = {k: list(e.depends_on) for k, e in catalog.ledger.items()}
        keys = {k for k in catalog.ledger if k not in (SCHEMA_KEY, OWNER_ROW) and k in catalog.objects}
        shadows = {n for n in catalog.objects if n.endswith(SHADOW_SUFFIX)}
        for name in sorted(shadows):
            kind = catalog.objects[name].kind
            stmt = drop_statement(kind, tenant, name, cascade=True)
            actions.append(
                Action(
                    "drop",
                    kind,
                    f"{tenant}.{name}",
                    as_text(stmt),
                    "leftover shadow",
                    kind in DESTRUCTIVE_KINDS,
                    stmt,
                )
            )
        for key in _reverse_topological(keys, lambda k: deps.get(k, ())):
            kind = catalog.objects[key].kind
            stmt = drop_statement(kind, tenant, key)
            actions.append(
                Action(
                    "drop",
                    kind,
                    f"{tenant}.{key}",
                    as_text(stmt),
                    "tenant deleted",
                    kind in DESTRUCTIVE_KINDS,
                    stmt,
                )
            )
        for key, entry in sorted(catalog.ledger.items()):
            if entry.kind == "User" and key in catalog.users:
                stmt = drop_statement("User", "", key)
                actions.append(Action("drop", "User", key, as_text(stmt), "tenant deleted", False, stmt))
        if catalog.schema_exists and SCHEMA_KEY in catalog.ledger:
            stmt = drop_statement("Schema", "", tenant)
            actions.append(Action("drop", "Schema", tenant, as_text(stmt), "tenant deleted", True, stmt))
    forget = ledger.forget(tenant)
    actions.append(Action("drop", "Ledger", tenant, as_text(forget), "forget the tenant", False, forget))
    return Plan(tenant=tenant, actions=tuple(actions), drift=(), changed=())


def catalog_after(
    catalog: TenantCatalog, plan: Plan, objects_read: Sequence[ObservedObject] | None = None
) -> TenantCatalog:
    """The tenant's catalog once ``plan`` has run, from the plan (schema, users, ledger, owner)
    and ``objects_read``, the tenant's relations as read after the apply.

    Without ``objects_read`` they follow from the plan too, and objects it built appear without
    an id or definition (RisingWave assigns those), so no fingerprint is derived for them.
    """
    objects = dict(catalog.objects)
    users = set(catalog.users)
    schema_exists = catalog.schema_exists
    prefix = plan.tenant + "."
    for a in plan.actions:
        if a.kind == "Ledger":
            continue
        name = a.name.removeprefix(prefix)
        if a.kind == "Schema":
            schema_exists = a.type != "drop"
        elif a.kind == "User":
            if a.type == "drop":
                users.discard(name)
            else:
                users.add(name)
        elif a.type == "drop":
            objects.pop(name, None)
        elif a.type in ("create", "shadow", "swap"):
            objects[name] = ObservedObject(a.kind, plan.tenant, name)
    if objects_read is not None:
        objects = {o.name: o for o in objects_read if o.schema == plan.tenant}
    return replace(
        catalog,
        schema_exists=schema_exists,
        objects=objects,
        users=frozenset(users),
        ledger=dict(plan.ledger_after if plan.ledger_after is not None else catalog.ledger),
        owner=plan.owner_after,
        ddl_progress={},
    )
