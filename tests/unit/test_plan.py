"""The planner against catalog snapshots: change scoping, ordering, drift, and convergence.

``apply_to_catalog`` is a tiny pure interpreter of plans over a :class:`TenantCatalog`: it runs
each action's statement the way RisingWave would on names (CREATE … IF NOT EXISTS is a no-op on
an existing name, DROP without CASCADE fails while dependents exist, SWAP exchanges names while
dependencies follow the object) and then the action's ledger statements (parsed from their SQL).
It is what makes "apply, then re-plan, yields nothing" — also after an interruption at any
point — checkable without RisingWave.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from psycopg import sql
from sqlglot import exp

from charging_analytics import cli, ledger
from charging_analytics.catalog import LedgerEntry, ObjectKind, ObservedObject, TenantCatalog
from charging_analytics.ledger import OWNER_ROW
from charging_analytics.plan import Action, Plan, PlanOptions, build_plan, teardown_plan
from charging_analytics.render import (
    SCHEMA_KEY,
    SHADOW_SUFFIX,
    Credential,
    Credentials,
    DesiredObject,
    Digester,
    RenderOptions,
    as_text,
    render,
)
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.validation import parse_documents
from testbed.sqllint import (
    Linter,
    SecretRef,
    created_name,
    match_command,
    parse_one_statement,
    statement_kind,
    table_key,
)

#: One digest cache for this module's renderings, as the service keeps one for all of its own.
DIGESTER = Digester()
ROOT = Path(__file__).resolve().parents[2]
OWNER = "tenants/acme"
CREDS = Credentials(
    kafka=Credential("acme-pipeline", "kafka-pw"),
    alerts_db=Credential("writer", "db-pw"),
    reader=Credential("acme_reader", "reader-pw"),
)

# --------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------


def _acme_doc() -> dict:
    docs = list(yaml.safe_load_all((ROOT / "examples" / "acme.yaml").read_text(encoding="utf-8")))
    return next(d for d in docs if d and d.get("kind") == "ChargingAnalytics")


def acme_spec(**changes: object) -> ChargingAnalyticsSpec:
    """The acme example with dotted-path changes (``alerts.stalledSessionMinutes=15``); None deletes."""
    doc = _acme_doc()
    for path, value in changes.items():
        node = doc["spec"]
        *parents, last = path.split("__")
        for p in parents:
            node = node[p]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return parse_documents([doc]).resources[0].spec


def desired(
    spec: ChargingAnalyticsSpec, store: str = "inline", creds: Credentials | None = CREDS
) -> list[DesiredObject]:
    return render(spec, RenderOptions(secret_store=store, credentials=creds, digester=DIGESTER))  # type: ignore[arg-type]


BASE = acme_spec()

# --------------------------------------------------------------------------------------------
# Catalogs and the simulator
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimObject(ObservedObject):
    """An observed object that also knows which objects (by id) it reads, as RisingWave does."""

    reads: frozenset[int] = frozenset()
    #: Users granted SELECT on it (grants follow the object, not its name).
    grantees: frozenset[str] = frozenset()


def ledger_entries(desired: Sequence[DesiredObject], tenant: str) -> dict[str, LedgerEntry]:
    """The ledger a fully applied plan leaves behind: a record per object, its user's grants current."""
    out = {o.key: LedgerEntry(tenant, o.key, o.kind, o.ledger_value, o.depends_on) for o in desired}
    for o in desired:
        if o.grants:
            key = ledger.grants_row(o.name)
            out[key] = LedgerEntry(tenant, key, o.kind, ledger.GRANTED)
    return out


def applied_catalog(
    objects: Sequence[DesiredObject], tenant: str, *, owner: str | None = OWNER
) -> TenantCatalog:
    """The catalog a complete, successful apply of ``objects`` leaves behind."""
    in_schema = [o for o in objects if o.kind not in ("Schema", "User")]
    users = frozenset(o.name for o in objects if o.kind == "User")
    ids = {o.name: i for i, o in enumerate(in_schema, start=1)}
    observed = {
        o.name: SimObject(
            o.kind,
            tenant,
            o.name,
            ids[o.name],
            reads=frozenset(ids[d] for d in o.depends_on),
            grantees=users if o.kind in ("MaterializedView", "View") else frozenset(),
        )
        for o in in_schema
    }
    return TenantCatalog(
        tenant=tenant,
        schema_exists=any(o.kind == "Schema" for o in objects),
        objects=observed,
        ledger=ledger_entries(objects, tenant),
        owner=owner,
        users=users,
    )


class SimError(AssertionError):
    """RisingWave would have rejected this statement."""


@dataclass(frozen=True)
class World:
    catalog: TenantCatalog
    ledger_exists: bool = True


_KINDS: Mapping[str, ObjectKind] = {
    "SCHEMA": "Schema",
    "SOURCE": "Source",
    "MATERIALIZED VIEW": "MaterializedView",
    "VIEW": "View",
    "SINK": "Sink",
    "TABLE": "Table",
    "CREATE SECRET": "Secret",
    "DROP SECRET": "Secret",
    "CREATE USER": "User",
}
_GRANT = re.compile(r"GRANT SELECT ON ALL (MATERIALIZED VIEWS|VIEWS) IN SCHEMA (\S+) TO (\S+)")


@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> exp.Expr:
    return parse_one_statement(text)  # cached: the simulator re-runs the same statements a lot


