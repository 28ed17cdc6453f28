"""Every panel's SQL, as Grafana sends it, against the tenant's views evaluated by PostgreSQL over
traffic with known sessions, statuses and alerts: each returns the columns and types its field
config expects, and the numbers the views hold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from charging_analytics.dashboard import FieldType, Panel, panels, station_query
from charging_analytics.evaluate import evaluate
from charging_analytics.render import render
from testbed.postgres import PostgresServer
from tests.e2e.evaluation.test_views_on_postgres import AT, expected_completed, spec, traffic
from tests.unit.grafana import interpolate

#: PostgreSQL types -> the field type Grafana's PostgreSQL data source gives them.
GRAFANA_TYPE: dict[str, FieldType] = {
    "int2": "number",
    "int4": "number",
    "int8": "number",
    "numeric": "number",
    "float4": "number",
    "float8": "number",
    "varchar": "string",
    "text": "string",
    "timestamptz": "time",
    "timestamp": "time",
    "bool": "boolean",
}
ALL_STATIONS = ["ST-A", "ST-B", "ST-C", "ST-D", "ST-E", "ST-F", "ST-G", "ST-H", "ST-S"]

Result = tuple[list[tuple[str, str]], list[tuple[Any, ...]]]


def run_panels(conn: psycopg.Connection[Any], stations: list[str]) -> dict[str, Result]:
    """(column, PostgreSQL type) and rows of every panel, plus the station variable's values."""
    the_spec = spec()
    results: dict[str, Result] = {}

    def query(cur: psycopg.Cursor[Any]) -> None:
        cur.execute("SELECT oid, typname FROM pg_type")
        typnames = dict(cur.fetchall())
        queries = {p.title: p.query for p in panels(the_spec)} | {"$station": station_query(the_spec)}
        for title, text in queries.items():
            cur.execute(interpolate(text, AT - timedelta(hours=24), AT, {"station": stations}))
            columns = [(d.name, typnames[d.type_code]) for d in cur.description or ()]
            results[title] = (columns, cur.fetchall())

    evaluate(conn, render(the_spec), traffic().delivered(), AT, then=query)
    return results


@pytest.fixture(scope="module")
def pg(postgres_server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def every_station(pg: psycopg.Connection[Any]) -> dict[str, Result]:
    return run_panels(pg, ALL_STATIONS)


def rows_of(result: Result) -> list[dict[str, Any]]:
    names = [n for n, _ in result[0]]
    return [dict(zip(names, r, strict=True)) for r in result[1]]


@pytest.mark.parametrize("panel", panels(spec()), ids=lambda p: p.title)
def test_panel_returns_the_columns_and_types_its_field_config_expects(
    every_station: dict[str, Result], panel: Panel
) -> None:
    columns, rows = every_station[panel.title]
    assert [(name, GRAFANA_TYPE[pg_type]) for name, pg_type in columns] == list(panel.fields.items())
    assert rows, f"{panel.title}: no rows over traffic that should fill it"
    for unit_field in panel.units:
        assert unit_field in panel.fields


def test_station_variable_lists_every_station_with_a_status_or_a_session(
    every_station: dict[str, Result],
) -> None:
    columns, rows = every_station["$station"]
    assert [GRAFANA_TYPE[t] for _, t in columns] == ["string"]
    # ST-H's sessions stopped 23 h and 25 h ago: one is still inside stateRetention
    assert [r[0] for r in rows] == ALL_STATIONS


def test_open_sessions_count_energy_and_longest_idle(every_station: dict[str, Result]) -> None:
    (row,) = rows_of(every_station["Open sessions"])
    assert row["open_sessions"] == 2  # s1 (stalled) and s2 (charging)
    open_truth = [s for s in traffic().sessions if s.stopped_at is None]
    assert row["energy_kwh"] == sum(s.energy_kwh for s in open_truth)
    longest = max((AT - s.last_event_at).total_seconds() / 60 for s in open_truth)
    assert float(row["longest_idle_minutes"]) == pytest.approx(longest, abs=0.05)


def test_revenue_panel_has_one_point_per_station_window_and_unpriced_as_zero(
    every_station: dict[str, Result],
) -> None:
    rows = rows_of(every_station["Revenue per station (EUR)"])
    sessions = rows_of(every_station["Completed sessions per station"])
    assert [(r["time"], r["station_id"]) for r in rows] == [(r["time"], r["station_id"]) for r in sessions]
    assert sum(r["sessions"] for r in sessions) == len(expected_completed(traffic()))
    by_station = {r["station_id"]: r["revenue"] for r in rows}
    assert by_station["ST-F"] == 0  # GB/T is not priced
    assert by_station["ST-A"] > 0


def test_stalled_and_alert_tables_list_critical_alerts_first(every_station: dict[str, Result]) -> None:
    stalled = rows_of(every_station["Stalled sessions"])
    assert [r["session_id"] for r in stalled] == ["s1"]
    alerts = rows_of(every_station["Open alerts"])
    severities = [a["severity"] for a in alerts]
    assert severities == sorted(severities, key=lambda s: s != "critical")
    assert {(a["alert_type"], a["station_id"]) for a in alerts} >= {
        ("ConnectorDown", "ST-D"),
        ("StalledSession", "ST-S"),
    }


def test_station_variable_filters_every_panel(pg: psycopg.Connection[Any]) -> None:
    only_d = run_panels(pg, ["ST-D"])
    for title, (_, rows) in only_d.items():
        if title == "$station":
            continue  # the variable's own values are not filtered by it
        stations = {r[i] for r in rows for i, (n, _) in enumerate(only_d[title][0]) if n == "station_id"}
        assert stations <= {"ST-D"}, title
    (open_row,) = rows_of(only_d["Open sessions"])
    assert open_row["open_sessions"] == 0
    status = rows_of(only_d["Connector status"])
    assert [(s["connector_id"], s["status"], s["is_up"]) for s in status] == [(1, "Faulted", False)]
