"""Plan: desired objects vs a catalog snapshot -> ordered actions (pure).

RisingWave has no transactional DDL and no ``CREATE OR REPLACE`` for streaming objects
(risingwave-sql §10, §13), so a change is a sequence of single statements, each idempotent, each
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from psycopg import sql
from psycopg.sql import Composable

from . import ledger
from .catalog import OWNER_ROW, LedgerEntry, ObjectKind, ObservedObject, TenantCatalog
from .ledger import GRANTED, GRANTS_PREFIX, PENDING
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
    h = hashlib.sha256(f"{obj.kind}\0{obj.id}\0{obj.definition or ''}".encode())
    return h.hexdigest()[:16]


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


def _reverse_topological(keys: set[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """Order ``keys`` dependents-first using the dependency map (ties broken by name)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(k: str) -> None:
        if k in seen:
            return
        seen.add(k)
        for d in sorted(deps.get(k, ())):
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
    options = options or PlanOptions()
    tenant = catalog.tenant
    by_key = {o.key: o for o in desired}
    order = [o.key for o in desired]  # render emits dependency order
    dependents: dict[str, set[str]] = {}
    for o in desired:
        for d in o.depends_on:
            dependents.setdefault(d, set()).add(o.key)

    def observed(key: str) -> ObservedObject | None:
        if key == SCHEMA_KEY:
            return ObservedObject("Schema", "", tenant) if catalog.schema_exists else None
        wanted = by_key.get(key)
        entry = catalog.ledger.get(key)
        if (wanted is not None and wanted.kind == "User") or (entry is not None and entry.kind == "User"):
            return ObservedObject("User", "", key) if key in catalog.users else None
        return catalog.objects.get(key)

    drift: list[Drift] = []
    changed: list[str] = []
    roots: set[str] = set()
    force_recreate: set[str] = set()

    drifted_keys: set[str] = set()

    def drifted(o: DesiredObject, problem: DriftProblem, *, recreate: bool = False) -> None:
        drift.append(Drift(o.qualified, o.kind, problem))
        drifted_keys.add(o.key)
        if options.correct_drift:
            roots.add(o.key)
            if recreate:
                force_recreate.add(o.key)

    resumed: set[str] = set()
    #: Objects an interrupted apply finished building whose record it did not write.
    finished: set[str] = set()
    #: Ledger entries with finished marks read as what they record.
    effective: dict[str, LedgerEntry] = dict(catalog.ledger)
    for o in desired:
        seen = observed(o.key)
        entry = catalog.ledger.get(o.key)
        if entry is not None:
            mark = ledger.decode(entry.hash)
            unfinished = mark.state == "pending" or (
                mark.state in ("creating", "replacing")
                and (seen is None or (mark.state == "replacing" and seen.id == mark.replaces))
            )
            if unfinished:
                roots.add(o.key)  # the operator's own unfinished work, not drift
                resumed.add(o.key)
                continue
            if mark.state != "recorded":  # built by the interrupted apply: it is what it recorded
                entry = effective[o.key] = replace(entry, hash=mark.value)
                finished.add(o.key)
        if seen is None:
            if entry is not None and o.recorded_as(entry.hash):
                drifted(o, "missing")
            else:
                roots.add(o.key)  # new in the spec (or changed while it was gone)
            continue
        if seen.kind != o.kind:
            drifted(o, "kind-mismatch", recreate=True)
            continue
        if entry is None:
            drifted(o, "unrecorded")
            continue
        expected = options.expected_fingerprints.get(o.key)
        if expected is not None and o.kind != "Schema" and expected != fingerprint(seen):
            drifted(o, "modified")
            if not o.recorded_as(entry.hash):
                changed.append(o.qualified)
                roots.add(o.key)
            continue
        if not o.recorded_as(entry.hash):
            changed.append(o.qualified)
            roots.add(o.key)

    # Leftover shadows (an interrupted rebuild) force the recreate path for their base object.
    leftovers = [n for n in catalog.objects if n.endswith(SHADOW_SUFFIX)]
    for name in leftovers:
        base = name[: -len(SHADOW_SUFFIX)]
        drift.append(Drift(f"{tenant}.{name}", catalog.objects[name].kind, "leftover-shadow"))
        if base in by_key:
            roots.add(base)
            force_recreate.add(base)

    # Secrets and users change in place (ALTER SECRET / ALTER USER): nothing depends on them
    # being rebuilt. An object whose only change is a rotated embedded credential, and that has
    # an in-place statement for it (a Kafka source on RisingWave >= 2.6), is updated too.
    def in_place(key: str) -> bool:
        o, entry = by_key[key], effective.get(key)
        if observed(key) is None or o.update_statement is None:
            return False
        if o.kind in IN_PLACE_KINDS:
            return True
        return (
            entry is not None
            and entry.hash.partition("~")[0] == o.hash
            and not o.recorded_as(entry.hash)
            and key not in force_recreate
            and key not in drifted_keys
            and key not in resumed
        )

    updates = [k for k in roots if in_place(k)]
    dirty = _closure((r for r in roots if r not in updates), dependents)

    # Objects the ledger knows that are no longer desired; unknown objects are only reported.
    def obsolete(key: str) -> bool:
        # a user's grants row goes with the user (forgotten by the user's drop)
        return key not in by_key and key not in (OWNER_ROW, SCHEMA_KEY) and not key.startswith(GRANTS_PREFIX)

    def forget(key: str) -> None:
        entry = catalog.ledger.get(key)
        forgets.extend([key] + ([GRANTS_PREFIX + key] if entry is not None and entry.kind == "User" else []))

    removed = [e for k, e in catalog.ledger.items() if obsolete(k)]
    managed = set(catalog.ledger) | set(by_key)
    for name, obj in catalog.objects.items():
        if name not in managed and not name.endswith(SHADOW_SUFFIX):
            drift.append(Drift(obj.qualified, obj.kind, "unexpected"))

    recreate_path = (not options.zero_downtime) or any(
        k in force_recreate or not by_key[k].swappable
        for k in dirty
        if observed(k) is not None and by_key[k].kind != "Sink"
    )

    actions: list[Action] = []
    marks: list[ledger.Row] = []  # written before the first DDL
    records: list[ledger.Row] = []  # written after the last
    forgets: list[str] = []  # deleted after the last

    def record(o: DesiredObject) -> None:
        records.append(ledger.Row(o.key, o.kind, o.ledger_value, o.depends_on))

    def mark_creating(o: DesiredObject) -> None:
        marks.append(ledger.Row(o.key, o.kind, ledger.creating(o.ledger_value), o.depends_on))

    def mark_replacing(o: DesiredObject) -> None:
        seen = observed(o.key)
        old_id = seen.id if seen is not None else None
        # until the old object is gone, drops must still be ordered by what it reads
        old = catalog.ledger.get(o.key)
        deps = tuple(dict.fromkeys((*(old.depends_on if old else ()), *o.depends_on)))
        marks.append(ledger.Row(o.key, o.kind, ledger.replacing(old_id, o.ledger_value), deps))

    def act(
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
        actions.append(
            Action(type_, o_kind, name, as_text(display), reason, destructive, statement, then, (), sensitive)
        )

    # 1. bootstrap -----------------------------------------------------------------------------
    if not options.ledger_exists:
        for stmt in ledger.bootstrap():
            act("bootstrap", "Ledger", "cha_system.ledger", stmt, stmt, "operator ledger is missing")
    claim = options.owner is not None and catalog.owner != options.owner
    owner_after = options.owner if claim else catalog.owner

    def reason_for(key: str) -> str:
        if observed(key) is None:
            return "missing"
        if key in force_recreate:
            return "must be rebuilt"
        if key in resumed:
            return "resuming an interrupted apply"
        if key in roots:
            return "definition changed" if f"{by_key[key].qualified}" in changed else "drifted"
        return "depends on a rebuilt object"

    shadows: dict[tuple[str, ...], tuple[str, ...]] = {}
    swapped: list[str] = []
    rebuild_later: list[str] = []

    # 2. build: missing objects and shadows, in dependency order --------------------------------
    for key in order:
        o = by_key[key]
        if key in updates:
            assert o.update_statement is not None
            assert o.update_display is not None
            act(
                "update",
                o.kind,
                o.qualified,
                o.update_statement,
                o.update_display,
                "credential rotated",
                sensitive=o.sensitive,
            )
            record(o)
            continue
        if key not in dirty:
            continue
        exists = observed(key) is not None
        if recreate_path or o.kind == "Sink":
            rebuild_later.append(key)  # built in phase 5, after what it replaces is dropped
            continue
        if not exists:
            mark_creating(o)
            act(
                "create",
                o.kind,
                o.qualified,
                rebind(o.statement, shadows),
                rebind(o.display, shadows),
                reason_for(key),
                sensitive=o.sensitive,
            )
            record(o)
            continue
        shadow = o.name + SHADOW_SUFFIX
        shadows[(o.schema, o.name)] = (o.schema, shadow)
        act(
            "shadow",
            o.kind,
            f"{o.schema}.{shadow}",
            rebind(o.statement, shadows),
            rebind(o.display, shadows),
            f"build the new {o.name} beside the old ({reason_for(key)})",
            sensitive=o.sensitive,
        )
        swapped.append(key)

    # 3. swap ---------------------------------------------------------------------------------
    for key in swapped:
        o = by_key[key]
        stmt = swap_statement(o.kind, o.schema, o.name, o.name + SHADOW_SUFFIX)
        act("swap", o.kind, o.qualified, stmt, stmt, "switch readers to the new definition")
        record(o)

    # 4. drop, dependents first (using the dependencies recorded when the objects were built) ------
    old_deps: dict[str, list[str]] = {k: list(e.depends_on) for k, e in catalog.ledger.items()}
    for o in desired:
        old_deps.setdefault(o.key, list(o.depends_on))
    to_drop: dict[str, tuple[ObjectKind, str, str, bool]] = {}  # key -> (kind, name, reason, cascade)
    rebuilding = set(rebuild_later)
    for key in rebuild_later:
        seen = observed(key)
        if seen is not None:
            to_drop[key] = (seen.kind, seen.name, f"rebuild ({reason_for(key)})", False)
    for key in swapped:
        to_drop[key] = (by_key[key].kind, key + SHADOW_SUFFIX, "old version, swapped out", False)
    for e in removed:
        seen = observed(e.name)
        if seen is not None:
            to_drop[e.name] = (seen.kind, seen.name, "no longer in the spec", False)
    for name in leftovers:
        to_drop["~" + name] = (catalog.objects[name].kind, name, "left over by an interrupted rebuild", True)
    removed_keys = {e.name for e in removed}
    drop_order = _reverse_topological(set(to_drop), old_deps)
    for key in drop_order:
        kind, name, why, cascade = to_drop[key]
        stmt = drop_statement(kind, tenant, name, cascade=cascade)
        if key in rebuilding:
            mark_replacing(by_key[key])
        act("drop", kind, f"{tenant}.{name}", stmt, stmt, why, destructive=kind in DESTRUCTIVE_KINDS)
        if key in removed_keys:
            forget(key)
    for e in removed:
        if observed(e.name) is None:
            forget(e.name)  # an object that is gone: only its row is left to forget

    # 5. create what was dropped for rebuilding, in dependency order ----------------------------
    for key in rebuild_later:
        o = by_key[key]
        if observed(key) is None:
            mark_creating(o)  # (an object being rebuilt was marked at its drop)
        act(
            "create",
            o.kind,
            o.qualified,
            o.statement,
            o.display,
            reason_for(key) + (" (clears its target table first)" if o.target_reset is not None else ""),
            destructive=o.kind in DESTRUCTIVE_KINDS and observed(key) is not None,
            sensitive=o.sensitive,
        )
        if o.target_reset is not None:
            actions[-1] = replace(actions[-1], target_reset=o.target_reset)
        record(o)

    # 6. grants: GRANT ... ON ALL ... IN SCHEMA covers only what exists, so re-grant after any
    #    view was (re)built and when the user is new. The grants have a ledger row of their own,
    #    marked pending before the first change, so an interruption before them re-grants.
    rebuilt = any(a.type in ("create", "shadow", "swap") for a in actions)
    for o in desired:
        if not o.grants:
            continue
        key = GRANTS_PREFIX + o.name
        entry = catalog.ledger.get(key)
        if not (rebuilt or o.key in dirty or o.key in updates or entry is None or entry.hash != GRANTED):
            continue
        marks.append(ledger.Row(key, o.kind, PENDING))
        for grant in o.grants:
            act("grant", o.kind, o.qualified, grant, grant, "read access to the tenant's views")
        records.append(ledger.Row(key, o.kind, GRANTED))

    # 7. the ledger: marks before the first DDL (with the claim), records after the last ---------
    recorded = {r.key for r in records}
    for o in desired:
        if o.key in finished and o.key not in recorded:
            entry = catalog.ledger[o.key]
            value = ledger.decode(entry.hash).value
            deps = o.depends_on if o.recorded_as(value) else entry.depends_on
            records.append(ledger.Row(o.key, o.kind, value, deps))
    if claim:
        assert options.owner is not None
        marks.insert(0, ledger.Row(OWNER_ROW, "Tenant", options.owner))
    work = any(a.type != "bootstrap" for a in actions)
    if marks:
        write_marks = ledger.write(tenant, marks)
        if claim:
            claim_action = Action(
                "claim",
                "Ledger",
                tenant,
                as_text(write_marks),
                f"record {options.owner} as the tenant's owner",
                statement=write_marks,
            )
            actions.insert(sum(a.type == "bootstrap" for a in actions), claim_action)
            work = True
        else:
            first = next(i for i, a in enumerate(actions) if a.type != "bootstrap")
            actions[first] = replace(actions[first], pre=(write_marks, *actions[first].pre))
    tail: list[sql.Composable] = []
    if forgets:
        tail.append(ledger.forget(tenant, forgets))
    if records:
        tail.append(ledger.write(tenant, records))
    if tail and work:
        actions[-1] = replace(actions[-1], ledger=(*actions[-1].ledger, *tail))
    elif tail:
        head, *rest = tail
        reason = "record objects an interrupted apply built" if records else "forget objects that are gone"
        act("record" if records else "drop", "Ledger", tenant, head, head, reason, then=tuple(rest))

    after = {k: e for k, e in catalog.ledger.items() if k not in set(forgets)}
    for row in ledger.unique([*marks, *records]):
        if row.key != OWNER_ROW:
            after[row.key] = LedgerEntry(tenant, row.key, row.kind, row.value, row.depends_on)  # type: ignore[arg-type]
    return Plan(
        tenant=tenant,
        actions=tuple(actions),
        drift=tuple(drift),
        changed=tuple(changed),
        ledger_after=after,
        owner_after=owner_after,
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
        for key in _reverse_topological(keys, deps):
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


def ledger_entries(desired: Sequence[DesiredObject], tenant: str) -> dict[str, LedgerEntry]:
    """The ledger a fully applied plan leaves behind (for tests and status)."""
    out = {o.key: LedgerEntry(tenant, o.key, o.kind, o.ledger_value, o.depends_on) for o in desired}
    for o in desired:
        if o.grants:
            key = GRANTS_PREFIX + o.name
            out[key] = LedgerEntry(tenant, key, o.kind, GRANTED)
    return out


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