def _ledger_sql(world: World, stmt: sql.Composable) -> World:
    """Run one ledger statement (a DELETE, or a multi-row INSERT on cha_system.ledger that
    overwrites rows of existing keys, as a table with a primary key does in RisingWave)."""
    if not world.ledger_exists:
        raise SimError("relation cha_system.ledger does not exist")
    cat = world.catalog
    tree = _parse(as_text(stmt))
    ledger = dict(cat.ledger)
    owner = cat.owner
    if isinstance(tree, exp.Delete):
        where = {c.this.name: c.expression.this for c in tree.find_all(exp.EQ)}
        assert where["tenant"] == cat.tenant, f"ledger write for another tenant: {where}"
        keys = [v.this for i in tree.find_all(exp.In) for v in i.expressions]
        if not keys:
            ledger, owner = {}, None
        for key in keys:
            if key == OWNER_ROW:
                owner = None
            else:
                ledger.pop(key, None)
    elif isinstance(tree, exp.Insert):
        columns = [c.name for c in tree.this.expressions]
        seen: set[str] = set()
        for row in tree.expression.expressions:
            values = dict(zip(columns, row.expressions, strict=True))
            text = {k: v.this for k, v in values.items() if isinstance(v, exp.Literal)}
            assert text["tenant"] == cat.tenant
            key = text["object_name"]
            assert key not in seen, f"one INSERT carries ({cat.tenant}, {key}) twice"
            seen.add(key)
            if key == OWNER_ROW:
                owner = text["definition_hash"]
            else:
                deps = tuple(d for d in text["depends_on"].split(",") if d)
                ledger[key] = LedgerEntry(cat.tenant, key, text["kind"], text["definition_hash"], deps)  # type: ignore[arg-type]
    else:
        raise AssertionError(f"not a ledger statement: {as_text(stmt)}")
    return replace(world, catalog=replace(cat, ledger=ledger, owner=owner))


def _reads(tree: exp.Expr, tenant: str, own: str) -> set[str]:
    """Names (inside the tenant schema) a CREATE statement reads."""
    names = {table_key(t) for t in tree.find_all(exp.Table) if t.args.get("db") is not None}
    for fn in tree.find_all(exp.Anonymous):  # TUMBLE/HOP take the relation as a column-like name
        if fn.name.upper() in ("TUMBLE", "HOP") and isinstance(fn.expressions[0], exp.Column):
            names.add(table_key(fn.expressions[0]))
    names |= {table_key(s.this) for s in tree.find_all(SecretRef)}
    own_key = f"{tenant}.{own}"
    return {n.split(".", 1)[1] for n in names if n.startswith(f"{tenant}.") and n != own_key}


def _drop(objects: dict[str, SimObject], name: str, cascade: bool) -> None:
    target = objects[name]
    dependents = [o.name for o in objects.values() if target.id in o.reads]
    if dependents and not cascade:
        raise SimError(f"Permission denied: {name} used by {len(dependents)} other objects ({dependents})")
    for dep in dependents:
        if dep in objects:
            _drop(objects, dep, cascade)
    del objects[name]


def _ddl(world: World, action: Action) -> World:
    """Run an action's DDL statement on the simulated catalog."""
    cat = world.catalog
    tenant = cat.tenant
    text = as_text(action.statement)
    tree = _parse(text)
    objects: dict[str, SimObject] = dict(cat.objects)  # type: ignore[arg-type]
    schema_exists = cat.schema_exists
    if action.kind == "Ledger":
        if isinstance(tree, exp.Create):  # bootstrap: CREATE SCHEMA cha_system / CREATE TABLE ledger
            return replace(world, ledger_exists=world.ledger_exists or statement_kind(tree) == "TABLE")
        return _ledger_sql(world, action.statement)
    if action.kind == "User":
        return _user_ddl(world, action, tree, text)
    if action.type in ("create", "shadow"):
        kind = _KINDS[statement_kind(tree)]
        assert kind == action.kind, (kind, action)
        if kind == "Schema":
            assert action.name == tenant
            return replace(world, catalog=replace(cat, schema_exists=True))
        if not schema_exists:
            raise SimError(f"schema {tenant} does not exist")
        name = _created(tree, text)
        assert f"{tenant}.{name}" == action.name, (name, action.name)
        if "IF NOT EXISTS" not in text:
            raise SimError(f"{action.type} without IF NOT EXISTS is not idempotent: {text[:60]}")
        if name in objects:
            return world  # IF NOT EXISTS: the existing object is kept, whatever its definition
        reads = _reads(tree, tenant, name)
        missing = sorted(r for r in reads if r not in objects)
        if missing:
            raise SimError(f"{action.name} reads {missing}, which do not exist")
        next_id = max((o.id or 0 for o in objects.values()), default=0) + 1
        objects[name] = SimObject(kind, tenant, name, next_id, text, frozenset(objects[r].id for r in reads))  # type: ignore[misc]
    elif action.type == "swap":
        _, m = match_command(text)
        a, b = (_unqualify(m.group(g), tenant) for g in ("name", "other"))
        if a not in objects or b not in objects or objects[a].kind != objects[b].kind:
            raise SimError(f"cannot swap {a} with {b}")
        objects[a], objects[b] = replace(objects[b], name=a), replace(objects[a], name=b)
    elif action.type == "drop":
        if action.kind == "Schema":
            if any(True for _ in objects) and "CASCADE" not in text:
                raise SimError(f"schema {tenant} is not empty")
            objects, schema_exists = {}, False
        else:
            name = _created(tree, text)
            if name not in objects:
                if "IF EXISTS" not in text:
                    raise SimError(f"{name} does not exist")
            else:
                if objects[name].kind != action.kind:
                    raise SimError(f"DROP {action.kind} on a {objects[name].kind} {name}")
                _drop(objects, name, cascade=text.rstrip().endswith("CASCADE"))
    elif action.type == "update":
        name = _created(tree, text)
        if name not in objects:
            raise SimError(f"secret {name} does not exist")
    else:
        raise AssertionError(f"unknown action type {action.type}")
    return replace(world, catalog=replace(cat, objects=objects, schema_exists=schema_exists))


