"""Helpers for the chart, Argo CD and GitOps-example tests: helm, a minimal kustomize, dry-runs.

Everything here is deliberately small and refuses input it does not understand, so a test
that passes cannot have silently skipped part of a manifest.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from charging_analytics import constants as c
from testbed.polling import Poll, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "charging-analytics-operator"
CRDS_DIR = REPO_ROOT / "crds"
GITOPS_DIR = REPO_ROOT / "examples" / "gitops"
VERSIONS_FILE = REPO_ROOT / "scripts" / "versions.env"

# --------------------------------------------------------------------------------------------
# helm
# --------------------------------------------------------------------------------------------


def _pinned(key: str) -> str:
    for line in VERSIONS_FILE.read_text(encoding="utf-8").splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name == key:
            return value.strip().strip("'\"")
    raise KeyError(f"{key} is not pinned in {VERSIONS_FILE}")


def helm_binary() -> Path:
    """$HELM, else the provisioned helm of the pinned version; a missing binary fails the test."""
    env = os.environ.get("HELM")
    if env:
        path = Path(env)
    else:
        tools = os.environ.get("CHARGING_TOOLS_DIR") or str(
            Path.home() / ".cache" / "charging-analytics" / "tools"
        )
        path = Path(tools) / f"helm-{_pinned('HELM_VERSION')}" / "helm"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"helm not found at {path}: run `scripts/provision.sh helm` or point $HELM at a helm v3 binary",
            pytrace=False,
        )
    return path


def kube_version() -> str:
    """The Kubernetes version the test bed runs, for helm's capabilities (``1.36.3``)."""
    return _pinned("KUBERNETES_VERSION").lstrip("v")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "HELM_CACHE_HOME": "/tmp/helm-cache", "HELM_CONFIG_HOME": "/tmp/helm-config"},
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc


def values_args(values: dict[str, Any] | None, tmp_path: Path) -> list[str]:
    if not values:
        return []
    path = tmp_path / f"values-{len(list(tmp_path.glob('values-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return ["-f", str(path)]


def render_chart(
    tmp_path: Path,
    values: dict[str, Any] | None = None,
    *,
    release: str = "cha",
    namespace: str = "cha-system",
    api_versions: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """``helm template`` → the rendered documents (templates only, not crds/)."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace, "--kube-version", kube_version()]
    for api in api_versions:
        args += ["--api-versions", api]
    out = helm(*args, *values_args(values, tmp_path), *extra).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


# --------------------------------------------------------------------------------------------
# A minimal kustomize: resources, namespace, namePrefix/nameSuffix, JSON6902 patches
# --------------------------------------------------------------------------------------------

_KUSTOMIZE_KEYS = {"apiVersion", "kind", "resources", "namespace", "namePrefix", "nameSuffix", "patches"}


class KustomizeError(ValueError):
    """The kustomization uses something this minimal renderer does not implement."""


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KustomizeError(f"path {path!r} does not exist")
    return node


def apply_json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 add/replace/remove/test on a copy of ``doc`` (move/copy are not used here)."""
    out = copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        parent = _walk(out, parts[:-1], path)
        last = parts[-1]
        if not isinstance(parent, dict | list):
            raise KustomizeError(f"parent of {path!r} is not an object or array")
        if (
            isinstance(parent, list)
            and last != "-"
            and not (last.isdigit() and int(last) <= len(parent) - (0 if kind == "add" else 1))
        ):
            raise KustomizeError(f"array index {last!r} out of range at {path!r}")
        if kind == "test":
            if _walk(out, parts, path) != op["value"]:
                raise KustomizeError(f"test failed at {path!r}")
        elif kind in ("add", "replace"):
            value = copy.deepcopy(op["value"])
            if isinstance(parent, list):
                if last == "-" and kind == "add":
                    parent.append(value)
                elif kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if kind == "replace" and last not in parent:
                    raise KustomizeError(f"replace of missing path {path!r}")
                parent[last] = value
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            elif last in parent:
                del parent[last]
            else:
                raise KustomizeError(f"remove of missing path {path!r}")
        else:
            raise KustomizeError(f"unsupported JSON patch op {kind!r}")
    return out


def _matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    unsupported = set(target) - {"group", "version", "kind", "name", "namespace"}
    if unsupported:
        raise KustomizeError(f"unsupported patch target selectors {sorted(unsupported)}")
    group, _, version = doc["apiVersion"].rpartition("/")
    actual = {
        "group": group,
        "version": version,
        "kind": doc["kind"],
        "name": doc["metadata"]["name"],
        "namespace": doc["metadata"].get("namespace"),
    }
    return all(actual[key] == value for key, value in target.items())


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """Render ``directory/kustomization.yaml`` the way ``kustomize build`` would, for our subset.

    Order follows kustomize: load resources (recursively), apply patches, then the namespace
    and name prefix/suffix transformers.
    """
    kfile = directory / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8"))
    unknown = set(spec) - _KUSTOMIZE_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: unsupported fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs += kustomize_build(path)
        else:
            docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    for patch in spec.get("patches", []):
        if set(patch) - {"target", "patch"} or "target" not in patch or "patch" not in patch:
            raise KustomizeError(f"{kfile}: only inline JSON6902 patches with a target are supported")
        ops = yaml.safe_load(patch["patch"])
        if not isinstance(ops, list):
            raise KustomizeError(f"{kfile}: a patch must be a JSON6902 operation list")
        hits = [i for i, d in enumerate(docs) if _matches(d, patch["target"])]
        if not hits:
            raise KustomizeError(f"{kfile}: patch target {patch['target']} matches no resource")
        for i in hits:
            docs[i] = apply_json6902(docs[i], ops)
    for doc in docs:
        meta = doc["metadata"]
        if "namespace" in spec:
            meta["namespace"] = spec["namespace"]
        meta["name"] = f"{spec.get('namePrefix', '')}{meta['name']}{spec.get('nameSuffix', '')}"
    return docs


# --------------------------------------------------------------------------------------------
# Argo CD ApplicationSet templates (goTemplate: true, field references only)
# --------------------------------------------------------------------------------------------

_GO_FIELD = re.compile(r"\{\{\s*(\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")


def go_template(text: str, params: dict[str, Any]) -> str:
    """Substitute ``{{ .a.b }}`` references; anything else in ``{{ }}`` is an error.

    Mirrors ``goTemplateOptions: ["missingkey=error"]``: a reference to an absent key fails.
    """

    def lookup(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1)[1:].split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"map has no entry for key {part!r} in {match.group(0)}")
            node = node[part]
        return str(node)

    rendered = _GO_FIELD.sub(lookup, text)
    if "{{" in rendered:
        raise ValueError(f"unsupported template action left in {rendered!r}")
    return rendered


