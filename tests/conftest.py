"""Shared fixtures. The test bed is real: etcd + kube-apiserver, a Kafka broker and PostgreSQL,
started on first use from the tools ``scripts/provision.sh`` caches (logic in ``testbed/``).

A missing tool fails the tests that need it with the provision command to run; nothing is
skipped. Tests get the markers ``k8s``/``kafka``/``postgres`` from the fixtures they use, so
``-m "not k8s"`` deselects everything that needs the control plane.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

# Imported up front, on the main thread: a lazy import later, while Kopf and the test bed run
# threads, has hit CPython 3.11's "AST constructor recursion depth mismatch" in pytest's
# assertion rewriting.
import hypothesis  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testbed.bed import Testbed, tail, unique_name  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.postgres import PostgresServer  # noqa: E402
from testbed.tools import ToolMissingError  # noqa: E402

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

pytest_plugins = ["tests.rw_double.fixtures"]

T = TypeVar("T")
TESTBED = pytest.StashKey[Testbed]()
#: Fixture -> marker it implies (also through fixtures that depend on it).
FIXTURE_MARKERS = {
    "control_plane": "k8s",
    "kube_api": "k8s",
    "namespace": "k8s",
    "kafka_broker": "kafka",
    "postgres_server": "postgres",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in used and item.get_closest_marker(marker) is None:
                item.add_marker(marker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the tail of every running service's log to a failed test's report."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    bed = item.config.stash.get(TESTBED, None)
    if report.failed and bed is not None and any(item.iter_markers(m) for m in set(FIXTURE_MARKERS.values())):
        for path in bed.log_files().values():
            report.sections.append((f"test bed log {path} (last 40 lines)", tail(path, 40)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    bed = config.stash.get(TESTBED, None)
    if bed is None:
        return
    if bed.startup:
        times = ", ".join(f"{name} {secs:.1f}s" for name, secs in bed.startup.items())
        terminalreporter.write_line(f"test bed startup: {times}")
    if bed.kept:
        terminalreporter.write_line(f"test bed logs and data kept in {bed.root}")


def _start(start: Callable[[], T]) -> T:
    try:
        return start()
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def testbed(request: pytest.FixtureRequest) -> Iterator[Testbed]:
    bed = Testbed()
    request.config.stash[TESTBED] = bed
    yield bed
    bed.close(keep=request.session.testsfailed > 0 or bool(os.environ.get("CHARGING_KEEP_TESTBED")))


@pytest.fixture(scope="session")
def control_plane(testbed: Testbed) -> ControlPlane:
    """etcd + kube-apiserver, the CRDs from ``crds/`` installed and Established."""
    return _start(testbed.control_plane)


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[ApiClient]:
    """A ``kubernetes.client.ApiClient`` with the admin kubeconfig."""
    client = control_plane.api_client()
    yield client
    client.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test (never deleted: there is no namespace controller)."""
    name = unique_name(f"t-{request.node.name}"[:40])
    control_plane.create_namespace(name, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"})
    return name


@pytest.fixture(scope="session")
def kafka_broker(testbed: Testbed) -> str:
    """Bootstrap servers (``127.0.0.1:<port>``) of a single-node KRaft broker."""
    return _start(testbed.kafka).bootstrap


@pytest.fixture(scope="session")
def postgres_server(testbed: Testbed) -> PostgresServer:
    """A PostgreSQL cluster: ``.conninfo()`` (trusted superuser), ``.alerts_conninfo()``."""
    return _start(testbed.postgres)


# --- RisingWave double fixtures (owned by rw double work) ---
