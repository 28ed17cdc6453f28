"""ChargingAnalytics specs and resources for tests, benchmarks and the demo: one factory.

:func:`spec_dict` is a small tenant like ``examples/voltbay.yaml`` (its events topic, the default
tariffs, stalled-session alerts to a Kafka topic); every caller states only how its tenant
differs, as overrides merged in (dicts merged key by key, ``None`` removes a key).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from charging_analytics import constants as c
from charging_analytics.spec import ChargingAnalyticsSpec

#: EUR per kWh by connector type (the examples' tariffs).
TARIFFS: Mapping[str, Any] = {"currency": "EUR", "pricePerKwh": {"CCS": 0.59, "CHAdeMO": 0.49, "Type2": 0.35}}


def merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in place: mappings key by key, ``None`` removes the key."""
    for key, value in overrides.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def spec_dict(
    tenant: str,
    *,
    bootstrap: str = "kafka:9092",
    events_topic: str | None = None,
    risingwave: Mapping[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The spec of ``tenant`` (camelCase, as in a manifest), ``overrides`` merged in."""
    spec: dict[str, Any] = {"tenant": tenant}
    if risingwave is not None:
        spec["risingwave"] = dict(risingwave)
    spec["kafka"] = {"bootstrapServers": [bootstrap], "eventsTopic": events_topic or f"ocpp.{tenant}.events"}
    spec["analytics"] = {"tariffs": copy.deepcopy(dict(TARIFFS))}
    spec["alerts"] = {"stalledSessionMinutes": 10, "sinks": {"kafka": {"topic": f"ocpp.{tenant}.alerts"}}}
    return merge(spec, overrides)


def tenant_spec(tenant: str, **kwargs: Any) -> ChargingAnalyticsSpec:
    """:func:`spec_dict` as the validated model."""
    return ChargingAnalyticsSpec.model_validate(spec_dict(tenant, **kwargs))


def resource(name: str, namespace: str | None, spec: Mapping[str, Any], **metadata: Any) -> dict[str, Any]:
    """A ChargingAnalytics resource body with ``spec``."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": meta | metadata, "spec": dict(spec)}
