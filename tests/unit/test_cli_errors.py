"""The CLI fails in one line with an exit code (a traceback only with --debug), takes several -f,
reports every rule a manifest breaks, and documents every flag."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from charging_analytics import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "voltbay.yaml"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "charging_analytics.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_missing_file_is_one_line_and_exit_code_2() -> None:
    result = run("validate", "-f", "no/such/file.yaml")
    assert result.returncode == cli.EXIT_USAGE
    assert "no/such/file.yaml" in _one_line_error(result)


def test_a_bad_dsn_is_one_line_and_never_echoes_the_password() -> None:
    result = run("plan", "-f", str(EXAMPLE), "--dsn", "mysql://u:s3cret@host/db")
    assert result.returncode == cli.EXIT_USAGE
    line = _one_line_error(result)
    assert "--dsn" in line
    assert "s3cret" not in result.stderr


def test_an_unreachable_risingwave_is_one_line_and_exit_code_3() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = run("plan", "-f", str(EXAMPLE), "--dsn", f"postgresql://root@127.0.0.1:{port}/dev")
    assert result.returncode == cli.EXIT_UNAVAILABLE, result.stderr
    _one_line_error(result)


def test_debug_shows_the_traceback() -> None:
    result = run("--debug", "plan", "-f", str(EXAMPLE), "--dsn", "postgresql://root@127.0.0.1:1/dev")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    acme = ROOT / "examples" / "acme.yaml"
    shell = f"{sys.executable} -m charging_analytics.cli render -f {acme} -f {EXAMPLE} | head -c 10"
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {shell}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert "Traceback" not in result.stderr
    assert "BrokenPipe" not in result.stderr


def test_several_files_are_all_read(tmp_path: Path) -> None:
    result = run("validate", "-f", str(ROOT / "examples" / "acme.yaml"), "-f", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "tenants/voltbay: valid" in result.stdout
    assert "acme: valid" in result.stdout


def test_every_broken_rule_is_reported_not_only_the_first(tmp_path: Path) -> None:
    text = (
        EXAMPLE.read_text(encoding="utf-8")
        .replace("CCS: 0.69", "CCS: 0.12345")
        .replace("Type2: 0.42", "Type2: 0.00001")
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    result = run("validate", "-f", str(bad))
    assert result.returncode == cli.EXIT_INVALID
    assert "pricePerKwh.CCS" in result.stderr
    assert "pricePerKwh.Type2" in result.stderr


def test_validate_does_not_call_the_operators_own_secret_missing(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8") + "  readOnlyUser:\n    enabled: true\n"
    path = tmp_path / "reader.yaml"
    path.write_text(text, encoding="utf-8")
    result = run("validate", "-f", str(path))
    assert result.returncode == 0, result.stderr
    assert "readonly" not in result.stdout
    assert "read-only" not in result.stdout


def test_version_is_printed() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("charging-analytics ")


def _actions(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(_actions(sub, f"{path} {name}"))
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            out.append((path, action))
    return out


def test_every_flag_has_help() -> None:
    actions = _actions(cli.build_parser(), "charging-analytics")
    assert len(actions) > 20
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in actions if not a.help]
    assert missing == []


@pytest.mark.parametrize("command", ["render", "validate"])
def test_no_resource_in_the_input_is_one_line(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", encoding="utf-8")
    result = run(command, "-f", str(empty))
    assert result.returncode == cli.EXIT_INVALID
    _one_line_error(result)
