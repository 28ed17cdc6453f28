"""README's troubleshooting table explains every Stalled reason the operator can report."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = ROOT / "operator" / "charging_analytics" / "operator"


def _reasons() -> set[str]:
    found: set[str] = set()
    for path in OPERATOR.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'CheckFailure\(\s*"([A-Za-z]+)"', text))
        found |= set(re.findall(r'_stalled\(\s*res,\s*out,\s*"([A-Za-z]+)"', text))
        found |= set(re.findall(r'^    "(Kafka[A-Za-z]+)": \{', text, flags=re.MULTILINE))
    return found


def test_every_stalled_reason_has_a_troubleshooting_row() -> None:
    reasons = _reasons()
    assert len(reasons) >= 15
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    table = readme.split("### Troubleshooting", 1)[1]
    assert sorted(r for r in reasons if f"`{r}`" not in table) == []
