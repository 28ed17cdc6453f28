"""The scripts on the CI path cannot fail at random on a broken pipe (`CMD | head -1` under pipefail)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CI_SCRIPTS = [REPO / ".ci" / "run", *sorted((REPO / "scripts").glob("*.sh"))]
CHECKER = REPO / "scripts" / "check_pipes.py"
# Enough output that a producer is still writing when `head` has already exited.
LOUD = "seq 1 2000000"


def _bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO, check=False)


def _check(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "s.sh"
    script.write_text("#!/usr/bin/env bash\nset -euo pipefail\n" + body, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(CHECKER), str(script)], capture_output=True, text=True, check=False
    )
    return [line for line in out.stdout.splitlines() if line]


def test_a_pipe_into_head_really_fails_under_pipefail() -> None:
    """The hazard the check guards against is real: the producer dies on the closed pipe."""
    assert _bash(f"set -o pipefail; {LOUD} | head -1 >/dev/null").returncode != 0


def test_first_line_takes_the_first_line_of_a_loud_command_and_succeeds() -> None:
    result = _bash(f"set -euo pipefail; . scripts/lib.sh; first_line {LOUD}")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"


def test_first_line_passes_on_the_commands_failure() -> None:
    assert _bash("set -uo pipefail; . scripts/lib.sh; first_line false").returncode != 0


@pytest.mark.parametrize(
    "line",
    [
        "mvn -v | head -1",
        "java -version 2>&1 | head -n 1",
        "ls -d /x/*/bin | head -1",
        "ps aux | grep -q kafka",
        "cat f | grep -Fq needle",
        "journal | grep -m 1 ready",
        "cat f | grep --quiet x",
        "log | sed -n '1p;q'",
        "log | awk '{print; exit}'",
        'echo "$(mvn -v | head -1)"',
    ],
)
def test_the_check_flags_every_early_exit_consumer(tmp_path: Path, line: str) -> None:
    assert len(_check(tmp_path, line + "\n")) == 1


@pytest.mark.parametrize(
    "line",
    [
        "first_line mvn -v",
        "go mod download -json | python3 -c 'import json,sys; json.load(sys.stdin)'",
        "a || head -1 f",
        "# mvn -v | head -1 in a comment",
        "grep -q needle file",
        "ls | wc -l",
    ],
)
def test_the_check_accepts_pipes_that_read_to_the_end(tmp_path: Path, line: str) -> None:
    assert _check(tmp_path, line + "\n") == []


def test_the_check_skips_heredoc_bodies(tmp_path: Path) -> None:
    assert _check(tmp_path, "cat <<'EOF'\nmvn -v | head -1\nEOF\n") == []


def test_the_check_ignores_scripts_without_pipefail(tmp_path: Path) -> None:
    script = tmp_path / "plain.sh"
    script.write_text("#!/bin/sh\nmvn -v | head -1\n", encoding="utf-8")
    out = subprocess.run([sys.executable, str(CHECKER), str(script)], capture_output=True, check=False)
    assert out.returncode == 0


def test_no_ci_script_pipes_into_a_consumer_that_exits_early() -> None:
    out = subprocess.run(
        [sys.executable, str(CHECKER), *map(str, CI_SCRIPTS)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout


def test_the_lint_stage_runs_shellcheck_and_the_pipe_check_over_the_ci_scripts() -> None:
    test_sh = (REPO / "scripts" / "test.sh").read_text(encoding="utf-8")
    lint = test_sh[test_sh.index("lint() {") :]
    lint = lint[: lint.index("\n}\n")]
    assert "shellcheck" in lint
    assert "--severity=style .ci/run scripts/*.sh" in lint
    assert "check_pipes.py .ci/run scripts/*.sh" in lint
