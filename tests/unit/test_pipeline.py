"""The pipeline table is the one home of the tenant's objects: render follows it, every template's
placeholders follow from it, and the docs' object table agrees with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from charging_analytics import pipeline
from charging_analytics.pipeline import PIPELINE, READER, SCHEMA, Context, Entry
from charging_analytics.render import RenderOptions, render
from charging_analytics.spec import ChargingAnalytics, ChargingAnalyticsSpec

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"(?<!\{)\{([a-z_][a-z0-9_]*)\}(?!\})")


def _spec(**alerts: object) -> ChargingAnalyticsSpec:
    doc = next(
        d
        for d in yaml.safe_load_all((ROOT / "examples" / "acme.yaml").read_text(encoding="utf-8"))
        if isinstance(d, dict) and d.get("kind") == "ChargingAnalytics"
    )
    doc["spec"]["alerts"].update(alerts)
    return ChargingAnalytics.model_validate(doc).spec


def _placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall((ROOT / "sql" / f"{template}.sql").read_text(encoding="utf-8")))


@pytest.mark.parametrize("entry", PIPELINE, ids=lambda e: e.key)
def test_each_template_names_its_object_and_exactly_the_relations_the_table_says_it_reads(
    entry: Entry,
) -> None:
    names = _placeholders(entry.template)
    assert entry.template in names, f"sql/{entry.template}.sql has no {{{entry.template}}} placeholder"
    relations = {e.key for e in PIPELINE} - {entry.key}
    read_in_template = names & relations
    if entry.key == "alerts":  # its relations arrive through the branch templates
        read_in_template = {r for e in PIPELINE if e.alert_branch for r in _placeholders(e.alert_branch)}
    assert read_in_template == set(entry.reads), (entry.key, sorted(read_in_template), entry.reads)


def test_the_alerts_view_reads_exactly_the_views_that_contribute_an_alert_branch() -> None:
    alerts = pipeline.BY_KEY["alerts"]
    assert alerts.reads == tuple(e.key for e in PIPELINE if e.alert_branch is not None)
    for e in PIPELINE:
        if e.alert_branch is not None:
            assert _placeholders(e.alert_branch) == {e.key}


def test_every_entry_reads_only_entries_created_before_it() -> None:
    seen: set[str] = set()
    for e in PIPELINE:
        assert set(e.reads) <= seen, (e.key, set(e.reads) - seen)
        seen.add(e.key)


@pytest.mark.parametrize(
    ("alerts", "store"),
    [
        ({}, "inline"),
        ({}, "risingwave"),
        ({"connectorFaults": False, "availabilityBelowPercent": None}, "inline"),
        ({"sinks": {}}, "risingwave"),
    ],
)
def test_render_builds_the_enabled_entries_in_table_order_with_the_tables_dependencies(
    alerts: dict[str, object], store: str
) -> None:
    spec = _spec(**alerts)
    objects = render(spec, RenderOptions(secret_store=store))  # type: ignore[arg-type]
    enabled = list(pipeline.entries(Context(spec, store)))  # type: ignore[arg-type]
    assert [o.kind for o in objects] == [e.kind for e in enabled]
    assert [o.name for o in objects] == [pipeline.object_name(e, spec.tenant) for e in enabled]
    built = {e.key for e in enabled}
    for o, e in zip(objects, enabled, strict=True):
        assert o.depends_on == pipeline.dependencies(e, built)
        assert set(o.depends_on) <= built
    if not spec.alerts.connector_faults:
        assert "connector_faults" not in built
        alerts_view = next(o for o in objects if o.name == "alerts")
        assert "connector_faults" not in alerts_view.sql


def test_secrets_are_built_only_with_the_risingwave_store_and_only_for_credentials_in_use() -> None:
    spec = _spec(sinks={})
    inline = {e.key for e in pipeline.entries(Context(spec, "inline"))}
    stored = {e.key for e in pipeline.entries(Context(spec, "risingwave"))}
    assert not any(pipeline.BY_KEY[k].kind == "Secret" for k in inline)
    uses_kafka_credentials = spec.kafka.security.credentials_secret_ref is not None
    assert ("kafka_username" in stored) == uses_kafka_credentials
    assert "alerts_db_username" not in stored  # no PostgreSQL sink, no database secret


def test_the_architecture_docs_list_exactly_the_tables_objects() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Naming", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `acme(?:\.([a-z_]+))?(_reader)?`", section, flags=re.MULTILINE))
    names = {rel or ("@reader" if reader else "@schema") for rel, reader in documented}
    secrets = {e.key for e in PIPELINE if e.kind == "Secret"}
    expected = {e.key for e in PIPELINE} - secrets
    assert names - secrets == expected
    assert names & secrets  # the secrets are one row, named by an example
    assert {SCHEMA, READER} <= expected
