"""A small driver for lifecycle tests: build tenants, run the operator, wait for conditions."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kopf.testing import KopfRunner

from charging_analytics import constants as c
from testbed.controlplane import ControlPlane, KubeApiError
from testbed.kafka import create_topic
from testbed.polling import wait_for
from testbed.postgres import PostgresServer
from testbed.specs import merge, resource, spec_dict
from tests.rw_double.fixtures import RisingWaveTarget

T = TypeVar("T")
CR_PATH = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{{ns}}/{c.PLURAL}"
#: Structural CRDs of the grafana-operator's two kinds the operator creates (see the file).
GRAFANA_CRDS = Path(__file__).parent / "grafana-operator-crds.yaml"

#: Secret values used by tenants; tests assert none of them ever shows up in output or status.
KAFKA_PASSWORD = "kafka-pw-" + uuid.uuid4().hex
DB_PASSWORD_MARKER = "db-pw-"



class Harness:
    def __init__(
        self,
        control_plane: ControlPlane,
        namespace: str,
        kafka: str,
        postgres: PostgresServer,
        rw: RisingWaveTarget,
    ) -> None:
        self.cp = control_plane
        self.rest = control_plane.rest
        self.ns = namespace
        self.kafka = kafka
        self.pg = postgres
        self.rw = rw
        self.outputs: list[str] = []
        self._topics: set[str] = set()

    # -- Kubernetes -------------------------------------------------------------------------------

    def path(self, name: str | None = None) -> str:
        base = CR_PATH.format(ns=self.ns)
        return f"{base}/{name}" if name else base

    def tenant(
        self,
        name: str,
        *,
        tenant: str | None = None,
        events_topic: str | None = None,
        create_topic_: bool = True,
        postgres_sink: bool = False,
        kafka_sink: bool = True,
        **spec_overrides: Any,
    ) -> dict[str, Any]:
        """A ChargingAnalytics body wired to the test bed (topic created unless told otherwise)."""
        tenant = tenant or f"{name.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
        topic = events_topic or f"ocpp.{tenant}.events"
        if create_topic_:
            self.ensure_topic(topic)
        ep = self.rw.endpoint
        sinks: dict[str, Any] = {}
        if kafka_sink:
            sinks["kafka"] = {"topic": f"ocpp.{tenant}.alerts"}
        if postgres_sink:
            sinks["postgres"] = {
                "host": self.pg.host,
                "port": self.pg.port,
                "database": self.pg.alerts_db,
                "table": f"{tenant}_alerts",
                "sslmode": "disable",
                "credentialsSecretRef": {"name": f"{name}-alerts-db"},
            }
        spec = spec_dict(
            tenant,
            bootstrap=self.kafka,
            events_topic=topic,
            risingwave={"host": ep.host, "port": ep.port, "database": ep.database, "sslmode": "disable"},
            alerts={"availabilityBelowPercent": 80},
        )
        spec["alerts"]["sinks"] = sinks
        return resource(name, self.ns, merge(spec, spec_overrides))

    def ensure_topic(self, topic: str) -> None:
        if topic not in self._topics:
            with contextlib.suppress(Exception):  # already exists
                create_topic(self.kafka, topic)
            self._topics.add(topic)

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.rest.post(self.path(), dict(body))
        return out

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self.rest.get(self.path(name))
            return out
        except KubeApiError as err:
            if err.status == 404:
                return None
            raise

    def patch_spec(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.rest.merge_patch(self.path(name), {"spec": dict(spec)})
        return out

    def annotate(self, name: str, key: str, value: str | None) -> None:
        self.rest.merge_patch(self.path(name), {"metadata": {"annotations": {key: value}}})

    def delete(self, name: str) -> None:
        self.rest.delete(self.path(name))

    def secret(self, name: str, data: Mapping[str, str]) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self.ns},
            "stringData": dict(data),
        }
        try:
            self.rest.post(f"/api/v1/namespaces/{self.ns}/secrets", body)
        except KubeApiError as err:
            if err.status != 409:
                raise
            self.rest.put(f"/api/v1/namespaces/{self.ns}/secrets/{name}", body)

    def alerts_db_secret(self, cr_name: str) -> None:
        self.secret(
            f"{cr_name}-alerts-db", {"username": self.pg.alerts_user, "password": self.pg.alerts_password}
        )

    def events(self) -> list[dict[str, Any]]:
        out: dict[str, Any] = self.rest.get(f"/api/v1/namespaces/{self.ns}/events")
        return list(out.get("items", []))

    # -- conditions -------------------------------------------------------------------------------

    def condition(self, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(name) or {}
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return None

    def wait_condition(
        self,
        name: str,
        type_: str,
        status: str,
        *,
        reason: str | None = None,
        timeout: float = 60,
        generation: bool = True,
    ) -> dict[str, Any]:
        """Wait until ``type_`` has ``status`` (and ``reason``) for the current generation."""

        def check() -> dict[str, Any] | None:
            obj = self.get(name)
            if obj is None:
                return None
            st = obj.get("status") or {}
            if generation and st.get("observedGeneration") != obj["metadata"].get("generation"):
                return None
            for cond in st.get("conditions") or []:
                if (
                    cond.get("type") == type_
                    and cond.get("status") == status
                    and (reason is None or cond.get("reason") == reason)
                ):
                    return obj
            return None

        return wait_for(check, timeout, f"{name}: {type_}={status} reason={reason}")

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait_condition(name, c.COND_READY, "True", timeout=timeout)

    def wait_gone(self, name: str, timeout: float = 60) -> None:
        wait_for(lambda: self.get(name) is None, timeout, f"{name} to be deleted")

    # -- the operator -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def operator(self, timeout: float = 60, *, all_namespaces: bool = False) -> Iterator[KopfRunner]:
        """Run the operator (Kopf) against this namespace (or, with ``all_namespaces``, cluster-wide
        as the chart's default does) for the duration of the block."""
        scope = ["--all-namespaces"] if all_namespaces else ["--namespace", self.ns]
        args = ["run", "--standalone", *scope, "-m", "charging_analytics.operator.main"]
        with KopfRunner(args, timeout=timeout) as runner:
            yield runner
        self.outputs.append(runner.output)
        assert runner.exception is None, runner.exception
        assert runner.exit_code == 0, runner.output[-3000:]

    # -- RisingWave ---------------------------------------------------------------------------------

    def rw_objects(self, tenant: str) -> set[str]:
        """Qualified names of the tenant's relations in RisingWave (schema-qualified)."""
        with self.rw.connect() as conn:
            rows = _relations(conn)
        return {f"{s}.{n}" for s, n in rows if s == tenant}

    def close(self) -> None:
        pass


class Reconciles(list[tuple[str, str]]):
    """(origin, resource name) of every reconcile the operator started, in order; ``results``
    has (origin, resource name, ``Outcome.result``) of every one that returned."""

    running = 0

    def __init__(self) -> None:
        super().__init__()
        self.results: list[tuple[str, str, str]] = []

    def settle(self, quiet: float = 1.0, timeout: float = 15) -> None:
        """Wait until no reconcile runs and none started for ``quiet`` seconds, so the lifecycle's
        steps do not overlap. (A Secret-triggered reconcile still queued when the resource is
        deleted no longer rebuilds the tenant: the service skips deleted resources.)
        """
        mark = (len(self), time.monotonic())

        def quiet_now() -> bool:
            nonlocal mark
            if len(self) != mark[0] or self.running:
                mark = (len(self), time.monotonic())
            return time.monotonic() - mark[1] >= quiet

        wait_for(quiet_now, timeout, "the operator's reconciles to settle")

    def wait_more(self, name: str, count: int = 2, origin: str = "timer", timeout: float = 60) -> None:
        """Wait until ``count`` more reconciles of ``name`` from ``origin`` have returned (the
        drift passes', every 2 s here): what a test then sees is not one reconcile's doing."""

        def done() -> int:
            return sum(1 for o, n, _ in self.results if (o, n) == (origin, name))

        start = done()
        wait_for(lambda: done() - start >= count, timeout, f"{count} more {origin} reconciles of {name}")


def _relations(conn: Any) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for table in ("rw_sources", "rw_materialized_views", "rw_views", "rw_sinks", "rw_tables"):
        rows += conn.execute(
            f"SELECT s.name, r.name FROM rw_catalog.{table} r JOIN rw_catalog.rw_schemas s "
            "ON r.schema_id = s.id"
        ).fetchall()
    return rows


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
