"""What Grafana's PostgreSQL data source does to a panel's SQL before sending it, for the tests.

Documented at https://grafana.com/docs/grafana/latest/datasources/postgres/query-editor/#macros
and https://grafana.com/docs/grafana/latest/dashboards/variables/variable-syntax/:
``$__timeFilter(col)`` becomes ``col BETWEEN '<from>' AND '<to>'`` (RFC 3339, UTC) and a
multi-value variable becomes its values quoted and joined by commas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def interpolate(query: str, start: datetime, end: datetime, variables: dict[str, Sequence[str]]) -> str:
    out = _TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN '{_rfc3339(start)}' AND '{_rfc3339(end)}'", query)
    for name, values in variables.items():
        out = out.replace(f"${name}", ",".join(_quote(v) for v in values))
    if "$" in out:
        raise AssertionError(f"a macro or variable Grafana would expand is left in {out!r}")
    return out
