"""The generated CRD: in sync with the models, structural, cost-bounded, and faithful to them."""

from __future__ import annotations

import shutil
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from charging_analytics import constants as c
from charging_analytics import spec as spec_module
from charging_analytics.crd import CRD_FILENAME, build_crd, render_crd_yaml
from charging_analytics.rw.client import Endpoint
from charging_analytics.spec import ChargingAnalyticsSpec, ChargingAnalyticsStatus, Rule

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "crds" / CRD_FILENAME


def _version() -> dict[str, Any]:
    (version,) = build_crd()["spec"]["versions"]
    return version


def _root() -> dict[str, Any]:
    return _version()["schema"]["openAPIV3Schema"]


def _nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its path (properties, items, additionalProperties)."""
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _nodes(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], f"{path}{{}}")


def _walk_keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _walk_keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_keys(item)


# --------------------------------------------------------------------------------------------
# In sync
# --------------------------------------------------------------------------------------------


def test_checked_in_crd_equals_the_one_generated_from_the_models() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == render_crd_yaml(), "run `charging-analytics crds`"


def test_crds_check_command_exits_zero_on_the_checked_in_tree() -> None:
    args = ["charging-analytics", "crds", "--check", "crds", "charts/charging-analytics-operator/crds"]
    result = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_crds_check_command_exits_one_when_a_copy_was_edited(tmp_path: Path) -> None:
    shutil.copy(CHECKED_IN, tmp_path / CRD_FILENAME)
    args = ["charging-analytics", "crds", "--check", str(tmp_path)]
    assert subprocess.run(args, capture_output=True, timeout=120, check=False).returncode == 0
    edited = (tmp_path / CRD_FILENAME).read_text(encoding="utf-8").replace("maxLength: 40", "maxLength: 41")
    (tmp_path / CRD_FILENAME).write_text(edited, encoding="utf-8")
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "out of date" in result.stderr


def test_checked_in_crd_is_a_single_yaml_document_of_the_right_kind() -> None:
    docs = [d for d in yaml.safe_load_all(CHECKED_IN.read_text(encoding="utf-8")) if d]
    assert len(docs) == 1
    crd = docs[0]
    assert (crd["apiVersion"], crd["kind"]) == ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    assert crd["metadata"]["name"] == f"{c.PLURAL}.{c.GROUP}"
    assert crd["spec"]["names"]["kind"] == c.KIND


def test_the_manifest_model_accepts_exactly_the_api_version_and_kind_of_the_constants() -> None:
    # typing.Literal cannot name a constant, so the model spells them once more: held to constants.py
    fields = spec_module.ChargingAnalytics.model_fields
    assert typing.get_args(fields["api_version"].annotation) == (c.API_VERSION,)
    assert typing.get_args(fields["kind"].annotation) == (c.KIND,)


# --------------------------------------------------------------------------------------------
# Structural and cost-bounded
# --------------------------------------------------------------------------------------------


def test_schema_is_structural_every_node_typed_and_no_refs_or_unions() -> None:
    root = _root()
    forbidden = {"$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "not", "nullable"}
    assert not forbidden & set(_walk_keys(root))
    for path, node in _nodes(root):
        assert "type" in node, f"{path or '<root>'} has no type"
        assert node["type"] in ("object", "array", "string", "integer", "number", "boolean"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), f"{path} has no items schema"


def test_every_spec_string_has_a_max_length_and_every_list_a_max_items() -> None:
    spec = _root()["properties"]["spec"]
    for path, node in _nodes(spec, "spec"):
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, f"{path} is an unbounded string (CEL cost)"
        if node["type"] == "array":
            assert "maxItems" in node, f"{path} is an unbounded list (CEL cost)"


def test_every_status_string_has_a_max_length() -> None:
    status = _root()["properties"]["status"]
    unbounded = [p for p, n in _nodes(status, "status") if n["type"] == "string" and "enum" not in n
                 and "maxLength" not in n]  # fmt: skip
    assert unbounded == []


def test_every_default_in_the_schema_is_valid_for_its_own_node() -> None:
    checked = 0
    for path, node in _nodes(_root()):
        if "default" in node:
            plain = {k: v for k, v in node.items() if not k.startswith("x-kubernetes")}
            jsonschema.Draft4Validator(plain).validate(node["default"])  # OpenAPI v3.0 ~ draft 4
            checked += 1
            assert path
    assert checked > 10


# --------------------------------------------------------------------------------------------
# Faithful to the Pydantic model
# --------------------------------------------------------------------------------------------


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _literal_values(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            return list(typing.get_args(arg))
    return None


def _models(
    model: type[BaseModel], node: dict[str, Any], path: str
) -> Iterator[tuple[str, type[BaseModel], dict]]:
    """Each model class in the tree with the schema node it became."""
    yield path, model, node
    for name, info in model.model_fields.items():
        key = info.alias or name
        sub = node["properties"][key]
        inner = _model_of(info.annotation)
        if inner is None:
            continue
        if sub["type"] == "array":
            sub = sub["items"]
        yield from _models(inner, sub, f"{path}.{key}")


MODELS = [("spec", ChargingAnalyticsSpec), ("status", ChargingAnalyticsStatus)]


@pytest.mark.parametrize(("key", "root_model"), MODELS)
def test_every_model_field_is_in_the_schema_with_its_enum_default_and_requiredness(
    key: str, root_model: type
) -> None:
    for path, model, node in _models(root_model, _root()["properties"][key], key):
        assert set(node["properties"]) == {i.alias or n for n, i in model.model_fields.items()}, path
        required = {i.alias or n for n, i in model.model_fields.items() if i.is_required()}
        assert set(node.get("required", [])) == required, path
        for name, info in model.model_fields.items():
            sub = node["properties"][info.alias or name]
            where = f"{path}.{info.alias or name}"
            values = _literal_values(info.annotation)
            if values is not None:
                target = sub["items"] if sub.get("type") == "array" else sub  # list of a Literal
                assert target.get("enum") == values, where
            if info.default is not PydanticUndefined and info.default is not None:
                assert sub.get("default") == info.default, where
            elif info.default_factory is not None:
                produced = info.default_factory()  # type: ignore[call-arg]
                if isinstance(produced, BaseModel):  # the API server must apply nested defaults
                    dumped = produced.model_dump(by_alias=True, mode="json", exclude_none=True)
                    assert sub.get("default") in ({}, dumped), where
                else:
                    assert sub.get("default", produced) == produced, where
            else:
                assert "default" not in sub, where


@pytest.mark.parametrize(("key", "root_model"), MODELS)
def test_every_rule_of_a_model_is_emitted_as_cel_on_its_schema_node(key: str, root_model: type) -> None:
    seen = 0
    for path, model, node in _models(root_model, _root()["properties"][key], key):
        rules: tuple[Rule, ...] = getattr(model, "rules", ())
        assert node.get("x-kubernetes-validations", []) == [r.to_cel() for r in rules], path
        seen += len(rules)
    if key == "spec":
        assert seen >= 9


def test_cel_field_paths_name_existing_fields() -> None:
    checked = 0
    for path, _, node in _models(ChargingAnalyticsSpec, _root()["properties"]["spec"], "spec"):
        for rule in node.get("x-kubernetes-validations", []):
            if "fieldPath" not in rule:
                continue
            target = node
            for part in rule["fieldPath"].removeprefix(".").split("."):
                assert part in target.get("properties", {}), f"{path}: {rule['fieldPath']} names no field"
                target = target["properties"][part]
            checked += 1
    assert checked >= 9


def test_tenant_is_immutable_through_a_transition_rule() -> None:
    tenant = _root()["properties"]["spec"]["properties"]["tenant"]
    assert {"rule": "self == oldSelf", "message": "tenant is immutable"} in tenant["x-kubernetes-validations"]
    assert "tenant" in _root()["properties"]["spec"]["required"]


def test_patterns_and_bounds_match_the_model() -> None:
    props = _root()["properties"]["spec"]["properties"]
    assert props["tenant"]["pattern"] == spec_module.TENANT_PATTERN
    assert props["kafka"]["properties"]["eventsTopic"]["pattern"] == spec_module.KAFKA_TOPIC_PATTERN
    assert (
        props["kafka"]["properties"]["bootstrapServers"]["items"]["pattern"]
        == spec_module.BOOTSTRAP_SERVER_PATTERN
    )
    assert props["kafka"]["properties"]["bootstrapServers"]["maxItems"] == 16
    assert props["kafka"]["properties"]["bootstrapServers"]["minItems"] == 1
    stalled = props["alerts"]["properties"]["stalledSessionMinutes"]
    assert (stalled["minimum"], stalled["maximum"]) == (1, 1440)


def test_examples_validate_against_the_crd_schema() -> None:
    spec_schema = _root()["properties"]["spec"]
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(example.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == c.KIND:
                jsonschema.Draft4Validator(spec_schema).validate(doc["spec"])


# --------------------------------------------------------------------------------------------
# Printer columns and subresources
# --------------------------------------------------------------------------------------------


def test_printer_columns_show_tenant_ready_reason_and_age_by_default() -> None:
    columns = {col["name"]: col for col in _version()["additionalPrinterColumns"]}
    default = [col["name"] for col in _version()["additionalPrinterColumns"] if not col.get("priority")]
    assert default == ["Tenant", "Ready", "Reason", "Age"]
    assert columns["Tenant"]["jsonPath"] == ".spec.tenant"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert (columns["Age"]["type"], columns["Age"]["jsonPath"]) == ("date", ".metadata.creationTimestamp")


def test_status_is_a_subresource_and_conditions_are_a_map_list_keyed_by_type() -> None:
    version = _version()
    assert version["subresources"] == {"status": {}}
    assert version["served"] is True
    assert version["storage"] is True
    conditions = _root()["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert "type" in conditions["items"]["required"]


# --------------------------------------------------------------------------------------------
# One definition: nothing the model checks escapes the CRD
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "root_model"), MODELS)
def test_no_model_checks_anything_outside_its_schema_constraints_and_rules(
    key: str, root_model: type
) -> None:
    """A field or model validator would be a Python-only rule the API server never applies; the
    only validator allowed is the one that evaluates the ``Rule`` objects emitted as CEL."""
    checked = 0
    for path, model, _ in _models(root_model, _root()["properties"][key], key):
        decorators = model.__pydantic_decorators__
        assert not decorators.field_validators, f"{path}: {list(decorators.field_validators)}"
        assert not decorators.validators, path
        assert not decorators.root_validators, path
        assert set(decorators.model_validators) <= {"_check_rules"}, path
        checked += 1
    assert checked >= (10 if key == "spec" else 4)


def test_status_endpoint_bound_admits_the_longest_endpoint_the_spec_admits() -> None:
    rw = spec_module.RisingWaveSpec(host=".".join(["h" * 63] * 3) + "." + "h" * 61, port=65535,
                                    database="d" * 63)  # fmt: skip
    assert len(rw.host) == 253
    endpoint = Endpoint(host=rw.host, port=rw.port, database=rw.database).key  # what status records
    status = ChargingAnalyticsStatus.model_validate({"endpoint": endpoint})
    assert status.endpoint == endpoint
    node = _root()["properties"]["status"]["properties"]["endpoint"]
    assert node["maxLength"] >= len(endpoint)


@pytest.mark.parametrize("price", [0.59, 0.0001, 999.9999, 1000, 0, 12.3456, 0.1, 0.7])
def test_four_decimal_prices_pass_the_rule(price: float) -> None:
    assert spec_module.has_four_decimals(price)


@pytest.mark.parametrize("price", [0.12345, 0.00001, 999.99999, 1e-12, 0.1 + 0.2])
def test_prices_with_more_decimals_fail_the_rule(price: float) -> None:
    assert not spec_module.has_four_decimals(price)
