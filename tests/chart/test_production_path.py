"""The README's Install, Upgrade and Uninstall sections followed step by step on a control plane of
this test's own (etcd + kube-apiserver, no kubelet).

helm installs the chart as written (its CRDs included); the operator then runs as a local process
started the way the kubelet would start the Deployment helm created: its command and arguments,
its environment (literal values, ``secretKeyRef`` values read from the Secret, ``fieldRef`` values),
authenticated as the chart's ServiceAccount (a client certificate carrying that ServiceAccount's
user and groups, so only the chart's RBAC applies). Tenants become Ready on the default endpoint the
chart configured (the RisingWave double) with the real Kafka broker; ``helm upgrade`` with a changed
value is rolled out by restarting the process from the upgraded Deployment; and the uninstall order
the README gives leaves, for an ``Orphan`` tenant, its RisingWave objects and nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from charging_analytics import constants as c
from testbed.bed import Testbed as _Testbed
from testbed.controlplane import ControlPlane, KubeApiError, KubeRest
from testbed.kafka import create_topic
from testbed.polling import wait_for
from testbed.process import ManagedProcess
from tests.chart.chart_support import CHART_DIR, CRDS_DIR, helm
from tests.rw_double.fixtures import RisingWaveTarget
from tests.service.harness import _relations as relations

REPO = Path(__file__).resolve().parents[2]
RELEASE, RELEASE_NS, TENANT_NS = "cha", "cha-system", "tenants"
CR_LIST = f"/apis/{c.GROUP}/{c.VERSION}/{c.PLURAL}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def cluster(testbed: _Testbed) -> Iterator[ControlPlane]:
    """A control plane with nothing installed: the CRDs must come from ``helm install``."""
    cp = ControlPlane(workdir=testbed.root / f"k8s-prod-{uuid.uuid4().hex[:6]}")
    cp.start()
    try:
        yield cp
    finally:
        cp.stop(keep_workdir=True)


class Kubelet:
    """Starts the Deployment's operator container as a local process (there is no kubelet)."""

    def __init__(self, cp: ControlPlane, workdir: Path) -> None:
        self.cp = cp
        self.workdir = workdir
        self.process: ManagedProcess | None = None
        self.runs = 0

    def deployment(self) -> dict[str, Any]:
        out: dict[str, Any] = self.cp.rest.get(
            f"/apis/apps/v1/namespaces/{RELEASE_NS}/deployments/{RELEASE}-charging-analytics-operator"
        )
        return out

    def _env(self, pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
        pod_name = f"{RELEASE}-charging-analytics-operator-{uuid.uuid4().hex[:5]}"
        env: dict[str, str] = {}
        for item in container.get("env") or []:
            if "valueFrom" not in item:  # the apiserver drops an empty value
                env[item["name"]] = item.get("value", "")
                continue
            source = item["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = self.cp.rest.get(f"/api/v1/namespaces/{RELEASE_NS}/secrets/{ref['name']}")
                env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
            else:
                path = source["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": pod_name, "metadata.namespace": RELEASE_NS}[path]
        return env

    def start(self) -> Path:
        """Run the container as the Deployment describes it; returns its log file."""
        spec = self.deployment()["spec"]["template"]["spec"]
        container = next(x for x in spec["containers"] if x["name"] == "operator")
        sa = spec["serviceAccountName"]
        kubeconfig = self.cp.make_user_kubeconfig(
            f"system:serviceaccount:{RELEASE_NS}:{sa}",
            ("system:serviceaccounts", f"system:serviceaccounts:{RELEASE_NS}"),
        )
        bindir = Path(sys.executable).parent
        env = {
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.workdir),
            "PYTHONPATH": f"{REPO / 'operator'}{os.pathsep}{REPO}",
            "KUBECONFIG": str(kubeconfig),
            **self._env(spec, container),
        }
        self.runs += 1
        log = self.workdir / f"operator-{self.runs}.log"
        self.process = ManagedProcess(
            "operator", [*container["command"], *container["args"]], log, env=env, cwd=self.workdir
        )
        self.process.start()
        return log

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None



def _ready(rest: KubeRest, name: str) -> dict[str, Any] | None:
    obj: dict[str, Any] = rest.get(f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{TENANT_NS}/{c.PLURAL}/{name}")
    conds = {x["type"]: x for x in obj.get("status", {}).get("conditions", [])}
    ready = conds.get(c.COND_READY)
    return obj if ready is not None and ready["status"] == "True" else None


def _tenant(name: str, tenant: str, kafka: str, policy: str) -> dict[str, Any]:
    topic = f"ocpp.{tenant}.events"
    create_topic(kafka, topic)
    return {
        "apiVersion": c.API_VERSION,
        "kind": c.KIND,
        "metadata": {"name": name, "namespace": TENANT_NS},
        "spec": {  # no spec.risingwave: the chart's default endpoint
            "tenant": tenant,
            "deletionPolicy": policy,
            "kafka": {"bootstrapServers": [kafka], "eventsTopic": topic},
            "analytics": {
                "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 0.59, "CHAdeMO": 0.49, "Type2": 0.35}}
            },
            "alerts": {"sinks": {"kafka": {"topic": f"ocpp.{tenant}.alerts"}}},
        },
    }


def _relations(rw: RisingWaveTarget, tenant: str) -> set[str]:
    with rw.connect() as conn:
        return {f"{s}.{n}" for s, n in relations(conn) if s == tenant}


def _ledger_tenants(rw: RisingWaveTarget) -> set[str]:
    with rw.connect() as conn:
        try:
            rows = conn.execute("SELECT tenant FROM cha_system.ledger").fetchall()
        except psycopg.Error:
            return set()
    return {r[0] for r in rows}


def test_install_upgrade_and_uninstall_as_the_readme_says(
    cluster: ControlPlane, kafka_broker: str, risingwave: RisingWaveTarget, tmp_path: Path
) -> None:
    cp, rest = cluster, cluster.rest
    kubeconfig = ["--kubeconfig", str(cp.kubeconfig)]
    rw = risingwave.endpoint
    started = time.monotonic()

    # -- Install: the namespace and the default endpoint's credentials Secret, then helm install --
    rest.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NS}}
    )
    rest.post(
        f"/api/v1/namespaces/{RELEASE_NS}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rw-admin"},
            "stringData": {"username": rw.user, "password": rw.password},
        },
    )
    settings = [  # the operator's fast intervals are chart values too
        f"operator.healthPort={_free_port()}",
        f"operator.metricsPort={_free_port()}",
        "operator.driftIntervalSeconds=30",
        "operator.catalogCacheSeconds=1",
        "operator.backoffBaseSeconds=1",
        "operator.backoffMaxSeconds=4",
        "operator.kafkaTimeoutSeconds=5",
        "operator.secretStore=inline",
    ]
    helm(
        "install", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NS, "--create-namespace",
        "--set", f"risingwave.host={rw.host}", "--set", f"risingwave.port={rw.port}",
        "--set", f"risingwave.database={rw.database}", "--set", "risingwave.sslmode=disable",
        "--set", "risingwave.credentialsSecret.name=rw-admin",
        *[arg for s in settings for arg in ("--set", s)],
        *kubeconfig,
    )  # fmt: skip
    crds = {
        d["metadata"]["name"]
        for d in rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    }
    assert c.CRD_NAME in crds  # helm installed the chart's crds/

    rest.post(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TENANT_NS}}
    )
    wait_for(lambda: _served(rest), 30, "the CRD to be served")
    kubelet = Kubelet(cp, tmp_path)
    try:
        first_log = kubelet.start()
        suffix = uuid.uuid4().hex[:6]
        kept, dropped = f"kept_{suffix}", f"dropped_{suffix}"
        rest.post(
            f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{TENANT_NS}/{c.PLURAL}",
            _tenant("dropped", dropped, kafka_broker, "Delete"),
        )
        rest.post(
            f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{TENANT_NS}/{c.PLURAL}",
            _tenant("kept", kept, kafka_broker, "Orphan"),
        )
        for name in ("dropped", "kept"):
            obj = wait_for(lambda n=name: _ready(rest, n), 90, f"{name} to be Ready")
            assert obj["status"]["endpoint"] == f"{rw.host}:{rw.port}/{rw.database}"
        built = {t: _relations(risingwave, t) for t in (kept, dropped)}
        assert all(len(v) >= 10 for v in built.values()), built
        lines = [ln for ln in first_log.read_text().splitlines() if ln.startswith("{")]
        assert lines, "operator.logFormat=json (the chart's default) logs JSON"
        assert all("message" in json.loads(ln) for ln in lines[:20])

        # -- Upgrade: the CRD first (server-side apply), then helm upgrade with a changed value ----
        for path in sorted(CRDS_DIR.glob("*.yaml")):
            cp.install_crd(path)
        helm(
            "upgrade", RELEASE, str(CHART_DIR), "--namespace", RELEASE_NS, "--reuse-values",
            "--set", "operator.logFormat=plain", *kubeconfig,
        )  # fmt: skip
        env = {e["name"]: e.get("value") for e in _container(kubelet.deployment())["env"]}
        assert env["CHA_LOG_FORMAT"] == "plain"
        kubelet.stop()  # the rollout: the old pod goes, the new one starts from the new spec
        second_log = kubelet.start()
        generation = {n: _ready(rest, n)["metadata"]["generation"] for n in ("dropped", "kept")}  # type: ignore[index]
        wait_for(
            lambda: second_log.read_text().count("Resuming is processed: 1 succeeded") == 2,
            60,
            "the upgraded operator to resume both resources",
        )
        for name in ("dropped", "kept"):
            obj = wait_for(lambda n=name: _ready(rest, n), 60, f"{name} Ready after the upgrade")
            assert obj["status"]["observedGeneration"] == generation[name]
        assert not any(ln.startswith("{") for ln in second_log.read_text().splitlines())
        assert {t: _relations(risingwave, t) for t in (kept, dropped)} == built  # nothing rebuilt

        # -- Uninstall 1: delete the tenants while the operator still runs ------------------------
        for item in rest.get(CR_LIST)["items"]:
            meta = item["metadata"]
            rest.delete(
                f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{meta['namespace']}/{c.PLURAL}/{meta['name']}"
            )
        wait_for(lambda: rest.get(CR_LIST)["items"] == [], 60, "every resource to be deleted")
        assert _relations(risingwave, dropped) == set()  # Delete: dropped
        assert _relations(risingwave, kept) == built[kept]  # Orphan: every object left running
        assert {kept, dropped} & _ledger_tenants(risingwave) == set()  # ... and only its ledger rows gone
    finally:
        kubelet.stop()

    # -- Uninstall 2: helm uninstall; 3: the CRD -----------------------------------------------------
    helm("uninstall", RELEASE, "--namespace", RELEASE_NS, *kubeconfig)
    with pytest.raises(KubeApiError) as gone:
        kubelet.deployment()
    assert gone.value.status == 404
    assert c.CRD_NAME in {
        d["metadata"]["name"]
        for d in rest.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    }  # helm never deletes its crds/
    rest.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{c.CRD_NAME}")
    wait_for(lambda: not _served(rest), 30, "the CRD to be removed")
    print(f"\nproduction path followed in {time.monotonic() - started:.1f}s")


def _served(rest: KubeRest) -> bool:
    try:
        rest.get(CR_LIST)
        return True
    except KubeApiError:
        return False


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(x for x in containers if x["name"] == "operator")
