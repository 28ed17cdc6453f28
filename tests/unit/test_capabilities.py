"""Version facts and what render and plan do with them (pure)."""

from __future__ import annotations

import pytest

from charging_analytics.catalog import LedgerEntry, ObservedObject, TenantCatalog
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import Credential, Credentials, RenderOptions, render
from charging_analytics.rw.capabilities import (
    BASELINE,
    FACTS,
    FLOOR,
    NEWEST_KNOWN,
    UnsupportedRisingWaveVersion,
    Version,
    capabilities_for,
    parse_version,
)
from tests.testbed.rw_double.test_versions import _spec
from tests.unit.test_plan import ledger_entries


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("PostgreSQL 13.14.0-RisingWave-2.3.0 (0a1b2c3d)", Version(2, 3, 0)),
        ("PostgreSQL 13.14.0-RisingWave-3.0.3 (unknown)", Version(3, 0, 3)),
        ("PostgreSQL 13.14.0-RisingWave-3.2.0-alpha (448c657)", Version(3, 2, 0)),
        ("PostgreSQL 13.14.0-RisingWave-2.2.6 (abc)", Version(2, 2, 6)),
    ],
)
def test_risingwave_version_strings_parse(text: str, version: Version) -> None:
    assert parse_version(text) == version


def test_a_plain_postgresql_is_not_taken_for_risingwave() -> None:
    with pytest.raises(ValueError, match="not a RisingWave version"):
        parse_version("PostgreSQL 15.4 on x86_64-pc-linux-gnu")


def test_the_floor_is_the_newest_required_fact() -> None:
    assert Version(2, 3, 0) == FLOOR
    assert Version(3, 0, 0) <= NEWEST_KNOWN
    assert all(f.source.startswith("https://") for f in FACTS)
    assert BASELINE.version == FLOOR


def test_below_the_floor_the_error_names_both_versions() -> None:
    caps = capabilities_for(Version(2, 2, 6))
    assert not caps.supported
    with pytest.raises(UnsupportedRisingWaveVersion) as info:
        caps.require_supported("rw:4566/dev")
    message = str(info.value)
    assert "2.2.6" in message
    assert "2.3.0" in message
    assert "Nothing was applied" in message


@pytest.mark.parametrize(
    ("version", "alter_source", "wait_targets"),
    [("2.3.0", False, False), ("2.5.9", False, False), ("2.6.0", True, False), ("3.0.0", True, True)],
)
def test_capabilities_follow_the_version(version: str, alter_source: bool, wait_targets: bool) -> None:
    caps = capabilities_for(Version.of(version))
    assert caps.supported
    assert caps.alter_source_connector is alter_source
    assert caps.wait_targets is wait_targets


def _applied_catalog(tenant: str, options: RenderOptions) -> TenantCatalog:
    objects = render(_spec(tenant), options)
    observed = {
        o.key: ObservedObject.read(o.kind, tenant, o.name, i, o.sql)
        for i, o in enumerate(objects)
        if o.kind not in ("Schema", "User")
    }
    ledger: dict[str, LedgerEntry] = ledger_entries(objects, tenant)
    users = frozenset(o.name for o in objects if o.kind == "User")
    return TenantCatalog(tenant, True, objects=observed, ledger=ledger, users=users)


def _creds(tenant: str, kafka_password: str) -> Credentials:
    return Credentials(
        kafka=Credential("pipeline", kafka_password),
        alerts_db=Credential("writer", "db"),
        reader=Credential(f"{tenant}_reader", "ro"),
    )


@pytest.mark.parametrize("version", ["2.6.0", "3.0.3"])
def test_rotated_kafka_credential_is_an_in_place_update_from_2_6(version: str) -> None:
    tenant = "rot"
    caps = capabilities_for(Version.of(version))
    catalog = _applied_catalog(tenant, RenderOptions(credentials=_creds(tenant, "old"), capabilities=caps))
    rotated = render(_spec(tenant), RenderOptions(credentials=_creds(tenant, "new"), capabilities=caps))
    plan = build_plan(rotated, catalog, PlanOptions(ledger_exists=True))
    source = [a for a in plan.actions if a.name == f"{tenant}.ocpp_events"]
    assert [(a.type, a.destructive) for a in source] == [("update", False)]
    assert source[0].sensitive == ("pipeline", "new")
    assert "new" not in source[0].sql
    assert not plan.destructive


def test_rotated_kafka_credential_recreates_the_source_before_2_6() -> None:
    tenant = "rot"
    options = RenderOptions(credentials=_creds(tenant, "old"), capabilities=BASELINE)
    catalog = _applied_catalog(tenant, options)
    rotated = render(_spec(tenant), RenderOptions(credentials=_creds(tenant, "new"), capabilities=BASELINE))
    plan = build_plan(rotated, catalog, PlanOptions(ledger_exists=True))
    assert plan.destructive
    assert all(a.type != "update" for a in plan.actions if a.name == f"{tenant}.ocpp_events")


def test_a_changed_source_definition_is_rebuilt_even_when_alter_is_available() -> None:
    """ALTER SOURCE ... CONNECTOR WITH only rotates credentials; any other change rebuilds."""
    tenant = "rot"
    caps = capabilities_for(NEWEST_KNOWN)
    catalog = _applied_catalog(tenant, RenderOptions(credentials=_creds(tenant, "old"), capabilities=caps))
    base = _spec(tenant)
    spec = base.model_copy(update={"kafka": base.kafka.model_copy(update={"events_topic": "other.topic"})})
    plan = build_plan(
        render(spec, RenderOptions(credentials=_creds(tenant, "new"), capabilities=caps)),
        catalog,
        PlanOptions(ledger_exists=True),
    )
    assert plan.destructive
    assert all(a.type != "update" for a in plan.actions if a.name == f"{tenant}.ocpp_events")
