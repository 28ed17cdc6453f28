"""Generate the ChargingAnalytics CustomResourceDefinition from the Pydantic models.

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: ``$ref`` inlined,
``Optional[X]`` reduced to ``X`` (absent means unset), titles dropped, object defaults made
explicit so the API server defaults nested fields, and the models' rules kept as CEL
``x-kubernetes-validations``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from . import constants as c
from .spec import ChargingAnalyticsSpec, ChargingAnalyticsStatus

CRD_FILENAME = f"{c.CRD_NAME}.yaml"

_DROP_KEYS = {"title", "additionalProperties"}
_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref").rsplit("/", 1)[-1]
        merged = copy.deepcopy(defs[ref])
        merged.update(node)  # field-level description/default win over the model's
        node = merged
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express union {variants!r} structurally")
        inner = _structural(variants[0], defs)
        inner.update({k: v for k, v in node.items() if k not in ("default",) or v is not None})
        node = inner
    if node.get("default", "absent") is None:
        del node["default"]
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key in ("items",):
            out[key] = _structural(value, defs)
        elif key in _EXCLUSIVE_BOUNDS and not isinstance(value, bool):
            # JSON Schema 2020-12 (Pydantic) has a numeric exclusive bound; OpenAPI v3.0
            # (Kubernetes) wants the bound in minimum/maximum plus a boolean flag.
            out[_EXCLUSIVE_BOUNDS[key]] = value
            out[key] = True
        else:
            out[key] = value
    if (
        out.get("type") == "object"
        and "properties" not in out
        and node.get("additionalProperties") is not None
    ):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    return out


def _default_nested_objects(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Give optional object fields built by ``default_factory`` an explicit ``default``.

    The API server then applies the nested defaults, so ``kubectl get -o yaml`` shows the
    effective configuration.
    """
    props = schema.get("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        sub = props.get(key)
        if sub is None:
            continue
        annotation = field.annotation
        if (
            field.default_factory is not None
            and isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
        ):
            # The model's own defaults, not ``{}``: the API server checks a default against the
            # object's CEL rules without applying the nested defaults first.
            default = field.get_default(call_default_factory=True)
            sub.setdefault("default", default.model_dump(mode="json", by_alias=True, exclude_none=True))
        inner = _model_of(annotation)
        if inner is not None and sub.get("type") == "object":
            _default_nested_objects(sub, inner)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs)
    _default_nested_objects(schema, model)
    return schema


def _condition(type_: str, field: str) -> str:
    """The JSONPath of one field of the condition of ``type_``."""
    return f'.status.conditions[?(@.type=="{type_}")].{field}'


#: ``kubectl get`` columns: the tenant, its mode, and the Ready condition's status and reason.
PRINTER_COLUMNS: tuple[dict[str, Any], ...] = (
    {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "priority": 1},
    {"name": c.COND_READY, "type": "string", "jsonPath": _condition(c.COND_READY, "status")},
    {"name": "Reason", "type": "string", "jsonPath": _condition(c.COND_READY, "reason")},
    {
        "name": c.COND_DRIFTED,
        "type": "string",
        "jsonPath": _condition(c.COND_DRIFTED, "status"),
        "priority": 1,
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _root_schema() -> dict[str, Any]:
    """The resource's OpenAPI schema: the spec and status models."""
    status_schema = openapi_schema(ChargingAnalyticsStatus)
    status_schema["x-kubernetes-preserve-unknown-fields"] = True  # Kopf keeps its own progress here
    status_schema["properties"]["conditions"]["x-kubernetes-list-type"] = "map"
    status_schema["properties"]["conditions"]["x-kubernetes-list-map-keys"] = ["type"]
    return {
        "type": "object",
        "description": "One EV charging network tenant's streaming analytics pipeline in RisingWave.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": openapi_schema(ChargingAnalyticsSpec),
            "status": status_schema,
        },
    }


def build_crd() -> dict[str, Any]:
    version = {
        "name": c.VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": [dict(col) for col in PRINTER_COLUMNS],
        "schema": {"openAPIV3Schema": _root_schema()},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": c.CRD_NAME},
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": c.KIND,
                "listKind": c.LIST_KIND,
                "plural": c.PLURAL,
                "singular": c.SINGULAR,
                "shortNames": list(c.SHORT_NAMES),
                "categories": ["all", "evcharging"],
            },
            "versions": [version],
        },
    }


HEADER = (
    "# Generated by `charging-analytics crds` from the Pydantic models in\n"
    "# operator/charging_analytics/spec.py. Do not edit by hand.\n"
)


def render_crd_yaml() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=100)


def write_crd(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CRD_FILENAME
    path.write_text(render_crd_yaml(), encoding="utf-8")
    return path
