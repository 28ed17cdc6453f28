"""``charging-analytics preview``: what each view of a tenant would contain at an instant.

The tenant's rendered views are evaluated by PostgreSQL (:mod:`charging_analytics.evaluate`) over
the events of a JSON-lines file, at ``--at``. PostgreSQL comes from ``--postgres-dsn`` or, when
the server binaries are installed, a throwaway local server (:mod:`charging_analytics.localpg`).
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from .evaluate import Evaluation, EvaluationError, evaluate, read_events
from .localpg import LocalPostgresError, local_postgres
from .render import render
from .validation import load_file


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp with a zone (``2025-03-01T12:00:00Z``)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 timestamp") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or an offset)")
    return value


def add_preview_parser(sub: Any) -> None:
    p = sub.add_parser(
        "preview", help="show what each view would contain at an instant (computed by PostgreSQL)"
    )
    p.add_argument("-f", "--file", required=True, help="YAML manifest of the tenant")
    p.add_argument("--events", required=True, help="OCPP events, one JSON object per line")
    p.add_argument(
        "--at", required=True, type=parse_instant, help="RFC 3339 instant, e.g. 2025-03-01T12:00:00Z"
    )
    p.add_argument("--json", action="store_true", help="JSON: one key per view, each a list of rows")
    p.add_argument(
        "--postgres-dsn",
        help="PostgreSQL to evaluate on (default: a throwaway local server, if installed)",
    )
    p.add_argument("--view", action="append", default=[], help="only these views (repeatable)")
    p.set_defaults(func=cmd_preview)


def run_preview(manifest: Path, events: Path, at: datetime, dsn: str | None) -> list[tuple[str, Evaluation]]:
    """(tenant, evaluation) per resource in the manifest."""
    manifests = load_file(manifest)
    rows = read_events(events)
    server: AbstractContextManager[str] = nullcontext(dsn) if dsn else local_postgres()
    out = []
    with server as conninfo, psycopg.connect(conninfo, autocommit=True) as conn:
        for resource in manifests.resources:
            out.append((resource.spec.tenant, evaluate(conn, render(resource.spec), rows, at)))
    return out


def _table(rows: list[dict[str, Any]], limit: int = 20) -> str:
    if not rows:
        return "  (no rows)"
    cols = list(rows[0])
    cells = [[_cell(r[c]) for c in cols] for r in rows[:limit]]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  " + "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more rows")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def format_text(tenant: str, result: Evaluation, views: list[str], limit: int = 20) -> str:
    parts = [f"tenant {tenant} at {result.at.isoformat()} (computed by PostgreSQL in {result.seconds:.2f}s)"]
    for name, rows in result.views.items():
        if views and name not in views:
            continue
        parts.append(f"\n{name} ({len(rows)} rows)\n{_table(rows, limit)}")
    return "\n".join(parts)


def cmd_preview(args: argparse.Namespace) -> int:
    try:
        results = run_preview(Path(args.file), Path(args.events), args.at, args.postgres_dsn)
    except (LocalPostgresError, EvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: cannot connect to PostgreSQL: {first}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 1
    if args.json:

        def pick(r: Evaluation) -> dict[str, Any]:
            data = r.to_json()
            return {k: v for k, v in data.items() if not args.view or k in args.view}

        payload: Any = pick(results[0][1]) if len(results) == 1 else {t: pick(r) for t, r in results}
        json.dump(payload, sys.stdout, indent=2)
        print()
    else:
        print("\n\n".join(format_text(t, r, args.view) for t, r in results))
    return 0
