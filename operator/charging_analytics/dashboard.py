"""The tenant's Grafana dashboard, generated from its pipeline (pure).

Every panel reads one view of the rendered pipeline: the view's qualified name comes from
:func:`charging_analytics.render.render` for the same spec (so a view that the spec does not
render, or that was renamed, fails generation instead of leaving a broken panel), and each panel
declares the columns and types its field config expects (``Panel.fields``), which the tests check
against the views evaluated by PostgreSQL.

The queries are for Grafana's PostgreSQL data source pointed at RisingWave (it speaks the
PostgreSQL protocol). They use only the data source's documented macros and variables
(https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros):
``$__timeFilter(column)`` and the multi-value ``$station`` variable, which Grafana expands to a
quoted, comma-separated list.

The JSON follows Grafana's dashboard model
(https://grafana.com/docs/grafana/latest/dashboards/build-dashboards/view-dashboard-json-model/).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from psycopg import sql
from psycopg.sql import Composed, Identifier

from .render import as_text, render
from .spec import ChargingAnalyticsSpec

#: Grafana's data frame field types, as the panels' field configs expect them.
FieldType = Literal["number", "string", "time", "boolean"]

#: Grafana >= 10.2 names its core PostgreSQL data source plugin this way.
DATASOURCE_TYPE = "grafana-postgresql-datasource"
#: Grafana uids are at most 40 characters.
_UID_MAX = 40
#: The version of Grafana's dashboard JSON model these dashboards are written in (Grafana 10.x,
#: which newer Grafana versions migrate on load).
SCHEMA_VERSION = 39
STATION_FILTER = "station_id IN ($station)"

#: Grafana's built-in currency units; other ISO codes get a suffix unit.
_CURRENCY_UNITS = {
    "USD": "currencyUSD",
    "EUR": "currencyEUR",
    "GBP": "currencyGBP",
    "JPY": "currencyJPY",
    "CHF": "currencyCHF",
    "SEK": "currencySEK",
    "NOK": "currencyNOK",
    "DKK": "currencyDKK",
    "PLN": "currencyPLN",
    "CZK": "currencyCZK",
    "INR": "currencyINR",
    "BRL": "currencyBRL",
}


class DashboardError(ValueError):
    """The spec does not render a view that a panel reads."""


def currency_unit(currency: str) -> str:
    return _CURRENCY_UNITS.get(currency, f"suffix: {currency}")


def datasource_uid(tenant: str) -> str:
    """The uid of the tenant's RisingWave data source (stable, within Grafana's 40 characters)."""
    uid = f"cha-{tenant}"
    if len(uid) <= _UID_MAX:
        return uid
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    return f"cha-{tenant[: _UID_MAX - 13]}-{digest}"


def dashboard_uid(tenant: str) -> str:
    return datasource_uid(tenant).replace("cha-", "chad-", 1)[:_UID_MAX]


def _relations(spec: ChargingAnalyticsSpec) -> Callable[[str], sql.Identifier]:
    """The qualified name of a view as ``render(spec)`` creates it (an error if it does not)."""
    rendered = {o.name: o for o in render(spec) if o.kind in ("MaterializedView", "View")}

    def rel(name: str) -> sql.Identifier:
        if name not in rendered:
            raise DashboardError(f"the pipeline of tenant {spec.tenant!r} has no view {name!r}")
        return sql.Identifier(rendered[name].schema, rendered[name].name)

    return rel


@dataclass(frozen=True)
class Panel:
    """One panel: what it reads and how Grafana shows it.

    In :data:`PANELS` a panel is the same for every tenant: ``{currency}`` in its title stands for
    the tariffs' currency and the unit :data:`CURRENCY` for its Grafana unit; its query
    ``template`` reads ``{view}`` and filters by ``{stations}``. :meth:`for_tenant` makes them
    concrete.
    """

    title: str
    kind: Literal["stat", "timeseries", "barchart", "state-timeline", "table"]
    view: str
    template: str
    #: Columns (in order) and the Grafana field type each must have.
    fields: Mapping[str, FieldType]
    #: ``time_series`` (long format with a ``time`` column) or ``table``.
    format: Literal["time_series", "table"] = "table"
    units: Mapping[str, str] = field(default_factory=dict)
    width: int = 12
    height: int = 8
    options: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: The query, for one tenant.
    sql: Composed = field(default_factory=lambda: Composed([]))

    @property
    def query(self) -> str:
        return as_text(self.sql)

    def for_tenant(self, rel: Callable[[str], Identifier], currency: str) -> Panel:
        return replace(
            self,
            title=self.title.format(currency=currency),
            units={c: currency_unit(currency) if u == CURRENCY else u for c, u in self.units.items()},
            options=copy.deepcopy(self.options),
            defaults=copy.deepcopy(self.defaults),
            sql=sql.SQL(self.template).format(view=rel(self.view), stations=sql.SQL(STATION_FILTER)),
        )


#: The unit of a panel's money column: the Grafana unit of the tenant's currency.
CURRENCY = "@currency"
_STACKED_BARS = {"custom": {"drawStyle": "bars", "stacking": {"mode": "normal", "group": "A"}}}
_UPTIME_THRESHOLDS = {
    "min": 0,
    "max": 100,
    "color": {"mode": "thresholds"},
    "thresholds": {
        "mode": "absolute",
        "steps": [
            {"color": "red", "value": None},
            {"color": "orange", "value": 50},
            {"color": "green", "value": 95},
        ],
    },
}

#: The tenant's panels, in the dashboard's order.
PANELS: tuple[Panel, ...] = (
    Panel(
        "Open sessions", "stat", "active_sessions_live",
        "SELECT COUNT(*) AS open_sessions, COALESCE(SUM(energy_kwh), 0) AS energy_kwh,"
        " COALESCE(MAX(idle_minutes), 0) AS longest_idle_minutes FROM {view} WHERE {stations}",
        {"open_sessions": "number", "energy_kwh": "number", "longest_idle_minutes": "number"},
        units={"open_sessions": "none", "energy_kwh": "kwatth", "longest_idle_minutes": "m"},
        width=24, height=5,
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    ),
    Panel(
        "Completed sessions per station", "timeseries", "station_revenue",
        "SELECT window_end AS time, station_id, sessions FROM {view}"
        " WHERE $__timeFilter(window_end) AND {stations} ORDER BY 1, 2",
        {"time": "time", "station_id": "string", "sessions": "number"},
        format="time_series", units={"sessions": "none"}, defaults=_STACKED_BARS,
    ),
    Panel(
        "Revenue per station ({currency})", "timeseries", "station_revenue",
        "SELECT window_end AS time, station_id, COALESCE(revenue, 0) AS revenue FROM {view}"
        " WHERE $__timeFilter(window_end) AND {stations} ORDER BY 1, 2",
        {"time": "time", "station_id": "string", "revenue": "number"},
        format="time_series", units={"revenue": CURRENCY}, defaults=_STACKED_BARS,
    ),
    Panel(
        "Energy per connector type", "barchart", "completed_sessions",
        "SELECT COALESCE(connector_type, 'unknown') AS connector_type, SUM(energy_kwh) AS energy_kwh"
        " FROM {view} WHERE $__timeFilter(stopped_at) AND {stations} GROUP BY 1 ORDER BY 1",
        {"connector_type": "string", "energy_kwh": "number"},
        units={"energy_kwh": "kwatth"},
    ),
    Panel(
        "Connector uptime", "state-timeline", "connector_uptime",
        "SELECT window_end AS time, station_id || ' #' || CAST(connector_id AS VARCHAR) AS connector,"
        " uptime_pct FROM {view} WHERE $__timeFilter(window_end) AND {stations} ORDER BY 1, 2",
        {"time": "time", "connector": "string", "uptime_pct": "number"},
        format="time_series", units={"uptime_pct": "percent"}, defaults=_UPTIME_THRESHOLDS,
        width=24, height=10,
    ),
    Panel(
        "Connector status", "table", "connector_status_live",
        "SELECT station_id, connector_id, status, error_code, since, is_up, minutes_in_status"
        " FROM {view} WHERE {stations} ORDER BY 1, 2",
        {"station_id": "string", "connector_id": "number", "status": "string", "error_code": "string",
         "since": "time", "is_up": "boolean", "minutes_in_status": "number"},
        units={"minutes_in_status": "m"},
    ),
    Panel(
        "Open alerts", "table", "alerts",
        "SELECT severity, alert_type, station_id, connector_id, session_id, detail, detected_at"
        " FROM {view} WHERE {stations}"
        " ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,"
        " detected_at, alert_id",
        {"severity": "string", "alert_type": "string", "station_id": "string", "connector_id": "number",
         "session_id": "string", "detail": "string", "detected_at": "time"},
    ),
    Panel(
        "Stalled sessions", "table", "stalled_sessions",
        "SELECT station_id, session_id, connector_id, connector_type, started_at,"
        " last_event_at, energy_kwh FROM {view} WHERE {stations} ORDER BY last_event_at, 1, 2",
        {"station_id": "string", "session_id": "string", "connector_id": "number",
         "connector_type": "string", "started_at": "time", "last_event_at": "time",
         "energy_kwh": "number"},
        units={"energy_kwh": "kwatth"},
    ),
)  # fmt: skip


def panels(spec: ChargingAnalyticsSpec) -> list[Panel]:
    """The tenant's panels, each reading a view that ``render(spec)`` creates."""
    rel = _relations(spec)
    return [p.for_tenant(rel, spec.analytics.tariffs.currency) for p in PANELS]


