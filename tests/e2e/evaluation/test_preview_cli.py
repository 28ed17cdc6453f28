"""``charging-analytics preview``: the evaluator for users, on a given or a throwaway PostgreSQL."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from charging_analytics import localpg
from charging_analytics.cli import main
from charging_analytics.render import render
from charging_analytics.validation import load_file
from testbed.postgres import PostgresServer
from tests.e2e.evaluation.ground_truth import Traffic

REPO = Path(__file__).resolve().parents[3]
AT = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)


def _events(tmp_path: Path) -> Path:
    t = Traffic()
    t.session("ST-1", "p1", 1, "CCS", AT - timedelta(hours=2), minutes=30, wh_per_minute=1000)
    t.status("ST-1", 1, AT - timedelta(hours=5), "Faulted")
    path = tmp_path / "events.jsonl"
    lines = [json.dumps(e) for e in t.events] + ["not json", "[1, 2]", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_preview_json_has_one_key_per_view_with_row_objects(
    postgres_server: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = REPO / "examples" / "acme.yaml"
    code = main(
        ["preview", "-f", str(manifest), "--events", str(_events(tmp_path)), "--at", "2025-03-02T12:00:00Z",
         "--json", "--postgres-dsn", postgres_server.conninfo()]
    )  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (resource,) = load_file(manifest).resources
    views = [o.name for o in render(resource.spec) if o.kind in ("MaterializedView", "View")]
    assert list(data) == views
    (session,) = data["completed_sessions"]
    assert (session["session_id"], session["energy_kwh"], session["revenue"]) == ("p1", 30, 17.7)
    assert session["stopped_at"] == "2025-03-02T10:30:00.000Z"
    assert [a["alert_type"] for a in data["alerts"]] == ["ConnectorDown", "ConnectorFault"]


@pytest.mark.usefixtures("postgres_server")  # the server binaries are installed
def test_preview_starts_a_throwaway_server_and_prints_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["preview", "-f", str(REPO / "examples" / "voltbay.yaml"), "--events", str(_events(tmp_path)),
         "--at", "2025-03-02T12:00:00+01:00", "--view", "completed_sessions"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "computed by PostgreSQL" in out
    assert "completed_sessions (1 rows)" in out
    assert "p1" in out
    assert "station_revenue" not in out
    assert not list(Path(tempfile.gettempdir()).glob("cha-preview-pg-*"))


def test_preview_without_postgres_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(localpg, "find_bindir", lambda: None)
    code = main(
        ["preview", "-f", str(REPO / "examples" / "acme.yaml"), "--events", str(_events(tmp_path)),
         "--at", "2025-03-02T12:00:00Z"]
    )  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [
        "error: no PostgreSQL server binaries (initdb, postgres) found on PATH or in /usr/lib/postgresql; "
        "install them or pass --postgres-dsn"
    ]


def test_preview_rejects_an_instant_without_zone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["preview", "-f", "x.yaml", "--events", "e.jsonl", "--at", "2025-03-02T12:00:00"])
    assert "has no time zone" in capsys.readouterr().err
