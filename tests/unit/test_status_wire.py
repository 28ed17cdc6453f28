"""The status on the wire: a resource's status is read into the typed model once
(``status.read_status``) and a reconcile's is written from it once (``status.published``), with
the key names and omissions the operator has always written, and nothing else."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from typing import Any

from charging_analytics import constants as c
from charging_analytics.catalog import LedgerEntry, ObservedObject, TenantCatalog
from charging_analytics.operator.dashboards import owns_dashboards, recorded_hashes
from charging_analytics.operator.quiet import entries, entry_models
from charging_analytics.operator.service import Resource, Service
from charging_analytics.operator.settings import OperatorSettings
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import DesiredObject, RenderOptions, render
from charging_analytics.spec import ChargingAnalyticsStatus, CredentialDigests, CredentialVersion
from charging_analytics.status import (
    Reason,
    fingerprints_from,
    merge_conditions,
    objects_status,
    plan_status,
    published,
    read_status,
    ready,
    reconciling,
)
from testbed.specs import resource, spec_dict, tenant_spec

T0 = "2026-12-01T10:00:00Z"

#: A converged tenant's status as the operator writes it (and the API server returns it).
CONVERGED: dict[str, Any] = {
    "endpoint": "risingwave:4566/dev",
    "credentials": [
        {
            "role": "kafka",
            "secret": "acme-kafka",
            "resourceVersion": "4711",
            "digests": {"username": "0a1b2c3d4e5f60718293a4b5", "password": "a1b2c3d4e5f60718293a4b5c"},
        },
        {
            "role": "reader",
            "secret": "acme-reader",
            "resourceVersion": "12",
            "digests": {"password": "ff" * 12},
        },
    ],
    "planHash": "sha256:0123456789abcdef01234567",
    "objects": [
        {"kind": "Schema", "name": "acme", "state": "Ready", "hash": "sha256:aa"},
        {
            "kind": "Source",
            "name": "acme.ocpp_events",
            "state": "Ready",
            "hash": "sha256:bb",
            "fingerprint": "0123456789abcdef",
        },
        {
            "kind": "MaterializedView",
            "name": "acme.sessions",
            "state": "Creating",
            "hash": "sha256:cc",
            "backfillProgress": "42.10%",
            "fingerprint": "fedcba9876543210",
        },
        {"kind": "ConfigMap", "name": "acme-dashboard", "state": "Ready", "hash": "sha256:dd"},
    ],
    "appliedHash": "sha256:89abcdef0123456789abcdef",
    "conditions": [
        {
            "type": c.COND_READY,
            "status": "True",
            "reason": "Applied",
            "message": "4 objects in RisingWave match the spec",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        },
        {
            "type": c.COND_RECONCILING,
            "status": "False",
            "reason": "Applied",
            "message": "",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        },
    ],
    "observedGeneration": 3,
}

#: Plan mode's status: the plan, with the Grafana objects it would change.
PLANNED: dict[str, Any] = {
    "planHash": "sha256:0123456789abcdef01234567",
    "plan": {
        "hash": "sha256:0123456789abcdef01234567",
        "destructive": False,
        "actions": 2,
        "statements": ["CREATE SCHEMA IF NOT EXISTS acme", "CREATE SOURCE acme.ocpp_events ..."],
        "truncated": False,
        "objects": ["create ConfigMap ns/acme-dashboard"],
    },
    "objects": [{"kind": "Schema", "name": "acme", "state": "Pending", "hash": "sha256:aa"}],
}


def _json(value: Any) -> Any:
    """As the API server returns it."""
    return json.loads(json.dumps(value))


def test_a_status_the_operator_wrote_reads_back_to_exactly_that_status() -> None:
    for stored in (CONVERGED, PLANNED, {**CONVERGED, "plan": None}, {}):
        assert published(read_status(_json(stored))) == stored


def test_previous_status_is_read_as_typed_fields() -> None:
    status = read_status(_json({**CONVERGED, **PLANNED}))
    assert status.observed_generation == 3
    assert status.plan_hash == PLANNED["planHash"]
    assert status.plan is not None
    assert status.plan.objects == ["create ConfigMap ns/acme-dashboard"]
    assert [cond.type for cond in status.conditions] == [c.COND_READY, c.COND_RECONCILING]
    assert status.credentials[1].digests == CredentialDigests(password="ff" * 12)
    assert fingerprints_from(read_status(CONVERGED)) == {
        "ocpp_events": "0123456789abcdef",
        "sessions": "fedcba9876543210",
    }
    assert recorded_hashes(read_status(CONVERGED).objects) == {("ConfigMap", "acme-dashboard", "sha256:dd")}


def _half_built() -> tuple[list[DesiredObject], TenantCatalog]:
    """acme's objects with its source applied and a view backfilling: every entry shape at once."""
    desired = render(tenant_spec("acme"), RenderOptions(secret_store="inline"))
    source = next(o for o in desired if o.kind == "Source")
    built = next(o for o in desired if o.kind == "MaterializedView")
    catalog = TenantCatalog(
        "acme",
        True,
        objects={source.name: ObservedObject.read("Source", "acme", source.name, 7, "CREATE SOURCE")},
        ledger={source.key: LedgerEntry("acme", source.name, "Source", source.hash)},
        ddl_progress={built.name: "42.10%"},
    )
    return desired, catalog