def station_query(spec: ChargingAnalyticsSpec) -> str:
    """The ``station`` variable's values: every station with a status or a session."""
    rel = _relations(spec)
    parts = [
        sql.SQL("SELECT station_id FROM {}").format(rel(n))
        for n in ("connector_status", "active_sessions", "completed_sessions")
    ]
    return as_text(sql.SQL(" UNION ").join(parts) + sql.SQL(" ORDER BY 1"))


def _overrides(p: Panel) -> list[dict[str, Any]]:
    if len(p.units) == 1:
        return []  # the unit is the default: a long-format series' fields carry labels in their names
    return [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "unit", "value": unit}]}
        for name, unit in p.units.items()
    ]


def _defaults(p: Panel) -> dict[str, Any]:
    out = dict(p.defaults)
    if len(p.units) == 1:
        (out["unit"],) = p.units.values()
    return out


def _panel_json(p: Panel, pid: int, x: int, y: int, ds: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": pid,
        "type": p.kind,
        "title": p.title,
        "description": f"From view {p.view}.",
        "datasource": dict(ds),
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "targets": [
            {
                "refId": "A",
                "datasource": dict(ds),
                "editorMode": "code",
                "format": p.format,
                "rawQuery": True,
                "rawSql": p.query,
            }
        ],
        "fieldConfig": {"defaults": _defaults(p), "overrides": _overrides(p)},
        "options": dict(p.options),
    }


