"""The evaluator's mechanical rewrite of the rendered statements (pure; no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from charging_analytics.evaluate import EvaluationError, prepare, rewrite_query
from charging_analytics.render import render
from charging_analytics.validation import load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

AT = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
NOW = "CAST('2025-03-02T12:00:00+00:00' AS TIMESTAMPTZ)"


def test_now_becomes_the_fixed_instant_in_utc() -> None:
    _, query = rewrite_query(
        'CREATE VIEW IF NOT EXISTS "t"."v" AS SELECT now() AS n FROM x WHERE a > NOW() - INTERVAL \'1 s\'',
        AT.astimezone(timezone(timedelta(hours=2))),
    )
    assert query == f"SELECT {NOW} AS n FROM x WHERE a > {NOW} - INTERVAL '1 s'"


def test_string_literals_and_quoted_names_are_not_rewritten() -> None:
    _, query = rewrite_query(
        'CREATE VIEW IF NOT EXISTS "t"."v" AS SELECT \'NOW() and HOP(x)\' AS "TUMBLE(" FROM x', AT
    )
    assert query == "SELECT 'NOW() and HOP(x)' AS \"TUMBLE(\" FROM x"


def test_tumble_becomes_date_bin_windows() -> None:
    name, query = rewrite_query(
        'CREATE MATERIALIZED VIEW IF NOT EXISTS "t"."r" AS SELECT window_start FROM '
        'TUMBLE("t"."s", stopped_at, INTERVAL \'3600 seconds\') GROUP BY window_start',
        AT,
    )
    epoch = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"
    start = f"date_bin(INTERVAL '3600 seconds', w.stopped_at, {epoch})"
    assert name == '"t"."r"'
    assert query == (
        f"SELECT window_start FROM (SELECT w.*, {start} AS window_start, {start} + INTERVAL '3600 seconds' "
        'AS window_end FROM "t"."s" AS w) AS tumble GROUP BY window_start'
    )


def test_hop_becomes_a_lateral_series_of_window_starts() -> None:
    _, query = rewrite_query(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS v AS SELECT 1 FROM HOP(m, bucket, INTERVAL '60 seconds', "
        "INTERVAL '900 seconds')",
        AT,
    )
    assert "CROSS JOIN LATERAL generate_series(date_bin(INTERVAL '60 seconds', w.bucket" in query
    assert query.endswith("AS s(window_start)) AS hop")


def test_not_a_view_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="not a view definition"):
        rewrite_query("CREATE SINK s FROM a WITH (connector = 'kafka')", AT)


def test_every_rendered_view_is_rewritten_without_risingwave_constructs() -> None:
    for example in ("acme", "voltbay"):
        (resource,) = load_file(EXAMPLES / f"{example}.yaml").resources
        objects = render(resource.spec)
        views = prepare(objects, AT)
        assert [v.name for v in views] == [o.name for o in objects if o.kind in ("MaterializedView", "View")]
        for view in views:
            upper = view.query.upper()
            for construct in ("NOW()", "TUMBLE(", "HOP("):
                assert construct not in upper, view.name
