"""The operator started the way the image starts it, ``charging-analytics operator …`` in its own
process, as the chart's namespaced ServiceAccount: the command line's namespace reaches the
start-up handler (through Kopf's memo; there is no CHA_WATCH_NAMESPACES), which turns Kopf's
cluster-wide scanning off, so nothing is refused; a resource becomes Ready; and the process
never imports the synchronous ``kubernetes`` client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testbed.bed import unique_name
from testbed.process import free_port
from tests.service.harness import Harness
from tests.service.rbac_support import ChartRbac, denials, rbac_objects, render_release

#: The console script ``charging-analytics`` (``charging_analytics.cli:main``), writing the
#: modules it had loaded to argv[1] when it exits (Kopf ends on SIGTERM and returns normally).
ENTRY_POINT = """
import atexit, json, sys
from charging_analytics.cli import main
report = sys.argv.pop(1)
atexit.register(lambda: open(report, "w").write(json.dumps(sorted(sys.modules))))
sys.argv[0] = "charging-analytics"
sys.exit(main())
"""


def test_the_cli_entry_point_serves_its_namespace_without_the_kubernetes_client(
    harness: Harness, tmp_path: Path
) -> None:
    release_ns = unique_name("r")  # short: the ServiceAccount's name is a certificate CN (64)
    harness.cp.create_namespace(release_ns, labels={"app.kubernetes.io/part-of": "charging-analytics-tests"})
    values = {"rbac": {"scope": "namespaced"}, "watchNamespaces": [harness.ns]}
    rbac = ChartRbac(harness.cp, rbac_objects(render_release(tmp_path, values, release_ns)), harness.ns)
    rbac.install()
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(rbac.kubeconfig)}
    env.pop("CHA_WATCH_NAMESPACES", None)  # the namespace comes from the command line only
    modules_file = tmp_path / "modules.json"
    command = [sys.executable, "-c", ENTRY_POINT, str(modules_file), "operator"]
    command += ["--standalone", "--namespace", harness.ns, "--liveness", f"http://127.0.0.1:{free_port()}/"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            harness.create(harness.tenant("acme"))
            ready = harness.wait_ready("acme", timeout=90)
        finally:
            process.terminate()
            process.wait(timeout=60)
    output = log.read_text(errors="replace")
    assert process.returncode == 0, output[-3000:]
    modules = set(json.loads(modules_file.read_text()))
    assert {"kopf", "aiohttp", "charging_analytics.operator.main"} <= modules
    assert {m for m in modules if m.split(".")[0] == "kubernetes"} == set()
    assert ready["status"]["observedGeneration"] == 1
    # with scanning on, Kopf's lists of namespaces and CRDs would have been refused (and logged)
    assert denials(output) == set(), output[-3000:]