def _user_ddl(world: World, action: Action, tree: exp.Expr, text: str) -> World:
    """CREATE USER (no IF NOT EXISTS in RisingWave), ALTER USER, DROP USER, GRANT."""
    cat = world.catalog
    users = set(cat.users)
    objects: dict[str, SimObject] = dict(cat.objects)  # type: ignore[arg-type]
    if action.type == "grant":
        if isinstance(tree, exp.Grant):  # GRANT USAGE ON SCHEMA: the schema must exist
            if not cat.schema_exists:
                raise SimError(f"schema {cat.tenant} does not exist")
            return world
        m = _GRANT.fullmatch(text)
        assert m is not None, text
        schema, user = m.group(2).strip('"'), m.group(3).strip('"')
        if user not in users:
            raise SimError(f"user {user} does not exist")
        kind = "MaterializedView" if m.group(1) == "MATERIALIZED VIEWS" else "View"
        for key, obj in objects.items():
            if schema == cat.tenant and obj.kind == kind:
                objects[key] = replace(obj, grantees=obj.grantees | {user})
        return replace(world, catalog=replace(cat, objects=objects))
    label, name = statement_kind(tree), _created(tree, text)
    if label == "CREATE USER":
        if name in users:
            raise SimError(f'user "{name}" already exists')
        users.add(name)
    elif label == "ALTER USER":
        if name not in users:
            raise SimError(f'user "{name}" does not exist')
    elif label == "DROP USER":
        users.discard(name)
        objects = {k: replace(o, grantees=o.grantees - {name}) for k, o in objects.items()}
    else:
        raise AssertionError(f"unexpected user statement {text}")
    return replace(world, catalog=replace(cat, users=frozenset(users), objects=objects))


