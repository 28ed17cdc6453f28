"""Status is always writable: every string the operator publishes fits the status schema's bound,
whatever RisingWave or the spec put into it."""

from __future__ import annotations

from pathlib import Path

import yaml

from charging_analytics import constants as c
from charging_analytics.catalog import TenantCatalog
from charging_analytics.render import RenderOptions, render
from charging_analytics.rw.client import Endpoint
from charging_analytics.spec import ChargingAnalytics, ChargingAnalyticsStatus, RisingWaveSpec
from charging_analytics.status import merge_conditions, objects_status, published, stalled

ROOT = Path(__file__).resolve().parents[2]


def _spec() -> ChargingAnalytics:
    doc = next(
        d
        for d in yaml.safe_load_all((ROOT / "examples" / "voltbay.yaml").read_text())
        if d and d["kind"] == c.KIND
    )
    return ChargingAnalytics.model_validate(doc)


def test_objects_with_long_backfill_progress_and_the_longest_endpoint_validate_as_status() -> None:
    spec = _spec().spec
    desired = render(spec, RenderOptions(secret_store="inline"))
    progress = {o.name: "99.99% (" + "9" * 60 + "/" + "9" * 60 + " rows)" for o in desired}
    catalog = TenantCatalog(spec.tenant, True, ddl_progress=progress)
    rw = RisingWaveSpec(host=".".join(["h" * 63] * 3) + "." + "h" * 61, port=65535, database="d" * 63)
    conditions = merge_conditions([], stalled("ApplyFailed", "x" * 10_000), 1)
    endpoint = Endpoint(host=rw.host, port=rw.port, database=rw.database).key  # what status records
    status = published(
        ChargingAnalyticsStatus(
            objects=objects_status(desired, catalog), endpoint=endpoint, conditions=conditions
        )
    )
    ChargingAnalyticsStatus.model_validate(status)  # raises on any bound the API server would enforce
    assert all(len(o["backfillProgress"]) <= 32 for o in status["objects"])