def dashboard(spec: ChargingAnalyticsSpec) -> dict[str, Any]:
    """The tenant's dashboard in Grafana's JSON model, reading the data source ``datasource_uid``."""
    ds = {"type": DATASOURCE_TYPE, "uid": datasource_uid(spec.tenant)}
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    for pid, p in enumerate(panels(spec), start=1):
        if x + p.width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(_panel_json(p, pid, x, y, ds))
        x += p.width
        row_height = max(row_height, p.height)
    station = {
        "name": "station",
        "label": "Station",
        "type": "query",
        "datasource": dict(ds),
        "query": station_query(spec),
        "definition": station_query(spec),
        "refresh": 2,  # on time range change
        "multi": True,
        "includeAll": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }
    return {
        "uid": dashboard_uid(spec.tenant),
        "title": f"EV charging: {spec.tenant}",
        "tags": ["charging-analytics", f"tenant:{spec.tenant}"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": f"now-{spec.analytics.state_retention}", "to": "now"},
        "templating": {"list": [station]},
        "annotations": {"list": []},
        "links": [],
        "panels": out,
    }


def dashboard_json(spec: ChargingAnalyticsSpec) -> str:
    """The dashboard as stable JSON text (sorted keys, so an unchanged pipeline is an unchanged text)."""
    return json.dumps(dashboard(spec), indent=2, sort_keys=True)