def render_application(template: Any, params: dict[str, Any]) -> Any:
    """Render an ApplicationSet ``spec.template`` (every string, at any depth) for one parameter set."""
    if isinstance(template, dict):
        return {key: render_application(value, params) for key, value in template.items()}
    if isinstance(template, list):
        return [render_application(value, params) for value in template]
    if isinstance(template, str):
        return go_template(template, params)
    return template


def git_files_params(path: Path) -> dict[str, Any]:
    """Parameters Argo CD's git files generator derives from one file (goTemplate mode)."""
    params: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    rel = path.relative_to(REPO_ROOT)
    params["path"] = {
        "path": str(rel.parent),
        "basename": rel.parent.name,
        "filename": rel.name,
        "segments": list(rel.parent.parts),
    }
    return params


# --------------------------------------------------------------------------------------------
# Server-side dry-run against the test bed's kube-apiserver
# --------------------------------------------------------------------------------------------

FIELD_MANAGER = "chart-tests"


def dynamic_client(kube_api: Any) -> Any:
    from kubernetes.dynamic import DynamicClient

    return DynamicClient(kube_api)


def server_apply(
    dyn: Any, doc: dict[str, Any], namespace: str | None = None, *, dry_run: bool = True
) -> dict[str, Any]:
    """Server-side apply with strict field validation; by default ``dryRun=All`` (nothing persisted).

    A dry-run still runs everything a real request does: schema and CEL validation, defaulting,
    admission (Pod Security included), RBAC escalation checks.
    """
    resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    body = copy.deepcopy(doc)
    ns = None
    if resource.namespaced:
        ns = namespace or body["metadata"].get("namespace")
        body["metadata"]["namespace"] = ns
    kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
    result = dyn.server_side_apply(
        resource,
        body=body,
        name=body["metadata"]["name"],
        namespace=ns,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        query_params=[("fieldValidation", "Strict")],
        **kwargs,
    )
    return dict(result.to_dict())


def server_dry_run(dyn: Any, doc: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    return server_apply(dyn, doc, namespace, dry_run=True)


def ensure_crds(kube_api: Any, paths: Iterable[Path], timeout: float = 60.0) -> list[str]:
    """Create the CRDs in ``paths`` that the apiserver lacks; wait until they are Established.

    Returns the names this call created, so a fixture can remove exactly those again.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    api = client.ApiextensionsV1Api(kube_api)
    created: list[str] = []
    names: list[str] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            names.append(doc["metadata"]["name"])
            try:
                api.create_custom_resource_definition(body=doc)
                created.append(doc["metadata"]["name"])
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def established(name: str) -> bool:
        crd = api.read_custom_resource_definition(name)
        conditions = crd.status.conditions or [] if crd.status else []
        return any(cond.type == "Established" and cond.status == "True" for cond in conditions)

    wait_for(lambda: all(established(n) for n in names), timeout, f"CRDs {names} Established", poll=Poll(0.2))
    return created


def delete_crds(kube_api: Any, names: Iterable[str]) -> None:
    from kubernetes import client

    api = client.ApiextensionsV1Api(kube_api)
    for name in names:
        api.delete_custom_resource_definition(name)


# --------------------------------------------------------------------------------------------
# argocd-cm patch carrying health.lua
# --------------------------------------------------------------------------------------------

ARGOCD_DIR = CHART_DIR / "argocd"
#: Argo CD's key of a resource's health script: ``resource.customizations.health.<group>_<kind>``.
HEALTH_KEY = f"resource.customizations.health.{c.GROUP}_{c.KIND}"


def argocd_cm_patch_text() -> str:
    """``argocd/argocd-cm-patch.yaml`` as it must read: health.lua embedded verbatim."""
    lua = (ARGOCD_DIR / "health.lua").read_text(encoding="utf-8")
    body = "".join(f"    {line}\n" if line.strip() else "\n" for line in lua.splitlines())
    return (
        "# Merge this into Argo CD's argocd-cm ConfigMap, for example as a kustomize patch of an\n"
        "# Argo CD install, or with\n"
        "#   kubectl -n argocd patch configmap argocd-cm --patch-file argocd-cm-patch.yaml\n"
        "# The script below is health.lua verbatim; regenerate with\n"
        "# `python3 tests/chart/chart_support.py write-argocd-cm-patch` (a test fails when they differ).\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: argocd-cm\n"
        "  namespace: argocd\n"
        "data:\n"
        f"  {HEALTH_KEY}: |\n"
        f"{body}"
    )


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["write-argocd-cm-patch"]:
        raise SystemExit("usage: chart_support.py write-argocd-cm-patch")
    (ARGOCD_DIR / "argocd-cm-patch.yaml").write_text(argocd_cm_patch_text(), encoding="utf-8")