def test_a_status_built_by_the_operator_survives_the_api_server_round_trip() -> None:
    desired, catalog = _half_built()
    status = ChargingAnalyticsStatus(
        endpoint="risingwave:4566/dev",
        objects=objects_status(desired, catalog),
        plan=plan_status(build_plan(desired, catalog, PlanOptions(owner="ns/acme"))),
        conditions=merge_conditions(None, ready(Reason.APPLIED, "m"), 2),
        credentials=[
            CredentialVersion(
                role="kafka", secret="s", resource_version="1", digests=CredentialDigests(password="ab" * 12)
            )
        ],
    )
    wire = _json(published(status))
    assert read_status(wire) == status
    assert published(read_status(wire)) == wire


def test_entries_kept_by_a_quiet_report_publish_exactly_as_the_models_they_were_taken_from() -> None:
    desired, catalog = _half_built()
    objects = objects_status(desired, catalog)
    # the three shapes an entry takes: a fingerprint, a backfill progress, neither
    assert {frozenset(o.model_fields_set) for o in objects} == {
        frozenset({"kind", "name", "state", "hash", "fingerprint"}),
        frozenset({"kind", "name", "state", "hash", "backfill_progress"}),
        frozenset({"kind", "name", "state", "hash"}),
    }

    again = entry_models(entries(objects))

    assert again == objects
    wire = published(ChargingAnalyticsStatus(objects=objects))
    assert published(ChargingAnalyticsStatus(objects=again)) == wire


def test_published_entries_carry_only_the_keys_the_operator_always_wrote() -> None:
    desired = render(tenant_spec("acme"), RenderOptions(secret_store="inline"))
    wire = published(
        ChargingAnalyticsStatus(
            objects=objects_status(desired, TenantCatalog("acme", False)),
            plan=plan_status(build_plan(desired, TenantCatalog("acme", False), PlanOptions(owner="ns/acme"))),
            conditions=merge_conditions(None, reconciling(Reason.BACKFILLING, "m"), 5, now=T0),
        )
    )
    assert set(wire) == {"objects", "plan", "conditions"}
    assert {frozenset(o) for o in wire["objects"]} == {frozenset({"kind", "name", "state", "hash"})}
    assert set(wire["plan"]) == {"hash", "destructive", "actions", "statements", "truncated"}
    keys = {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
    assert all(set(cond) == keys for cond in wire["conditions"])
    # a field never set is not written; one set to None is removed from the resource
    assert published(ChargingAnalyticsStatus()) == {}
    cleared = ChargingAnalyticsStatus()
    cleared.plan = None
    assert published(cleared) == {"plan": None}


def test_a_missing_or_partial_status_reads_as_empty_fields() -> None:
    for stored in (None, {}, "not a status", []):
        status = read_status(stored)  # type: ignore[arg-type]
        assert published(status) == {}
        assert (status.plan_hash, status.plan, status.objects, status.credentials) == (None, None, [], [])
        assert not owns_dashboards(status)
    partial = read_status({"conditions": CONVERGED["conditions"]})
    assert [cond.reason for cond in partial.conditions] == ["Applied", "Applied"]
    assert (partial.observed_generation, partial.objects, fingerprints_from(partial)) == (None, [], {})


def test_content_the_schema_refuses_is_left_out_and_the_rest_is_read() -> None:
    stored = _json(CONVERGED)
    stored["objects"] += [
        {"kind": "Table", "name": "acme.old", "state": "Stale", "hash": "h"},  # no such state
        {"kind": "View", "name": "acme.v", "hash": "h"},  # no state
        "acme.junk",
    ]
    stored["conditions"].append({"type": "Synced", "status": "True"})  # no reason, no time
    stored["credentials"].append({"role": "kafka", "secret": "x", "resourceVersion": "1", "digests": ["d"]})
    stored["endpoint"] = 4566
    stored["kopf"] = {"progress": {}}  # a key the model does not know
    status = read_status(stored)
    assert status.objects == read_status(CONVERGED).objects
    assert status.conditions == read_status(CONVERGED).conditions
    assert status.credentials == read_status(CONVERGED).credentials
    assert status.endpoint is None
    assert "endpoint" not in published(status)
    assert published(status)["kopf"] == {"progress": {}}
    assert status.plan_hash == CONVERGED["planHash"]


class _Kube:
    """Records status patches; a suspended resource needs nothing else of Kubernetes."""

    api: Any = None

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.patches.append(_json(dict(status)))

    async def close(self) -> None:
        return None


def _reconcile(kube: _Kube, body: dict[str, Any]) -> None:
    async def run() -> None:
        await Service(OperatorSettings(), kube).reconcile(Resource.from_body(body), origin="update")  # type: ignore[arg-type]

    asyncio.run(run())


def test_a_status_that_already_says_it_is_not_written_again() -> None:
    kube = _Kube()
    body = resource("acme", "ns", spec_dict("acme", suspend=True), generation=3)
    _reconcile(kube, body)
    assert [cond["reason"] for cond in kube.patches[0]["conditions"]] == ["Suspended"] * 3
    body["status"] = copy.deepcopy(kube.patches[0])
    _reconcile(kube, body)
    assert len(kube.patches) == 1


def test_a_stored_status_with_refused_content_is_written_without_it() -> None:
    kube = _Kube()
    body = resource("acme", "ns", spec_dict("acme", suspend=True), generation=3)
    _reconcile(kube, body)
    body["status"] = copy.deepcopy(kube.patches[0])
    body["status"]["conditions"].append({"type": "Synced", "status": "True"})
    _reconcile(kube, body)
    assert len(kube.patches) == 2
    assert kube.patches[1]["conditions"] == kube.patches[0]["conditions"]
