"""The generated dashboard: valid in Grafana's JSON model, laid out on the 24-column grid, bound to
the tenant's data source, following the pipeline, and free of credentials."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from charging_analytics.cli import main
from charging_analytics.dashboard import (
    DashboardError,
    dashboard,
    dashboard_json,
    datasource_uid,
    panels,
)
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.validation import load_file
from tests.e2e.evaluation.test_views_on_postgres import spec

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).parent / "grafana-dashboard.schema.json").read_text(encoding="utf-8"))
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def validate(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_tenant_dashboard_validates_against_the_schema(example: Path) -> None:
    for resource in load_file(example).resources:
        validate(dashboard(resource.spec))


def test_the_schema_rejects_what_grafana_would_not_read() -> None:
    doc = dashboard(spec())
    doc["panels"][0]["gridPos"]["w"] = 25
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    doc = dashboard(spec())
    doc["panels"][1]["targets"][0]["rawsql"] = doc["panels"][1]["targets"][0].pop("rawSql")
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_panels_do_not_overlap_on_the_grid() -> None:
    cells: set[tuple[int, int]] = set()
    for p in dashboard(spec())["panels"]:
        g = p["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area, p["title"]
        cells |= area


def test_every_query_reads_the_tenant_schema_through_its_data_source() -> None:
    doc = dashboard(spec())
    uid = datasource_uid("truth")
    for p in doc["panels"]:
        assert p["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid for t in p["targets"])
        assert '"truth".' in p["targets"][0]["rawSql"]
        assert "$station" in p["targets"][0]["rawSql"]
    (station,) = doc["templating"]["list"]
    assert station["name"] == "station"
    assert station["multi"]
    assert station["includeAll"]


def test_revenue_is_shown_in_the_tenant_currency() -> None:
    eur = {p["title"]: p for p in dashboard(spec())["panels"]}
    assert eur["Revenue per station (EUR)"]["fieldConfig"]["defaults"]["unit"] == "currencyEUR"
    data = spec().model_dump(by_alias=True)
    data["analytics"]["tariffs"]["currency"] = "AUD"
    aud = {p["title"]: p for p in dashboard(ChargingAnalyticsSpec.model_validate(data))["panels"]}
    assert aud["Revenue per station (AUD)"]["fieldConfig"]["defaults"]["unit"] == "suffix: AUD"


def test_a_panel_on_a_view_the_pipeline_does_not_render_fails_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import charging_analytics.dashboard as module
    from charging_analytics.render import render

    monkeypatch.setattr(module, "render", lambda s: [o for o in render(s) if o.name != "connector_uptime"])
    with pytest.raises(DashboardError, match="no view 'connector_uptime'"):
        panels(spec())


def test_long_tenant_names_keep_grafana_uids_within_40_characters() -> None:
    long = "t" + "x" * 39
    assert len(datasource_uid(long)) <= 40
    assert datasource_uid(long) != datasource_uid(long[:-1] + "y")


def test_dashboard_json_is_stable_and_holds_no_credential() -> None:
    (resource,) = load_file(REPO / "examples" / "acme.yaml").resources
    text = dashboard_json(resource.spec)
    assert text == dashboard_json(resource.spec)
    for word in ("password", "secret", "sasl"):
        assert word not in text.lower()


def test_cli_prints_the_dashboard_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboard", "-f", str(REPO / "examples" / "voltbay.yaml")]) == 0
    (resource,) = load_file(REPO / "examples" / "voltbay.yaml").resources
    assert json.loads(capsys.readouterr().out) == dashboard(resource.spec)


def test_cli_asks_for_a_tenant_when_the_file_holds_several(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = tmp_path / "both.yaml"
    both.write_text("\n---\n".join(p.read_text(encoding="utf-8") for p in EXAMPLES), encoding="utf-8")
    assert main(["dashboard", "-f", str(both)]) == 1
    assert "choose one with --tenant" in capsys.readouterr().err
    assert main(["dashboard", "-f", str(both), "--tenant", "acme"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "EV charging: acme"