def _unqualify(name: str, tenant: str) -> str:
    parts = [p.strip('"') for p in re.findall(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*', name)]
    assert parts[0] == tenant, name
    return parts[-1]


def _created(tree: exp.Expr, text: str) -> str:
    if isinstance(tree, exp.Command):
        _, m = match_command(text)
        return re.findall(r'"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*', m.group("name"))[-1].strip('"')
    name = created_name(tree)
    assert name is not None, text
    return name.rsplit(".", 1)[-1]


def apply_actions(actions: Sequence[Action], world: World, *, ddl_only_last: bool = False) -> World:
    """Apply actions in order (the ledger marks that precede the DDL, the DDL, then its ledger
    writes); ``ddl_only_last`` interrupts the last action between its DDL and its ledger writes."""
    for i, action in enumerate(actions):
        for stmt in action.pre:
            world = _ledger_sql(world, stmt)
        world = _ddl(world, action)
        if ddl_only_last and i == len(actions) - 1:
            break
        for stmt in action.ledger:
            world = _ledger_sql(world, stmt)
    return world


def apply_to_catalog(plan: Plan, catalog: TenantCatalog) -> TenantCatalog:
    return apply_actions(plan.actions, World(catalog)).catalog


def plan_for(objs: Sequence[DesiredObject], world: World, **options: object) -> Plan:
    opts = PlanOptions(owner=OWNER, ledger_exists=world.ledger_exists, **options)  # type: ignore[arg-type]
    return build_plan(objs, world.catalog, opts)


def converge(objs: Sequence[DesiredObject], world: World, *, rounds: int = 3, **options: object) -> World:
    """Plan and apply until the plan is empty; fail if that takes more than ``rounds``."""
    for _ in range(rounds):
        plan = plan_for(objs, world, **options)
        if plan.empty:
            return world
        world = apply_actions(plan.actions, world)
    leftover = plan_for(objs, world, **options)
    raise AssertionError(
        "no convergence; still planned:\n" + "\n".join(a.describe() for a in leftover.actions)
    )


def shape(cat: TenantCatalog) -> tuple:
    """What two catalogs must agree on after convergence (ids and definitions aside)."""
    return (
        cat.schema_exists,
        sorted((o.name, o.kind) for o in cat.objects.values()),
        sorted((e.name, e.kind, e.hash, e.depends_on) for e in cat.ledger.values()),
        cat.owner,
        sorted(cat.users),
    )


def grants(cat: TenantCatalog) -> list[tuple[str, tuple[str, ...]]]:
    """Who may read each view."""
    return sorted(
        (o.name, tuple(sorted(o.grantees)))  # type: ignore[attr-defined]
        for o in cat.objects.values()
        if o.kind in ("MaterializedView", "View")
    )


def ddl(plan: Plan) -> list[Action]:
    """The plan without the reader's grants (they follow any rebuild; tested on their own)."""
    return [a for a in plan.actions if a.type != "grant"]


def described(plan: Plan) -> list[tuple[str, str, str]]:
    return [(a.type, a.kind, a.name) for a in ddl(plan)]


def names(plan: Plan, type_: str | None = None) -> list[str]:
    return [a.name for a in ddl(plan) if type_ is None or a.type == type_]


READER_GRANTS = [
    'GRANT USAGE ON SCHEMA "acme" TO "acme_reader"',
    'GRANT SELECT ON ALL MATERIALIZED VIEWS IN SCHEMA "acme" TO "acme_reader"',
    'GRANT SELECT ON ALL VIEWS IN SCHEMA "acme" TO "acme_reader"',
]


def grant_sql(plan: Plan) -> list[str]:
    return [a.sql for a in plan.actions if a.type == "grant"]


EMPTY = World(TenantCatalog("acme", schema_exists=False), ledger_exists=False)
APPLIED = World(applied_catalog(desired(BASE), "acme"))

# --------------------------------------------------------------------------------------------
# Scoping and ordering of single changes
# --------------------------------------------------------------------------------------------


def test_fresh_tenant_bootstraps_claims_and_creates_every_object_in_dependency_order() -> None:
    objs = desired(BASE)
    plan = plan_for(objs, EMPTY)
    assert [a.type for a in plan.actions[:3]] == ["bootstrap", "bootstrap", "claim"]
    creates = ddl(plan)[3:]
    assert all(a.type == "create" for a in creates)
    assert grant_sql(plan) == READER_GRANTS
    assert [a.type for a in plan.actions[-3:]] == ["grant"] * 3  # after every view exists
    assert sorted(a.name for a in creates) == sorted(o.qualified for o in objs)
    position = {a.name.split(".")[-1]: i for i, a in enumerate(creates)}
    for o in objs:
        for dep in o.depends_on:
            assert position[dep] < position[o.name], f"{o.name} created before its dependency {dep}"
    assert not plan.destructive
    assert not names(plan, "drop")
    assert plan.drift == ()


def test_fresh_plan_applied_by_the_simulator_matches_the_applied_catalog_helper() -> None:
    objs = desired(BASE)
    world = apply_actions(plan_for(objs, EMPTY).actions, EMPTY)
    assert world.ledger_exists
    assert shape(world.catalog) == shape(APPLIED.catalog)


def test_unchanged_spec_plans_zero_actions_and_reports_no_drift() -> None:
    plan = plan_for(desired(BASE), APPLIED)
    assert plan.empty
    assert plan.drift == ()
    assert plan.summary() == "no changes"


def test_stalled_minutes_change_shadow_swaps_stalled_sessions_and_alerts_and_recreates_both_sinks() -> None:
    plan = plan_for(desired(acme_spec(alerts__stalledSessionMinutes=15)), APPLIED)
    assert described(plan) == [
        ("shadow", "MaterializedView", "acme.stalled_sessions__next"),
        ("shadow", "MaterializedView", "acme.alerts__next"),
        ("swap", "MaterializedView", "acme.stalled_sessions"),
        ("swap", "MaterializedView", "acme.alerts"),
        ("drop", "Sink", "acme.alerts_to_postgres"),
        ("drop", "Sink", "acme.alerts_to_kafka"),
        ("drop", "MaterializedView", "acme.alerts__next"),
        ("drop", "MaterializedView", "acme.stalled_sessions__next"),
        ("create", "Sink", "acme.alerts_to_kafka"),
        ("create", "Sink", "acme.alerts_to_postgres"),
    ]
    assert plan.changed == ("acme.stalled_sessions",)
    assert not plan.destructive
    # the new alerts view reads the new stalled_sessions (under its shadow name at build time)
    alerts_shadow = plan.actions[1].sql
    assert '"acme"."stalled_sessions__next"' in alerts_shadow
    assert '"acme"."alerts__next"' in alerts_shadow


def test_availability_threshold_change_rebuilds_only_low_availability_alerts_and_sinks() -> None:
    plan = plan_for(desired(acme_spec(alerts__availabilityBelowPercent=70)), APPLIED)
    touched = {a.name.removesuffix(SHADOW_SUFFIX) for a in ddl(plan)}
    assert touched == {
        "acme.low_availability", "acme.alerts", "acme.alerts_to_kafka", "acme.alerts_to_postgres",
    }  # fmt: skip
    assert names(plan, "swap") == ["acme.low_availability", "acme.alerts"]
    assert plan.changed == ("acme.low_availability",)


def test_tariff_change_rebuilds_completed_sessions_and_station_revenue_without_touching_sinks() -> None:
    tariffs = {"currency": "EUR", "pricePerKwh": {"CCS": 0.61, "CHAdeMO": 0.49, "Type2": 0.35}}
    plan = plan_for(desired(acme_spec(analytics__tariffs=tariffs)), APPLIED)
    assert names(plan, "swap") == ["acme.completed_sessions", "acme.station_revenue"]
    assert {a.name.removesuffix(SHADOW_SUFFIX) for a in ddl(plan)} == {
        "acme.completed_sessions", "acme.station_revenue",
    }  # fmt: skip
    assert not [a for a in plan.actions if a.kind == "Sink"]


def test_revenue_window_change_rebuilds_station_revenue_only() -> None:
    plan = plan_for(desired(acme_spec(analytics__revenueWindow="30m")), APPLIED)
    assert described(plan) == [
        ("shadow", "MaterializedView", "acme.station_revenue__next"),
        ("swap", "MaterializedView", "acme.station_revenue"),
        ("drop", "MaterializedView", "acme.station_revenue__next"),
    ]


def test_removed_kafka_sink_is_dropped_once_and_forgotten_without_a_destructive_flag() -> None:
    spec = acme_spec(alerts__sinks__kafka=None)
    plan = plan_for(desired(spec), APPLIED)
    assert described(plan) == [("drop", "Sink", "acme.alerts_to_kafka")]
    (drop,) = plan.actions
    assert not drop.destructive
    assert not plan.destructive
    # its row is forgotten after the drop, in the plan's one batched DELETE
    assert [as_text(s) for s in drop.ledger] == [
        "DELETE FROM \"cha_system\".\"ledger\" WHERE tenant = 'acme' AND object_name IN ('alerts_to_kafka')"
    ]


def test_disabling_low_availability_drops_it_after_the_old_alerts_and_rebuilds_alerts() -> None:
    plan = plan_for(desired(acme_spec(alerts__availabilityBelowPercent=None)), APPLIED)
    order = [f"{a.type} {a.name}" for a in plan.actions]
    assert order.index("drop acme.alerts__next") < order.index("drop acme.low_availability")
    assert "shadow acme.alerts__next" in order
    assert "swap acme.alerts" in order
    assert "low_availability" not in plan.actions[0].sql  # the new alerts no longer reads it
    # forgotten after the last DDL (one DELETE), before the one write of the new records
    forget, write = (as_text(s) for s in plan.actions[-1].ledger)
    assert forget == (
        "DELETE FROM \"cha_system\".\"ledger\" WHERE tenant = 'acme' AND object_name IN ('low_availability')"
    )
    assert write.startswith('INSERT INTO "cha_system"."ledger"')
    assert "'low_availability'" not in write
    assert not plan.destructive


def test_kafka_topic_change_recreates_the_source_subgraph_and_is_destructive() -> None:
    objs = desired(acme_spec(kafka__eventsTopic="ocpp.acme.events.v2"))
    plan = plan_for(objs, APPLIED)
    assert plan.destructive
    assert not names(plan, "shadow")
    assert not names(plan, "swap")
    drops, creates = names(plan, "drop"), names(plan, "create")
    every = [o.qualified for o in objs if o.kind not in ("Schema", "User")]
    assert sorted(drops) == sorted(every)
    assert creates == every  # dependency order
    assert drops[-1] == "acme.ocpp_events"  # dependents first
    source_actions = [a for a in plan.actions if a.name == "acme.ocpp_events"]
    assert [(a.type, a.destructive) for a in source_actions] == [("drop", True), ("create", True)]


def test_changed_and_unchanged_specs_produce_plans_that_lint_clean() -> None:
    for spec in (
        acme_spec(alerts__stalledSessionMinutes=15),
        acme_spec(analytics__revenueWindow="30m"),
        acme_spec(alerts__availabilityBelowPercent=None),
    ):
        plan = plan_for(desired(spec), APPLIED)
        linter = Linter()
        for o in desired(BASE):  # what already exists, so the shadows' reads resolve
            linter.check(o.sql)
        problems = [v for a in plan.actions for v in linter.check(a.sql)]
        assert problems == []


# --------------------------------------------------------------------------------------------
# Drift
# --------------------------------------------------------------------------------------------


def _without(world: World, name: str) -> World:
    objects = {k: v for k, v in world.catalog.objects.items() if k != name}
    return replace(world, catalog=replace(world.catalog, objects=objects))


def _with(world: World, obj: ObservedObject) -> World:
    return replace(world, catalog=replace(world.catalog, objects={**world.catalog.objects, obj.name: obj}))


def test_object_missing_but_recorded_is_reported_as_drift_and_recreated() -> None:
    world = _without(APPLIED, "connector_faults")
    plan = plan_for(desired(BASE), world)
    assert [(d.name, d.problem) for d in plan.drift] == [("acme.connector_faults", "missing")]
    assert ("create", "MaterializedView", "acme.connector_faults") in described(plan)
    assert plan.changed == ()
    assert plan_for(desired(BASE), apply_actions(plan.actions, world)).empty


def test_object_missing_with_report_only_drift_is_reported_without_any_action() -> None:
    plan = plan_for(desired(BASE), _without(APPLIED, "connector_faults"), correct_drift=False)
    assert [(d.name, d.problem) for d in plan.drift] == [("acme.connector_faults", "missing")]
    assert plan.empty


def test_unexpected_object_in_the_tenant_schema_is_reported_and_never_dropped() -> None:
    world = _with(APPLIED, SimObject("MaterializedView", "acme", "my_dashboard", 999))
    plan = plan_for(desired(BASE), world)
    assert [(d.name, d.problem) for d in plan.drift] == [("acme.my_dashboard", "unexpected")]
    assert plan.empty


def test_leftover_shadow_sends_its_base_object_down_the_recreate_path_with_a_cascade_drop() -> None:
    world = _with(APPLIED, SimObject("MaterializedView", "acme", "station_revenue__next", 999))
    plan = plan_for(desired(BASE), world)
    assert [(d.name, d.problem) for d in plan.drift] == [("acme.station_revenue__next", "leftover-shadow")]
    assert described(plan) == [
        ("drop", "MaterializedView", "acme.station_revenue__next"),
        ("drop", "MaterializedView", "acme.station_revenue"),
        ("create", "MaterializedView", "acme.station_revenue"),
    ]
    assert plan.actions[0].sql == 'DROP MATERIALIZED VIEW IF EXISTS "acme"."station_revenue__next" CASCADE'
    assert not plan.actions[1].sql.endswith("CASCADE")
    assert plan_for(desired(BASE), apply_actions(plan.actions, world)).empty


# --------------------------------------------------------------------------------------------
# Plan identity and formatting
# --------------------------------------------------------------------------------------------


def test_plan_hash_is_stable_for_identical_inputs() -> None:
    spec = acme_spec(alerts__stalledSessionMinutes=15)
    assert plan_for(desired(spec), APPLIED).hash == plan_for(desired(spec), APPLIED).hash


def test_plan_hash_changes_when_a_statement_changes() -> None:
    a = plan_for(desired(acme_spec(alerts__stalledSessionMinutes=15)), APPLIED)
    b = plan_for(desired(acme_spec(alerts__stalledSessionMinutes=16)), APPLIED)
    assert [x.type for x in a.actions] == [x.type for x in b.actions]
    assert a.statements() != b.statements()
    assert a.hash != b.hash


def test_plan_hash_ignores_credentials_that_only_the_executable_statements_carry() -> None:
    topic = acme_spec(kafka__eventsTopic="other")
    other = replace(CREDS, kafka=Credential("acme-pipeline", "rotated"))
    a, b = plan_for(desired(topic), APPLIED), plan_for(desired(topic, creds=other), APPLIED)
    assert a.statements() == b.statements()
    assert a.hash == b.hash


def test_plan_json_lists_actions_drift_and_flags() -> None:
    world = _with(APPLIED, SimObject("MaterializedView", "acme", "my_dashboard", 999))
    plan = plan_for(desired(acme_spec(kafka__eventsTopic="other")), world)
    data = json.loads(json.dumps(cli._plan_json(plan)))
    assert data["tenant"] == "acme"
    assert data["hash"] == plan.hash
    assert data["hash"].startswith("sha256:")
    assert data["destructive"] is True
    assert data["summary"] == plan.summary() == "19 drop, 19 create, 3 grant"
    assert len(data["actions"]) == len(plan.actions)
    first = data["actions"][0]
    assert set(first) == {"type", "kind", "name", "reason", "destructive", "sql"}
    assert data["drift"] == ["MaterializedView acme.my_dashboard is unexpected"]
    assert "kafka-pw" not in json.dumps(data)


def test_plan_text_output_prints_summary_drift_and_each_statement_with_a_semicolon(
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = _without(APPLIED, "connector_faults")
    plan = plan_for(desired(BASE), world)
    cli._print_plan(plan, "text")
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"-- plan for tenant acme: {plan.summary()} (hash {plan.hash})"
    assert lines[1] == "-- drift: MaterializedView acme.connector_faults is missing"
    for action in plan.actions:
        assert f"-- {action.describe()}\n{action.sql};" in out
    assert "kafka-pw" not in out
    assert "db-pw" not in out


# --------------------------------------------------------------------------------------------
# Convergence, including after an interruption at any point
# --------------------------------------------------------------------------------------------


def _rw(spec: ChargingAnalyticsSpec) -> list[DesiredObject]:
    return desired(spec, "risingwave")


ROTATED = replace(CREDS, kafka=Credential("acme-pipeline", "new"))
FLAT_TARIFF = {"currency": "USD", "pricePerKwh": {"CCS": 1, "CHAdeMO": 1, "Type2": 1}}
NOTHING_OPTIONAL = {
    "alerts__sinks": None,
    "alerts__connectorFaults": False,
    "alerts__availabilityBelowPercent": None,
}


def _base() -> list[DesiredObject]:
    return desired(BASE)


def _changed(**changes: object) -> Callable[[], list[DesiredObject]]:
    return lambda: desired(acme_spec(**changes))


Transition = tuple[Callable[[], list[DesiredObject]], Callable[[], list[DesiredObject]]]
TRANSITIONS: dict[str, Transition] = {
    "fresh tenant": (list, _base),
    "stalled minutes": (_base, _changed(alerts__stalledSessionMinutes=15)),
    "availability threshold": (_base, _changed(alerts__availabilityBelowPercent=70)),
    "tariff": (_base, _changed(analytics__tariffs=FLAT_TARIFF)),
    "revenue window": (_base, _changed(analytics__revenueWindow="30m")),
    "kafka sink removed": (_base, _changed(alerts__sinks__kafka=None)),
    "low availability disabled": (_base, _changed(alerts__availabilityBelowPercent=None)),
    "connector faults disabled": (_base, _changed(alerts__connectorFaults=False)),
    "topic": (_base, _changed(kafka__eventsTopic="ocpp.v2")),
    "retention": (_base, _changed(analytics__stateRetention="48h")),
    "everything optional off": (_base, _changed(**NOTHING_OPTIONAL)),
    "inline to risingwave secrets": (_base, lambda: _rw(BASE)),
    "risingwave secrets to inline": (lambda: _rw(BASE), _base),
    "secret rotation": (lambda: _rw(BASE), lambda: desired(BASE, "risingwave", ROTATED)),
    "postgres sink removed with secrets": (
        lambda: _rw(BASE),
        lambda: _rw(acme_spec(alerts__sinks__postgres=None)),
    ),
}


def _start(before: list[DesiredObject]) -> World:
    if not before:
        return EMPTY
    return apply_actions(plan_for(before, EMPTY).actions, EMPTY)


@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_applying_a_plan_converges_to_zero_actions(transition: str) -> None:
    before, after = (f() for f in TRANSITIONS[transition])
    start = _start(before)
    plan = plan_for(after, start)
    assert not plan.empty
    done = apply_actions(plan.actions, start)
    again = plan_for(after, done)
    assert again.empty, [a.describe() for a in again.actions]
    assert shape(done.catalog) == shape(_start(after).catalog)
    assert grants(done.catalog) == grants(_start(after).catalog)


@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_every_interrupted_apply_converges_on_the_next_reconcile(transition: str) -> None:
    """Interrupt after every action, between every action's DDL and its ledger writes, and
    between the ledger marks that precede an action and its DDL. An interruption never makes
    approval necessary where the uninterrupted plan needed none (nothing the operator created in
    the interrupted apply is "destroyed")."""
    before, after = (f() for f in TRANSITIONS[transition])
    start = _start(before)
    plan = plan_for(after, start)
    target = shape(_start(after).catalog)
    failures: list[str] = []
    for k in range(len(plan.actions) + 1):
        cuts = ["after", "ddl only", "marks of the next"] if k else ["after", "marks of the next"]
        for cut in cuts:
            label = f"after {k} actions ({cut})"
            try:
                world = apply_actions(plan.actions[:k], start, ddl_only_last=cut == "ddl only")
                if cut == "marks of the next" and k < len(plan.actions):
                    for stmt in plan.actions[k].pre:
                        world = _ledger_sql(world, stmt)
                resumed = plan_for(after, world)
                if resumed.destructive and not plan.destructive:
                    failures.append(f"{label}: the resumed plan asks for approval")
                world = converge(after, world)
            except AssertionError as err:
                failures.append(f"{label}: {err}")
                continue
            if shape(world.catalog) != target:
                failures.append(f"{label}: converged to a different catalog")
    assert not failures, "\n".join(failures[:5])


@pytest.mark.parametrize("transition", ["topic", "stalled minutes"])
def test_a_reconcile_interrupted_twice_still_converges(transition: str) -> None:
    before, after = (f() for f in TRANSITIONS[transition])
    start = _start(before)
    first = plan_for(after, start)
    target = shape(_start(after).catalog)
    for k in range(1, len(first.actions), 3):
        interrupted = apply_actions(first.actions[:k], start)
        second = plan_for(after, interrupted)
        for j in range(1, len(second.actions)):
            world = converge(after, apply_actions(second.actions[:j], interrupted, ddl_only_last=True))
            assert shape(world.catalog) == target, (k, j)


# With ``onDrift: Report`` the planner must still finish its own interrupted work: every DDL is
# preceded by a "pending" ledger mark, so an interrupted rebuild resumes instead of reading as
# drift (which Report mode leaves alone).


def test_report_mode_recreates_the_pipeline_after_an_apply_interrupted_once_the_source_was_recreated() -> (
    None
):
    after = desired(acme_spec(kafka__eventsTopic="ocpp.v2"))
    plan = plan_for(after, APPLIED, correct_drift=False)
    k = names(plan).index("acme.ocpp_events", names(plan).index("acme.ocpp_events") + 1) + 1
    assert plan.actions[k - 1].type == "create"  # the new source exists; no dependent does yet
    world = apply_actions(plan.actions[:k], APPLIED)
    world = converge(after, world, correct_drift=False)
    assert set(world.catalog.objects) == {o.name for o in after if o.kind not in ("Schema", "User")}


def test_report_mode_recreates_the_sinks_after_an_apply_interrupted_before_their_recreation() -> None:
    after = desired(acme_spec(alerts__stalledSessionMinutes=15))
    plan = plan_for(after, APPLIED, correct_drift=False)
    k = [a.type for a in plan.actions].index("create")  # everything up to the sinks' re-creation
    world = converge(after, apply_actions(plan.actions[:k], APPLIED), correct_drift=False)
    assert {"alerts_to_kafka", "alerts_to_postgres"} <= set(world.catalog.objects)


def test_report_mode_applies_later_spec_changes_to_an_object_whose_ledger_write_was_lost() -> None:
    objs = desired(BASE)
    plan = plan_for(objs, EMPTY, correct_drift=False)
    k = names(plan).index("acme.station_revenue") + 1
    world = converge(objs, apply_actions(plan.actions[:k], EMPTY, ddl_only_last=True), correct_drift=False)
    changed = plan_for(desired(acme_spec(analytics__revenueWindow="30m")), world, correct_drift=False)
    assert "acme.station_revenue" in names(changed, "swap")


def test_rebuilding_views_grants_the_reader_read_access_again_after_the_last_swap() -> None:
    plan = plan_for(desired(acme_spec(alerts__stalledSessionMinutes=15)), APPLIED)
    assert grant_sql(plan) == READER_GRANTS
    assert [a.type for a in plan.actions[-3:]] == ["grant"] * 3
    done = apply_actions(plan.actions, APPLIED).catalog
    assert all(readers == ("acme_reader",) for _, readers in grants(done))


def test_a_plan_without_new_views_grants_nothing() -> None:
    assert grant_sql(plan_for(desired(acme_spec(alerts__sinks__kafka=None)), APPLIED)) == []


def test_without_a_reader_user_no_user_or_grant_is_planned() -> None:
    objs = desired(acme_spec(readOnlyUser={"enabled": False}))
    plan = plan_for(objs, EMPTY)
    assert not [a for a in plan.actions if a.kind == "User"]
    removed = plan_for(objs, APPLIED)
    assert [(a.type, a.sql) for a in removed.actions] == [("drop", 'DROP USER IF EXISTS "acme_reader"')]


def test_an_apply_interrupted_before_its_grants_still_lets_the_reader_read_every_view() -> None:
    after = desired(acme_spec(alerts__stalledSessionMinutes=15))
    plan = plan_for(after, APPLIED)
    k = [a.type for a in plan.actions].index("grant")
    world = converge(after, apply_actions(plan.actions[:k], APPLIED))
    assert grants(world.catalog) == grants(APPLIED.catalog)


def test_teardown_drops_every_object_dependents_first_then_the_schema_and_forgets_the_tenant() -> None:
    world = _with(APPLIED, SimObject("MaterializedView", "acme", "alerts__next", 999))
    plan = teardown_plan(world.catalog)
    done = apply_actions(plan.actions, world).catalog
    assert done.objects == {}
    assert not done.schema_exists
    assert done.ledger == {}
    assert done.owner is None
    assert plan.destructive


def test_simulator_rejects_a_drop_that_would_leave_dependents_behind() -> None:
    plan = Plan(
        tenant="acme",
        actions=(
            Action(
                "drop",
                "MaterializedView",
                "acme.sessions",
                'DROP MATERIALIZED VIEW IF EXISTS "acme"."sessions"',
                "test",
                statement=sql.SQL('DROP MATERIALIZED VIEW IF EXISTS "acme"."sessions"'),
            ),
        ),
        drift=(),
        changed=(),
    )
    with pytest.raises(SimError, match="used by"):
        apply_to_catalog(plan, APPLIED.catalog)


def test_simulator_rejects_creating_an_object_before_what_it_reads() -> None:
    objs = desired(BASE)
    plan = plan_for(objs, EMPTY)
    sessions_first = tuple(a for a in plan.actions if a.name != "acme.ocpp_events")
    with pytest.raises(SimError, match="do not exist"):
        apply_actions(sessions_first, EMPTY)


def test_applied_catalog_records_every_object_the_schema_and_the_grants_in_the_ledger() -> None:
    cat = APPLIED.catalog
    assert set(cat.ledger) == {o.key for o in desired(BASE)} | {"@grants:acme_reader"}
    assert SCHEMA_KEY in cat.ledger
    assert cat.owner == OWNER


# --------------------------------------------------------------------------------------------
# Upgrade from the pipeline with the watermark and report-counting availability
# --------------------------------------------------------------------------------------------

#: The acme tenant as the previous pipeline left it (objects and ledger, recorded from its render).
OLD_PIPELINE = ROOT / "tests" / "unit" / "data" / "acme_before_time_weighted_availability.json"


def _old_pipeline_world() -> World:
    data = json.loads(OLD_PIPELINE.read_text(encoding="utf-8"))
    tenant = data["tenant"]
    in_schema = [o for o in data["objects"] if o["kind"] not in ("Schema", "User")]
    ids = {o["name"]: i for i, o in enumerate(in_schema, start=1)}
    users = frozenset(o["name"] for o in data["objects"] if o["kind"] == "User")
    objects = {
        o["name"]: SimObject(
            o["kind"],
            tenant,
            o["name"],
            ids[o["name"]],
            reads=frozenset(ids[d] for d in o["depends_on"]),
            grantees=users if o["kind"] in ("MaterializedView", "View") else frozenset(),
        )
        for o in in_schema
    }
    ledger = {
        e["name"]: LedgerEntry(tenant, e["name"], e["kind"], e["value"], tuple(e["depends_on"]))
        for e in data["ledger"]
    }
    catalog = TenantCatalog(tenant, True, objects, ledger, owner=OWNER, users=users)
    return World(catalog)


def test_upgrading_from_the_old_pipeline_rebuilds_the_source_subgraph_and_waits_for_approval() -> None:
    world = _old_pipeline_world()
    plan = plan_for(desired(BASE), world)
    assert plan.destructive  # the source loses its watermark: recreated, so approval is required
    assert "acme.ocpp_events" in plan.changed
    dropped = names(plan, "drop")
    created = names(plan, "create")
    assert "acme.connector_availability" in dropped
    assert "acme.connector_availability" not in created
    new_views = [
        "status_intervals", "status_minutes", "connector_status_time", "connector_uptime",
        "connector_status", "connector_status_live", "connector_down",
    ]  # fmt: skip
    for view in new_views:
        assert f"acme.{view}" in created
    # everything of the old pipeline that reads the source is rebuilt, nothing outside the tenant
    old_objects = set(world.catalog.objects)
    assert {n.split(".", 1)[1] for n in dropped} == old_objects
    reason = next(a.reason for a in plan.actions if a.name == "acme.connector_availability")
    assert reason == "no longer in the spec"
    (pg_sink,) = [a for a in plan.actions if a.type == "create" and a.name == "acme.alerts_to_postgres"]
    assert pg_sink.target_reset is not None
    assert as_text(pg_sink.target_reset) == 'DELETE FROM "public"."acme_alerts"'
    assert "clears its target table first" in pg_sink.reason
    # the upgrade converges: applied, the next plan is empty
    assert plan_for(desired(BASE), converge(desired(BASE), world)).empty


def test_a_sink_rebuild_clears_the_postgres_alert_table_before_recreating_the_sink() -> None:
    world = World(applied_catalog(desired(BASE), "acme"))
    plan = plan_for(desired(acme_spec(alerts__stalledSessionMinutes=15)), world)
    order = [(a.type, a.name) for a in plan.actions]
    drop_at = order.index(("drop", "acme.alerts_to_postgres"))
    create_at = order.index(("create", "acme.alerts_to_postgres"))
    assert drop_at < create_at
    resets = [a.name for a in plan.actions if a.target_reset is not None]
    assert resets == ["acme.alerts_to_postgres"]  # only the JDBC sink's creation clears its table
