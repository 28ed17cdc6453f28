"""Find pipelines that fail at random under `set -o pipefail`.

A consumer that stops reading early (`head`, `grep -q`, `grep -m N`, `sed ...q`, `awk ... exit`) closes the
pipe while the producer may still be writing; the producer then dies of SIGPIPE or a write error, and under
pipefail the whole pipeline fails, depending only on timing. shellcheck has no rule for this, so the CI lint
stage runs this check over every script on the CI path.

    python3 scripts/check_pipes.py FILE...     # exit 1 and one line per finding, file:line: text
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# A pipe (not `||`) followed by a command that may exit before its input ends.
_EARLY_EXIT = re.compile(
    r"""(?<![|])\|(?![|])\s*          # a single pipe
    (?:
        head\b                        # head -1, head -n 5, head -c
      | grep\b[^|;&]*\s-[A-Za-z]*[qm]  # grep -q / grep -m N (also combined flags: -Fq, -qE)
      | grep\b[^|;&]*\s--(?:quiet|silent|max-count)\b
      | sed\b[^|&]*\bq\b              # sed 1q, sed -n '1p;q'
      | awk\b[^|&]*\bexit\b           # awk '{print; exit}'
    )""",
    re.VERBOSE,
)
_PIPEFAIL = re.compile(r"set\s+-[A-Za-z]*o\s+pipefail|set\s+-o\s+pipefail|-euo\s+pipefail")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")


def findings(path: Path) -> list[str]:
    """`file:line: text` for each early-exit consumer in a pipefail script.

    Heredoc bodies and comments are skipped."""
    text = path.read_text(encoding="utf-8")
    if not _PIPEFAIL.search(text):
        return []
    out: list[str] = []
    heredoc_end: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        if _EARLY_EXIT.search(code):
            out.append(f"{path}:{number}: {line.strip()}")
        opened = _HEREDOC.search(code)
        if opened:
            heredoc_end = opened.group(1)
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: check_pipes.py FILE...", file=sys.stderr)
        return 2
    found = [f for name in argv for f in findings(Path(name))]
    for f in found:
        print(f"{f}  <- a consumer that exits early breaks the pipe under pipefail; capture the output first")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
