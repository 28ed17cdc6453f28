from __future__ import annotations

from pathlib import Path
import time

import pytest

from tests.infra.controlplane import ControlPlane
from tests.infra.testbed import unique_name
from tests.operator.harness import Harness
from tests.operator.rbac_support import ChartRbac, denials, render_rbac


@pytest.fixture
def namespaced_rbac(harness: Harness, control_plane: ControlPlane, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    release_ns = unique_name("r")
    control_plane.create_namespace(release_ns)
    docs = render_rbac(tmp_path, {"rbac": {"scope": "namespaced"}, "watchNamespaces": [harness.ns]}, release_ns)
    rbac = ChartRbac(control_plane, docs, harness.ns)
    rbac.install()
    monkeypatch.setenv("KUBECONFIG", str(rbac.kubeconfig))
    return rbac


def test_explore(harness: Harness, namespaced_rbac: ChartRbac) -> None:
    print(namespaced_rbac.whoami())
    print(sorted(namespaced_rbac.effective_permissions(harness.ns)))
    t0 = time.monotonic()
    with harness.operator() as runner:
        harness.create(harness.tenant("acme"))
        harness.wait_ready("acme", timeout=90)
        print("ready after", time.monotonic() - t0)
    print(runner.output[-6000:])
    print(denials(runner.output))
