"""README's troubleshooting table explains every Stalled reason the operator can report."""

from __future__ import annotations

from pathlib import Path

from charging_analytics.status import STALLED_REASONS

ROOT = Path(__file__).resolve().parents[2]


def _reasons() -> set[str]:
    return {str(reason) for reason in STALLED_REASONS}


def test_every_stalled_reason_has_a_troubleshooting_row() -> None:
    reasons = _reasons()
    assert len(reasons) >= 15
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    table = readme.split("### Troubleshooting", 1)[1]
    assert sorted(r for r in reasons if f"`{r}`" not in table) == []
