"""Rendered SQL: golden files for the examples, one statement each, and the RisingWave lint.

``UPDATE_GOLDEN=1 python3 -m pytest tests/unit/test_render_golden.py`` rewrites ``tests/golden/``.
The lint (``testbed/sqllint.py``) is itself tested: every rule rejects the broken tutorial statement
it was written for (each fails for a reason docs/risingwave.md §3, §4 or §6 states), accepts the
fixed statement, and catches the same mistake planted into the real templates.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
import yaml
from sqlglot import exp

from charging_analytics import cli
from charging_analytics.render import Digester, RenderOptions, as_text, render
from charging_analytics.templates import PACKAGED, Templates
from charging_analytics.validation import Manifests, parse_documents
from testbed.sqllint import (
    Linter,
    SecretRef,
    SqlParseError,
    lint,
    match_command,
    parse_one_statement,
    statement_kind,
    table_key,
    with_properties,
)

#: One digest cache for this module's renderings, as the service keeps one for all of its own.
DIGESTER = Digester()
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GOLDEN = ROOT / "tests" / "golden"

#: golden file stem -> (example, extra CLI arguments)
GOLDEN_CASES: dict[str, tuple[str, list[str]]] = {
    "acme": ("acme.yaml", []),
    "voltbay": ("voltbay.yaml", []),
    "acme.risingwave-secrets": ("acme.yaml", ["--secret-store", "risingwave"]),
}


def _manifests(example: str) -> Manifests:
    docs = yaml.safe_load_all((EXAMPLES / example).read_text(encoding="utf-8"))
    return parse_documents(list(docs), example)


def _rendered(example: str, store: str, sql_templates: Templates = PACKAGED) -> list:
    manifests = _manifests(example)
    out = []
    for resource in manifests.resources:
        creds, _ = asyncio.run(manifests.credentials_for(resource))
        options = RenderOptions(
            secret_store=store,  # type: ignore[arg-type]
            credentials=creds,
            templates=sql_templates,
            digester=DIGESTER,
        )
        out.append(render(resource.spec, options))
    return out


def test_every_example_has_a_golden_case() -> None:
    assert {case[0] for case in GOLDEN_CASES.values()} == {p.name for p in EXAMPLES.glob("*.yaml")}


@pytest.mark.parametrize("stem", list(GOLDEN_CASES))
def test_render_output_matches_the_golden_file(stem: str, capsys: pytest.CaptureFixture[str]) -> None:
    example, extra = GOLDEN_CASES[stem]
    assert cli.main(["render", "-f", str(EXAMPLES / example), *extra]) == 0
    out = capsys.readouterr().out
    golden = GOLDEN / f"{stem}.sql"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(out, encoding="utf-8")
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1"
    assert out == golden.read_text(encoding="utf-8"), (
        f"render of {example} changed: review, then UPDATE_GOLDEN=1"
    )


@pytest.mark.parametrize("store", ["inline", "risingwave"])
@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_rendered_statement_is_one_statement_that_passes_every_lint_rule(
    example: str, store: str
) -> None:
    for objects in _rendered(example, store):
        for form in ("display", "executable"):
            texts = [o.sql if form == "display" else as_text(o.statement) for o in objects]
            for text in texts:
                parse_one_statement(text)
            report = lint(texts)
            assert report.violations == [], f"{example} ({store}, {form}):\n{report}"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_every_rendered_statement_creates_the_object_it_is_rendered_for(example: str) -> None:
    kinds = {"Schema": "SCHEMA", "Source": "SOURCE", "MaterializedView": "MATERIALIZED VIEW", "View": "VIEW",
             "Sink": "SINK", "Secret": "CREATE SECRET", "User": "CREATE USER"}  # fmt: skip
    for store in ("inline", "risingwave"):
        for objects in _rendered(example, store):
            for o in objects:
                stmt = parse_one_statement(o.sql)
                assert statement_kind(stmt) == kinds[o.kind], o.qualified
                if o.kind != "User":  # RisingWave has no CREATE USER IF NOT EXISTS (§8)
                    assert "IF NOT EXISTS" in o.sql.split("\n", 1)[0], f"{o.qualified} is not idempotent"


def test_risingwave_secret_store_references_secrets_instead_of_values() -> None:
    (objects,) = _rendered("acme.yaml", "risingwave")
    by_name = {o.name: o for o in objects}
    source = with_properties(parse_one_statement(as_text(by_name["ocpp_events"].statement)))
    password = source["properties.sasl.password"]
    assert isinstance(password, SecretRef)
    assert table_key(password.this) == "acme.kafka_password"
    sink = with_properties(parse_one_statement(as_text(by_name["alerts_to_postgres"].statement)))
    assert isinstance(sink["password"], SecretRef)
    assert isinstance(sink["user"], SecretRef)
    assert "change-me" not in as_text(by_name["ocpp_events"].statement)


# --------------------------------------------------------------------------------------------
# The extended dialect and the statement checks
# --------------------------------------------------------------------------------------------


def test_secret_property_values_parse_as_secret_references_including_as_file() -> None:
    stmt = parse_one_statement(
        'CREATE SOURCE s (a INT) WITH (connector = \'kafka\', properties.sasl.password = SECRET "t"."pw", '
        "properties.ssl.ca.location = SECRET ca AS FILE) FORMAT PLAIN ENCODE JSON"
    )
    props = with_properties(stmt)
    assert isinstance(props["properties.sasl.password"], SecretRef)
    assert not props["properties.sasl.password"].args.get("file")
    assert props["properties.ssl.ca.location"].args.get("file") is True
    assert props["connector"].this == "kafka"


@pytest.mark.parametrize(
    "text",
    [
        "SELECT 1; SELECT 2",
        "CREATE SCHEMA a; DROP SCHEMA b",
        "CREATE SECRET \"a\".\"b\" WITH (backend = 'meta') AS 'x'; DROP TABLE y",
        "CREATE SECRET \"a\".\"b\" WITH (backend = 'meta') AS 'x' 'y'",
        "CREATE SECRET \"a\".\"b\" WITH (backend = 'meta') AS 'x'' OR 1=1",
        'ALTER MATERIALIZED VIEW "a"."b" SWAP WITH "a"."c" CASCADE',
        "GRANT ALL ON SCHEMA a TO b; DROP SCHEMA a",
        'CREATE SINK s FROM t WITH (password = SECRET "a". )',
        "",
    ],
)
def test_parse_one_statement_rejects_anything_but_exactly_one_well_formed_statement(text: str) -> None:
    with pytest.raises(SqlParseError):
        parse_one_statement(text)


@pytest.mark.parametrize(
    ("text", "label"),
    [
        (
            "CREATE SECRET IF NOT EXISTS \"acme\".\"kafka_password\" WITH (backend = 'meta') AS 'it''s'",
            "CREATE SECRET",
        ),
        (
            "ALTER SECRET \"acme\".\"kafka_password\" WITH (backend = 'meta') AS  E'back\\\\slash'",
            "ALTER SECRET",
        ),
        ('ALTER MATERIALIZED VIEW "acme"."alerts" SWAP WITH "acme"."alerts__next"', "SWAP"),
        ("CREATE USER acme_ro WITH LOGIN PASSWORD 'pw'", "CREATE USER"),
        ("GRANT SELECT ON ALL MATERIALIZED VIEWS IN SCHEMA acme TO acme_ro", "GRANT"),
        ('DROP SECRET IF EXISTS "acme"."kafka_password"', "DROP SECRET"),
    ],
)
def test_statements_sqlglot_only_knows_as_commands_are_checked_by_strict_patterns(
    text: str, label: str
) -> None:
    stmt = parse_one_statement(text)
    assert isinstance(stmt, exp.Command)
    assert match_command(text)[0] == label


# --------------------------------------------------------------------------------------------
# The lint rules against the tutorial SQL (statements a-e, each with a defect of §3, §4 or §6)
# --------------------------------------------------------------------------------------------

#: The schema the tutorial assumes (energy_kwh DOUBLE PRECISION, as in the real source).
TUTORIAL_SOURCE = """CREATE SOURCE ocpp_events (
    session_id VARCHAR, station_id VARCHAR, connector_id INT, event_type VARCHAR, status VARCHAR,
    energy_kwh DOUBLE PRECISION, occurred_at TIMESTAMPTZ
) WITH (connector = 'kafka', topic = 'ocpp', properties.bootstrap.server = 'kafka:9092')
FORMAT PLAIN ENCODE JSON"""

# The tutorial's statements reduced to their defects, plus one bad example per rule the tutorial
# has no statement for.
BROKEN: dict[str, tuple[str, str]] = {
    "a active_sessions: NOW() in the select list": (
        "now-placement",
        """CREATE MATERIALIZED VIEW active_sessions AS
        SELECT session_id, station_id, connector_id, MIN(occurred_at) AS session_start,
               EXTRACT(EPOCH FROM (NOW() - MIN(occurred_at))) / 60 AS duration_minutes
        FROM ocpp_events
        WHERE session_id NOT IN (SELECT session_id FROM ocpp_events WHERE event_type = 'StopTransaction')
        GROUP BY session_id, station_id, connector_id""",
    ),
    "a active_sessions: anti-join state without a bound": (
        "bounded-state",
        """CREATE MATERIALIZED VIEW active_sessions AS
        SELECT session_id, station_id, connector_id, MIN(occurred_at) AS session_start
        FROM ocpp_events
        WHERE session_id NOT IN (SELECT session_id FROM ocpp_events WHERE event_type = 'StopTransaction')
        GROUP BY session_id, station_id, connector_id""",
    ),
    "b station_revenue_hourly: TUMBLE over a subquery": (
        "window-args",
        """CREATE MATERIALIZED VIEW station_revenue_hourly AS
        SELECT station_id, window_start, window_end, COUNT(DISTINCT session_id) AS sessions,
               SUM(total_energy) AS energy_kwh,
               ROUND(AVG(EXTRACT(EPOCH FROM (window_end - session_start)) / 60), 2) AS avg_minutes
        FROM TUMBLE(
            (SELECT session_id, station_id, MIN(occurred_at) AS session_start,
                    MAX(occurred_at) AS session_end, MAX(energy_kwh) AS total_energy
             FROM ocpp_events GROUP BY session_id, station_id),
            session_end, INTERVAL '1 HOUR')
        GROUP BY station_id, window_start, window_end""",
    ),
    "b station_revenue_hourly: ROUND(avg, 2) on a double": (
        "round-double",
        """CREATE MATERIALIZED VIEW station_revenue_hourly AS
        WITH sessions AS (
            SELECT session_id, station_id, MIN(occurred_at) AS session_start,
                   MAX(occurred_at) AS session_end, MAX(energy_kwh) AS total_energy
            FROM ocpp_events WHERE occurred_at > NOW() - INTERVAL '1 day'
            GROUP BY session_id, station_id)
        SELECT station_id, window_start, window_end, COUNT(*) AS sessions,
               ROUND(AVG(total_energy), 2) AS avg_energy_kwh
        FROM TUMBLE(sessions, session_end, INTERVAL '1 HOUR')
        WHERE window_end > NOW() - INTERVAL '1 day'
        GROUP BY station_id, window_start, window_end""",
    ),
    "b station_revenue_hourly: TUMBLE time argument is an expression": (
        "window-args",
        """CREATE MATERIALIZED VIEW revenue AS
        SELECT station_id, window_start, COUNT(*) AS n
        FROM TUMBLE(ocpp_events, occurred_at + INTERVAL '1 second', INTERVAL '1 HOUR')
        WHERE window_end > NOW() - INTERVAL '1 day'
        GROUP BY station_id, window_start""",
    ),
    "c connector_availability: windows never leave the state": (
        "bounded-state",
        """CREATE MATERIALIZED VIEW connector_availability AS
        SELECT station_id, connector_id, window_start, window_end,
               ROUND(COUNT(*) FILTER (WHERE status IN ('Available', 'Charging')) * 100.0 / COUNT(*), 2)
                   AS availability_pct
        FROM HOP(ocpp_events, occurred_at, INTERVAL '1 MINUTE', INTERVAL '15 MINUTES')
        GROUP BY station_id, connector_id, window_start, window_end""",
    ),
    "c connector_availability: HOP size and slide swapped": (
        "hop-multiple",
        """CREATE MATERIALIZED VIEW connector_availability AS
        SELECT station_id, connector_id, window_start, window_end, COUNT(*) AS reports
        FROM HOP(ocpp_events, occurred_at, INTERVAL '15 MINUTES', INTERVAL '1 MINUTE')
        WHERE window_end > NOW() - INTERVAL '1 day'
        GROUP BY station_id, connector_id, window_start, window_end""",
    ),
    "d stalled_sessions: NOW() and a column on the same side": (
        "now-form",
        """CREATE MATERIALIZED VIEW stalled_sessions AS
        SELECT session_id, station_id, connector_id, MAX(occurred_at) AS last_event
        FROM ocpp_events
        WHERE occurred_at > NOW() - INTERVAL '1 day'
        GROUP BY session_id, station_id, connector_id
        HAVING EXTRACT(EPOCH FROM (NOW() - MAX(occurred_at))) / 60 > 10""",
    ),
    "d stalled_sessions: two temporal filters ORed": (
        "now-form",
        """CREATE MATERIALIZED VIEW stalled_sessions AS
        SELECT session_id, MAX(occurred_at) AS last_event FROM ocpp_events
        WHERE occurred_at > NOW() - INTERVAL '1 day' OR occurred_at < NOW() - INTERVAL '2 days'
        GROUP BY session_id""",
    ),
    "d stalled_sessions: NOW() in an aggregate FILTER": (
        "now-placement",
        """CREATE MATERIALIZED VIEW stalled_sessions AS
        SELECT session_id, COUNT(*) FILTER (WHERE occurred_at > NOW() - INTERVAL '1 hour') AS recent
        FROM ocpp_events WHERE occurred_at > NOW() - INTERVAL '1 day' GROUP BY session_id""",
    ),
    "e connector_fault_alerts: CREATE SINK FROM (SELECT …) with legacy type=": (
        "sink-shape",
        """CREATE SINK connector_fault_alerts FROM (
            SELECT station_id, connector_id, occurred_at FROM ocpp_events
            WHERE event_type = 'StatusNotification' AND status = 'Faulted'
        ) WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092',
                type = 'append-only')""",
    ),
    "e connector_fault_alerts: AS query with legacy type= and FORMAT mixed": (
        "sink-shape",
        """CREATE SINK connector_fault_alerts AS
        SELECT station_id, connector_id, occurred_at FROM ocpp_events WHERE status = 'Faulted'
        WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092',
              type = 'append-only') FORMAT PLAIN ENCODE JSON""",
    ),
    "e connector_fault_alerts: WITH before the query": (
        "sink-shape",
        """CREATE SINK connector_fault_alerts
        WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092')
        AS SELECT station_id FROM ocpp_events WHERE status = 'Faulted'""",
    ),
    "§6 FORMAT PLAIN over an aggregation without force_append_only": (
        "sink-shape",
        """CREATE SINK fault_counts AS
        SELECT station_id, COUNT(*) AS faults FROM ocpp_events WHERE status = 'Faulted' GROUP BY station_id
        WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092')
        FORMAT PLAIN ENCODE JSON""",
    ),
    "§4 NOW() in a source's watermark": (
        "now-in-source",
        """CREATE SOURCE late_events (occurred_at TIMESTAMPTZ,
            WATERMARK FOR occurred_at AS NOW() - INTERVAL '5' SECOND)
        WITH (connector = 'kafka', topic = 'ocpp', properties.bootstrap.server = 'kafka:9092')
        FORMAT PLAIN ENCODE JSON""",
    ),
    "§1 startup mode the connector rejects": (
        "kafka-options",
        """CREATE SOURCE replay (occurred_at TIMESTAMPTZ)
        WITH (connector = 'kafka', topic = 'ocpp', properties.bootstrap.server = 'kafka:9092',
              scan.startup.mode = 'timestamp', properties.group.id.prefix = 'x')
        FORMAT PLAIN ENCODE JSON""",
    ),
}

#: The fixes: the same intent, written the way RisingWave accepts it.
FIXED: dict[str, list[str]] = {
    "a": [
        """CREATE MATERIALIZED VIEW active_sessions AS
        SELECT session_id, station_id, connector_id, MIN(occurred_at) AS started_at,
               MAX(occurred_at) AS last_event_at
        FROM ocpp_events WHERE occurred_at > NOW() - INTERVAL '2 days'
        GROUP BY session_id, station_id, connector_id
        HAVING COUNT(*) FILTER (WHERE event_type = 'StopTransaction') = 0""",
        """CREATE VIEW active_sessions_live AS
        SELECT session_id, ROUND(EXTRACT(EPOCH FROM (NOW() - started_at)) / 60, 1) AS elapsed_minutes
        FROM active_sessions""",
    ],
    "b": [
        """CREATE MATERIALIZED VIEW station_revenue_hourly AS
        WITH sessions AS (
            SELECT session_id, station_id, MIN(occurred_at) AS session_start,
                   MAX(occurred_at) FILTER (WHERE event_type = 'StopTransaction') AS session_end,
                   MAX(energy_kwh) - MIN(energy_kwh) AS total_energy
            FROM ocpp_events WHERE occurred_at > NOW() - INTERVAL '1 day'
            GROUP BY session_id, station_id
            HAVING COUNT(*) FILTER (WHERE event_type = 'StopTransaction') > 0)
        SELECT station_id, window_start, window_end, COUNT(*) AS sessions,
               ROUND(AVG(total_energy)::numeric, 2) AS avg_energy_kwh,
               ROUND(AVG(EXTRACT(EPOCH FROM (session_end - session_start)) / 60), 2) AS avg_minutes
        FROM TUMBLE(sessions, session_end, INTERVAL '1 HOUR')
        WHERE window_end > NOW() - INTERVAL '1 day'
        GROUP BY station_id, window_start, window_end"""
    ],
    "c": [
        """CREATE MATERIALIZED VIEW connector_availability AS
        SELECT station_id, connector_id, window_start, window_end,
               ROUND(COUNT(*) FILTER (WHERE status IN ('Available', 'Charging')) * 100.0 / COUNT(*), 2)
                   AS availability_pct
        FROM HOP(ocpp_events, occurred_at, INTERVAL '1 MINUTE', INTERVAL '15 MINUTES')
        WHERE window_end > NOW() - INTERVAL '1 day'
        GROUP BY station_id, connector_id, window_start, window_end"""
    ],
    "d": [
        """CREATE MATERIALIZED VIEW stalled_sessions AS
        SELECT session_id, station_id, connector_id, MAX(occurred_at) AS last_event
        FROM ocpp_events WHERE occurred_at > NOW() - INTERVAL '1 day'
        GROUP BY session_id, station_id, connector_id
        HAVING MAX(occurred_at) < NOW() - INTERVAL '10 minutes'
           AND COUNT(*) FILTER (WHERE event_type = 'StopTransaction') = 0"""
    ],
    "e": [
        """CREATE SINK connector_fault_alerts AS
        SELECT station_id, connector_id, occurred_at FROM ocpp_events
        WHERE event_type = 'StatusNotification' AND status = 'Faulted'
        WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092')
        FORMAT PLAIN ENCODE JSON""",
        """CREATE MATERIALIZED VIEW fault_mv AS
        SELECT station_id, occurred_at FROM ocpp_events
        WHERE status = 'Faulted' AND occurred_at > NOW() - INTERVAL '1 day'""",
        """CREATE SINK fault_sink FROM fault_mv
        WITH (connector = 'kafka', topic = 'alerts', properties.bootstrap.server = 'kafka:9092',
              snapshot = 'false')
        FORMAT PLAIN ENCODE JSON (force_append_only = 'true')""",
    ],
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_lint_rejects_the_broken_tutorial_statement_with_its_rule(case: str) -> None:
    rule, statement = BROKEN[case]
    report = lint([TUTORIAL_SOURCE, statement])
    assert rule in report.rules(), f"{case}: expected [{rule}], got:\n{report}"


@pytest.mark.parametrize("case", list(FIXED))
def test_lint_accepts_the_tutorial_fix(case: str) -> None:
    report = lint([TUTORIAL_SOURCE, *FIXED[case]])
    assert report.violations == [], str(report)


def test_round_double_names_the_double_type_it_inferred_from_the_source_column() -> None:
    report = lint([TUTORIAL_SOURCE, BROKEN["b station_revenue_hourly: ROUND(avg, 2) on a double"][1]])
    (violation,) = [v for v in report.violations if v.rule == "round-double"]
    assert "AVG(total_energy)" in violation.message
    assert "double" in violation.message


def test_lint_refuses_statements_that_read_relations_it_has_not_seen() -> None:
    report = lint(["CREATE MATERIALIZED VIEW m AS SELECT a FROM nowhere WHERE t > NOW() - INTERVAL '1 day'"])
    assert [(v.rule, v.message) for v in report.violations] == [
        ("unknown-relation", "reads unknown relation nowhere")
    ]
    report = lint(["CREATE MATERIALIZED VIEW m AS SELECT a FROM nowhere"])
    assert {"unknown-relation", "bounded-state"} <= report.rules()


def test_now_is_allowed_in_a_plain_view_select_list_but_not_in_a_materialized_one() -> None:
    body = "AS SELECT session_id, EXTRACT(EPOCH FROM (NOW() - occurred_at)) AS age FROM ocpp_events"
    assert lint([TUTORIAL_SOURCE, f"CREATE VIEW v {body}"]).violations == []
    assert "now-placement" in lint([TUTORIAL_SOURCE, f"CREATE MATERIALIZED VIEW v {body}"]).rules()


_TOP_1 = (
    "CREATE MATERIALIZED VIEW latest AS SELECT station_id, status FROM (SELECT station_id, status, "
    "ROW_NUMBER() OVER (PARTITION BY station_id ORDER BY occurred_at DESC) AS rn FROM {rel}) AS s "
    "WHERE {cond}"
)


def test_top_1_per_key_over_an_append_only_input_is_bounded_state() -> None:
    assert lint([TUTORIAL_SOURCE, _TOP_1.format(rel="ocpp_events", cond="rn = 1")]).violations == []
    assert "bounded-state" in lint([TUTORIAL_SOURCE, _TOP_1.format(rel="ocpp_events", cond="rn > 0")]).rules()
    retracting = "CREATE MATERIALIZED VIEW agg AS SELECT station_id, MAX(occurred_at) AS occurred_at, "
    retracting += "MAX(status) AS status FROM ocpp_events GROUP BY station_id"
    over_agg = _TOP_1.format(rel="agg", cond="rn = 1")
    assert "bounded-state" in lint([TUTORIAL_SOURCE, retracting, over_agg]).rules()


# --------------------------------------------------------------------------------------------
# The lint catches the same mistakes planted into the real templates
# --------------------------------------------------------------------------------------------

MUTANTS: dict[str, tuple[str, str, str, str]] = {
    # name: (template, text in it, replacement, rule that must fire)
    "sessions without its temporal filter": (
        "sessions", "    AND occurred_at > NOW() - {session_horizon}\n", "", "bounded-state",
    ),
    "completed_sessions rounds a double": (
        "completed_sessions", "ROUND(CAST(energy_kwh AS NUMERIC), 3)",
        "ROUND(energy_kwh, 3)", "round-double",
    ),
    "stalled_sessions compares elapsed time": (
        "stalled_sessions", "last_event_at < NOW() - {stalled_after}",
        "NOW() - last_event_at > {stalled_after}", "now-form",
    ),
    "active_sessions computes elapsed time": (
        "active_sessions", "    last_event_at,\n", "    last_event_at,\n    NOW() - started_at AS elapsed,\n",
        "now-placement",
    ),
    "connector_status_time swaps slide and size": (
        "connector_status_time", "{availability_slide}, {availability_window}",
        "{availability_window}, {availability_slide}", "hop-multiple",
    ),
    "station_revenue tumbles a subquery": (
        "station_revenue", "TUMBLE({completed_sessions}, stopped_at,",
        "TUMBLE((SELECT * FROM {completed_sessions}), stopped_at,", "window-args",
    ),
    "station_revenue without its temporal filter": (
        "station_revenue", "WHERE window_start > NOW() - {retention}\n", "", "bounded-state",
    ),
    "kafka sink as plain append-only without force_append_only": (
        "alerts_to_kafka", "FORMAT UPSERT ENCODE JSON\nKEY ENCODE TEXT", "FORMAT PLAIN ENCODE JSON",
        "sink-shape",
    ),
    "kafka sink from a subquery": (
        "alerts_to_kafka", "FROM {alerts}", "FROM (SELECT * FROM {alerts})", "sink-shape",
    ),
    "jdbc sink without a type": ("alerts_to_postgres", "    type = 'upsert',\n", "", "sink-shape"),
    "source watermark on NOW()": (
        "ocpp_events", "    occurred_at TIMESTAMPTZ\n",
        "    occurred_at TIMESTAMPTZ,\n    WATERMARK FOR occurred_at AS NOW() - INTERVAL '5 minutes'\n",
        "now-in-source",
    ),
}  # fmt: skip


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_lint_catches_a_mistake_planted_in_a_real_template(mutant: str, tmp_path: Path) -> None:
    name, old, new, rule = MUTANTS[mutant]
    shutil.copytree(ROOT / "sql", tmp_path / "sql")
    template = tmp_path / "sql" / f"{name}.sql"
    text = template.read_text(encoding="utf-8")
    assert old in text, f"{name}.sql changed; update the mutant"
    template.write_text(text.replace(old, new), encoding="utf-8")
    (objects,) = _rendered("acme.yaml", "inline", Templates.directory(tmp_path / "sql"))
    linter = Linter()
    found = [v for o in objects for v in linter.check(o.sql)]
    assert rule in {v.rule for v in found}, f"{mutant}: lint stayed silent ({found})"
    assert all(v.statement.endswith(name) for v in found if v.rule == rule), found


@pytest.mark.parametrize("example", ["acme.yaml", "voltbay.yaml"])
def test_no_watermark_drops_late_events_and_every_horizon_covers_its_consumers(example: str) -> None:
    (objects,) = _rendered(example, "inline")
    by_name = {o.name: o.sql for o in objects}
    assert "WATERMARK" not in by_name["ocpp_events"].upper()
    retention = "INTERVAL '86400 seconds'"  # the examples' stateRetention: 24h
    for aggregation in ("sessions", "status_intervals"):
        assert "occurred_at > NOW() - INTERVAL '259200 seconds'" in by_name[aggregation], aggregation
    assert f"stopped_at > NOW() - {retention}" in by_name["completed_sessions"]
    assert f"last_event_at > NOW() - {retention}" in by_name["active_sessions"]
    for windowed in ("station_revenue", "connector_status_time"):
        assert f"window_start > NOW() - {retention}" in by_name[windowed], windowed
