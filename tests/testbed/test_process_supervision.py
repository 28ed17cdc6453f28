"""The test bed fails loudly: a missing tool names the provision command, a service that dies
during startup reports its log, and a readiness poll that never succeeds times out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testbed import tools
from testbed.polling import STARTUP, Poll, wait_for
from testbed.process import ManagedProcess, retry_on_port_conflict
from testbed.tools import InfraError, ToolMissingError


@pytest.mark.parametrize(
    ("lookup", "target"),
    [
        (lambda: tools.k8s_binary("kube-apiserver"), "k8s"),
        (lambda: tools.k8s_binary("etcd"), "k8s"),
        (tools.kafka_libs, "kafka"),
    ],
    ids=["kube-apiserver", "etcd", "kafka"],
)
def test_missing_tool_names_the_provision_command(
    lookup: object, target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARGING_TOOLS_DIR", str(tmp_path))
    assert callable(lookup)
    with pytest.raises(ToolMissingError, match=rf"scripts/provision\.sh {target}"):
        lookup()


def test_versions_come_from_versions_env() -> None:
    pinned = tools.versions()
    assert pinned["KUBERNETES_VERSION"].startswith("v1.")
    assert tools.kubernetes_version() == pinned["KUBERNETES_VERSION"]
    assert tools.kafka_version() == pinned["KAFKA_VERSION"]


def test_process_dying_at_startup_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "doomed",
        [sys.executable, "-c", "import sys; print('listen tcp: address already in use'); sys.exit(3)"],
        tmp_path / "doomed.log",
    )
    proc.start()
    try:
        with pytest.raises(InfraError, match=r"(?s)doomed exited with code 3.*address already in use"):
            wait_for(lambda: False, 30, "doomed to be ready", poll=STARTUP, check=proc.check_running)
    finally:
        proc.stop()


def test_readiness_poll_times_out_with_the_last_error() -> None:
    def probe() -> bool:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(InfraError, match=r"timed out after 0s waiting for the thing.*nobody home"):
        wait_for(probe, 0.3, "the thing", poll=STARTUP)


def test_a_wait_returns_the_first_truthy_value_and_lets_a_test_predicates_error_through() -> None:
    answers = iter([None, 0, "", "here", "later"])
    assert wait_for(lambda: next(answers), 5, "an answer", poll=Poll(interval=0.01)) == "here"
    assert next(answers) == "later"  # polled no further once truthy

    def broken() -> bool:
        raise KeyError("the system under test misbehaved")

    with pytest.raises(KeyError):
        wait_for(broken, 5, "anything")


def test_a_timed_out_wait_is_both_an_assertion_failure_and_an_infra_error() -> None:
    expected = r"timed out after 0s waiting for nothing \(last: False\)"
    with pytest.raises(AssertionError, match=expected) as err:
        wait_for(lambda: False, 0.05, "nothing", poll=Poll(interval=0.01))
    assert isinstance(err.value, InfraError)


def test_stop_escalates_to_sigkill_when_the_signal_is_ignored(tmp_path: Path) -> None:
    proc = ManagedProcess(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('re' + 'ady', flush=True); time.sleep(60)",
        ],
        tmp_path / "stubborn.log",
        stop_timeout=0.5,
    )
    proc.start()
    assert wait_for(lambda: "ready" in proc.log_tail(), 20, "ready", poll=STARTUP, check=proc.check_running)
    assert proc.stop() == -9


def test_port_conflicts_are_retried_and_other_failures_are_not() -> None:
    calls: list[str] = []

    def flaky() -> None:
        calls.append("start")
        if len(calls) == 1:
            raise InfraError(
                "etcd exited with code 1: listen tcp 127.0.0.1:4001: bind: address already in use"
            )

    retry_on_port_conflict(flaky, lambda: calls.append("reset"))
    assert calls == ["start", "reset", "start"]

    def broken() -> None:
        calls.append("broken")
        raise InfraError("exited with code 2: unknown flag --bogus")

    with pytest.raises(InfraError, match="unknown flag"):
        retry_on_port_conflict(broken, lambda: calls.append("reset"))
    assert calls[3:] == ["broken"]


def test_fixture_fails_not_skips_when_tools_are_missing(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    test = "tests/testbed/test_control_plane.py::test_apiserver_serves_pinned_kubernetes_version"
    env = {**os.environ, "CHARGING_TOOLS_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "scripts/provision.sh k8s" in out.stdout
    assert "1 error" in out.stdout
    assert "skipped" not in out.stdout
