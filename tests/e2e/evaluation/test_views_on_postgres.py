"""The numbers: every view of the rendered pipeline, evaluated by PostgreSQL at a fixed instant,
against traffic whose true sessions, energy, revenue, uptime and alerts are known."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging_analytics.evaluate import Evaluation, evaluate
from charging_analytics.events import format_timestamp
from charging_analytics.render import render
from charging_analytics.spec import ChargingAnalyticsSpec
from testbed.postgres import PostgresServer
from testbed.specs import tenant_spec
from tests.e2e.evaluation.ground_truth import Traffic, TrueSession, round_half_up

AT = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
RETENTION = timedelta(hours=24)
SLIDE, SIZE = timedelta(minutes=1), timedelta(minutes=15)


def spec(**alerts: Any) -> ChargingAnalyticsSpec:
    return tenant_spec(
        "truth",
        bootstrap="k:9092",
        events_topic="ev",
        analytics={
            "revenueWindow": "1h",
            "availabilityWindow": "15m",
            "availabilitySlide": "1m",
            "stateRetention": "24h",
        },
        alerts={"sinks": None, "connectorDownMinutes": 30, "availabilityBelowPercent": 90, **alerts},
    )


def traffic() -> Traffic:
    t = Traffic()

    def h(hours: int, minutes: int = 0) -> datetime:
        return AT - timedelta(hours=hours) + timedelta(minutes=minutes)

    # an ordinary session, kWh register
    t.session("ST-A", "a1", 1, "CCS", h(2), minutes=40, wh_per_minute=750, meter_start_wh=18_234_512)
    # a station offline from 08:00 to 10:00 replays its queue after everything else
    t.session("ST-B", "b1", 1, "Type2", h(4), minutes=50, wh_per_minute=183, delivered_later=True)
    t.session("ST-B", "b2", 2, "CCS", h(3, 10), minutes=35, wh_per_minute=911, delivered_later=True)
    # OCPP 1.6 StopTransaction carries no connector id
    t.session("ST-C", "c1", 2, "CHAdeMO", h(5), minutes=30, wh_per_minute=420, stop_carries_connector=False)
    # a Wh-metered charger (integer Wh register, small increments)
    t.session("ST-E", "e1", 1, "Type2", h(6), minutes=55, wh_per_minute=187, meter_start_wh=7)
    # unknown connector type: energy counts, revenue is unpriced
    t.session("ST-F", "f1", 1, "GB/T", h(3), minutes=20, wh_per_minute=1000)
    # crossing the retention edge: started 25 h ago, stopped 23 h ago
    t.session("ST-H", "h1", 1, "CCS", h(25), minutes=120, wh_per_minute=300)
    # stopped 25 h ago: outside the reported horizon
    t.session("ST-H", "h0", 1, "CCS", h(27), minutes=60, wh_per_minute=300)
    # an active session, quiet for 20 minutes (stalled) and one still charging
    t.session("ST-S", "s1", 1, "CCS", h(1), minutes=42, wh_per_minute=500, stop=False)
    t.session("ST-S", "s2", 2, "Type2", h(0, -30), minutes=31, wh_per_minute=200, stop=False)
    # connector Faulted for 3 hours with no further reports
    t.status("ST-D", 1, h(4) - timedelta(seconds=37), "Available")
    t.status("ST-D", 1, h(3), "Faulted", "GroundFailure")
    # the charge point as a whole (connector 0) is not a connector
    t.status("ST-D", 0, h(3), "Faulted", "OtherError")
    # short fault in the latest window: low availability, no down alert
    t.status("ST-G", 1, h(0, -30), "Available")
    t.status("ST-G", 1, h(0, -14) + timedelta(seconds=20), "Faulted", "HighTemperature")
    t.status("ST-G", 1, h(0, -9) + timedelta(seconds=5), "Available")
    t.status("ST-G", 1, h(0, -1) - timedelta(seconds=10), "Charging")
    # a report without a station id never becomes an alert
    t.status(None, 1, h(1), "Faulted")  # type: ignore[arg-type]
    return t


@pytest.fixture(scope="module")
def pg(postgres_server: PostgresServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres_server.conninfo(), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def truth() -> Traffic:
    return traffic()


@pytest.fixture(scope="module")
def result(pg: psycopg.Connection[Any], truth: Traffic) -> Evaluation:
    return evaluate(pg, render(spec()), truth.delivered(), AT)


def by_session(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["session_id"]: r for r in rows}


def expected_completed(truth: Traffic) -> list[TrueSession]:
    return [s for s in truth.sessions if s.stopped_at is not None and s.stopped_at > AT - RETENTION]


def test_completed_sessions_match_the_truth_including_replayed_queues(
    result: Evaluation, truth: Traffic
) -> None:
    rows = by_session(result.views["completed_sessions"])
    expected = expected_completed(truth)
    assert set(rows) == {s.session_id for s in expected}
    for s in expected:
        row = rows[s.session_id]
        assert (row["station_id"], row["connector_id"], row["connector_type"]) == (
            s.station_id,
            s.connector_id,
            s.connector_type,
        )
        assert (row["started_at"], row["stopped_at"]) == (s.started_at, s.stopped_at)
        assert row["energy_kwh"] == round_half_up(s.energy_kwh, 3), s.session_id
        assert row["revenue"] == s.revenue, s.session_id


def test_replayed_station_sessions_are_counted(result: Evaluation) -> None:
    rows = by_session(result.views["completed_sessions"])
    assert rows["b1"]["revenue"] == round_half_up(Decimal(50 * 183) / 1000 * Decimal("0.35"), 2)
    assert rows["b2"]["energy_kwh"] == Decimal("31.885")


def test_a_stop_without_connector_id_does_not_split_the_session(result: Evaluation) -> None:
    sessions = [r for r in result.views["sessions"] if r["session_id"] == "c1"]
    assert len(sessions) == 1
    assert (sessions[0]["connector_id"], sessions[0]["connector_type"]) == (2, "CHAdeMO")
    assert by_session(result.views["completed_sessions"])["c1"]["revenue"] == Decimal("6.17")


def test_wh_metered_charger_energy_equals_the_register_difference(result: Evaluation) -> None:
    assert by_session(result.views["completed_sessions"])["e1"]["energy_kwh"] == Decimal("10.285")


def test_unknown_connector_type_is_unpriced_not_dropped(result: Evaluation) -> None:
    session = by_session(result.views["completed_sessions"])["f1"]
    assert session["revenue"] is None
    assert session["energy_kwh"] == Decimal("20.000")
    (window,) = [r for r in result.views["station_revenue"] if r["station_id"] == "ST-F"]
    assert (window["sessions"], window["unpriced_sessions"], window["energy_kwh"]) == (
        1,
        1,
        Decimal("20.000"),
    )
    assert window["revenue"] is None


def test_session_crossing_the_retention_edge_is_reported_whole(result: Evaluation) -> None:
    rows = by_session(result.views["completed_sessions"])
    assert rows["h1"]["started_at"] == AT - timedelta(hours=25)
    assert rows["h1"]["energy_kwh"] == Decimal("36.000")
    assert rows["h1"]["duration_minutes"] == Decimal("120.00")
    assert "h0" not in rows  # stopped before the horizon
    assert "h0" in by_session(result.views["sessions"])  # still in the longer session horizon


def test_station_revenue_sums_the_completed_sessions_per_window(result: Evaluation, truth: Traffic) -> None:
    expected: dict[tuple[str, datetime], list[TrueSession]] = {}
    for s in expected_completed(truth):
        assert s.stopped_at is not None
        start = s.stopped_at.replace(minute=0, second=0, microsecond=0)
        if start > AT - RETENTION:
            expected.setdefault((s.station_id, start), []).append(s)
    rows = {(r["station_id"], r["window_start"]): r for r in result.views["station_revenue"]}
    assert set(rows) == set(expected)
    for key, sessions in expected.items():
        row = rows[key]
        assert row["sessions"] == len(sessions)
        assert row["energy_kwh"] == sum(round_half_up(s.energy_kwh, 3) for s in sessions)
        priced = [s.revenue for s in sessions if s.revenue is not None]
        assert row["revenue"] == (sum(priced) if priced else None)
        assert row["unpriced_sessions"] == len(sessions) - len(priced)


def test_active_and_stalled_sessions(result: Evaluation) -> None:
    active = by_session(result.views["active_sessions"])
    assert set(active) == {"s1", "s2"}
    assert active["s1"]["energy_kwh"] == pytest.approx(20.0)  # readings at 0..40 min, 500 Wh/min
    assert set(by_session(result.views["stalled_sessions"])) == {"s1"}
    live = by_session(result.views["active_sessions_live"])
    assert live["s1"]["idle_minutes"] == Decimal("20.0")


@pytest.mark.parametrize(("station", "connector"), [("ST-G", 1), ("ST-D", 1)])
def test_uptime_is_weighted_by_time(result: Evaluation, truth: Traffic, station: str, connector: int) -> None:
    expected = truth.uptime(station, connector, at=AT, slide=SLIDE, size=SIZE, retention=RETENTION)
    rows = {
        r["window_start"]: r
        for r in result.views["connector_uptime"]
        if (r["station_id"], r["connector_id"]) == (station, connector)
    }
    assert set(rows) == set(expected)
    for ws, (observed, up) in expected.items():
        row = rows[ws]
        assert (row["observed_seconds"], row["up_seconds"]) == (observed, up), ws
        assert row["uptime_pct"] == round_half_up(Decimal(up * 100) / observed, 2)


def test_latest_window_uptime_of_a_short_fault(result: Evaluation) -> None:
    (row,) = [
        r for r in result.views["connector_uptime"] if r["station_id"] == "ST-G" and r["window_end"] == AT
    ]
    # Available 80 s, Faulted 285 s, Available 465 s of closed intervals; Charging is still open
    assert (row["observed_seconds"], row["up_seconds"], row["uptime_pct"]) == (830, 545, Decimal("65.66"))


def test_connector_zero_is_not_a_connector(result: Evaluation) -> None:
    for view in ("status_intervals", "connector_status", "connector_uptime"):
        assert all(r["connector_id"] > 0 for r in result.views[view]), view


def test_current_status_and_open_interval(result: Evaluation) -> None:
    status = {(r["station_id"], r["connector_id"]): r for r in result.views["connector_status_live"]}
    assert status[("ST-D", 1)]["status"] == "Faulted"
    assert status[("ST-D", 1)]["minutes_in_status"] == Decimal("180.0")
    assert status[("ST-D", 1)]["is_up"] is False
    assert status[("ST-G", 1)]["status"] == "Charging"


def test_alerts_are_exactly_the_open_conditions(result: Evaluation) -> None:
    since = int((AT - timedelta(hours=3)).timestamp() * 1000)
    alerts = {r["alert_id"]: r for r in result.views["alerts"]}
    assert set(alerts) == {
        "stalled_session:ST-S:s1",
        f"connector_down:ST-D:1:{since}",
        f"connector_fault:ST-D:1:{since}",
        "low_availability:ST-G:1",
    }
    assert len(result.views["alerts"]) == len(alerts)
    assert alerts[f"connector_down:ST-D:1:{since}"]["alert_type"] == "ConnectorDown"


def test_every_alert_key_part_is_present(result: Evaluation) -> None:
    for row in result.views["alerts"]:
        assert all(row[part] for part in ("alert_id", "station_id", "alert_type", "severity")), row


def test_a_short_fault_raises_no_down_alert_before_the_threshold(pg: psycopg.Connection[Any]) -> None:
    t = Traffic()
    t.status("ST-X", 1, AT - timedelta(minutes=29), "Unavailable")
    before = evaluate(pg, render(spec()), t.delivered(), AT)
    after = evaluate(pg, render(spec()), t.delivered(), AT + timedelta(minutes=2))
    assert before.views["connector_down"] == []
    assert [r["station_id"] for r in after.views["connector_down"]] == ["ST-X"]


def test_up_statuses_are_configurable(pg: psycopg.Connection[Any], truth: Traffic) -> None:
    custom = spec().model_copy(
        update={"analytics": spec().analytics.model_copy(update={"up_statuses": ["Available"]})}
    )
    rows = evaluate(pg, render(custom), truth.delivered(), AT).views["connector_uptime"]
    (row,) = [r for r in rows if r["station_id"] == "ST-G" and r["window_end"] == AT]
    assert row["up_seconds"] == 545  # Available only; the open Charging interval is not counted yet


def test_evaluation_leaves_the_database_unchanged(pg: psycopg.Connection[Any], result: Evaluation) -> None:
    schemas = pg.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 'truth'").fetchone()
    assert schemas == (0,)


session_plans = st.lists(
    st.tuples(
        st.sampled_from(["ST-1", "ST-2", "ST-3"]),
        st.integers(1, 3),
        st.sampled_from(["CCS", "CHAdeMO", "Type2", "NACS"]),
        st.integers(0, 30 * 60),  # start, minutes before AT
        st.integers(1, 240),  # duration in minutes
        st.integers(0, 2000),  # Wh per minute
        st.booleans(),  # stopped
        st.booleans(),  # the stop carries the connector
        st.booleans(),  # delivered after everything else
    ),
    max_size=12,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plans=session_plans)
def test_random_traffic_completed_sessions_match_the_truth(
    pg: psycopg.Connection[Any], plans: list[tuple[str, int, str, int, int, int, bool, bool, bool]]
) -> None:
    t = Traffic()
    for i, (station, conn, kind, ago, minutes, rate, stop, with_conn, later) in enumerate(plans):
        t.session(
            station, f"s{i}", conn, kind, AT - timedelta(minutes=ago), minutes=minutes, wh_per_minute=rate,
            stop=stop, stop_carries_connector=with_conn, delivered_later=later,
        )  # fmt: skip
    t.sessions = [s for s in t.sessions if s.started_at <= AT]
    events = [row for row in t.delivered() if row[-1] <= format_timestamp(AT)]
    rows = by_session(evaluate(pg, render(spec()), events, AT).views["completed_sessions"])
    expected = [s for s in expected_completed(t) if s.stopped_at is not None and s.stopped_at <= AT]
    assert set(rows) == {s.session_id for s in expected}
    for s in expected:
        assert rows[s.session_id]["energy_kwh"] == round_half_up(s.energy_kwh, 3)
        assert rows[s.session_id]["revenue"] == s.revenue
        assert rows[s.session_id]["connector_id"] == s.connector_id
