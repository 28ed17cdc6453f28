"""Turn manifest documents into validated models, or errors that name the field and the rule."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import constants as c
from .pipeline import reader_name
from .render import Credential, Credentials, referenced_secrets, referenced_tls
from .spec import ChargingAnalytics, SpecError, spec_error_path
from .tls import TlsMaterial, tls_keys


@dataclass(frozen=True)
class Issue:
    """One problem in one document: ``path`` is a dotted manifest path."""

    document: str  # "acme.yaml#3 (tenants/acme)"
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.document}: {self.path}: {self.message}"


class ManifestError(ValueError):
    def __init__(self, issues: list[Issue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def issues_from(error: ValidationError, document: str, prefix: str = "") -> list[Issue]:
    out: list[Issue] = []
    for err in error.errors():
        loc: tuple[int | str, ...] = tuple(err["loc"])
        path = spec_error_path(loc, prefix) if loc else prefix or "(document)"
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, SpecError):
            for violation in cause.violations:
                where = path
                if violation.field:
                    where = f"{path}.{violation.field}" if path != "(document)" else violation.field
                out.append(Issue(document, where, violation.message))
            continue
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field (not part of the ChargingAnalytics schema)"
        elif err["type"] == "missing":
            message = "required field is missing"
        out.append(Issue(document, path, message))
    return out


@dataclass
class Manifests:
    """What a multi-document YAML file held."""

    resources: list[ChargingAnalytics] = field(default_factory=list)
    #: Secrets by (namespace, name): data decoded to text. Never printed.
    secrets: dict[tuple[str | None, str], dict[str, str]] = field(default_factory=dict, repr=False)

    def credentials_for(
        self, resource: ChargingAnalytics, *, generated: bool = True
    ) -> tuple[Credentials, list[str]]:
        """Credentials from the Secrets in the same file, and the references it could not find
        (with ``generated=False``, not the Secrets the operator itself writes)."""
        found: dict[str, Credential] = {}
        missing: list[str] = []
        ns = resource.metadata.namespace
        for role, ref in referenced_secrets(resource.spec).items():
            data = self.secrets.get((ns, ref.name)) or self.secrets.get((None, ref.name))
            if data is None or ref.username_key not in data or ref.password_key not in data:
                missing.append(f"Secret {ref.name} (keys {ref.username_key}, {ref.password_key})")
                continue
            found[role] = Credential(data[ref.username_key], data[ref.password_key])
        reader = None
        if resource.spec.read_only_user.enabled:
            secret = resource.spec.read_only_user.secret(resource.metadata.name)
            data = self.secrets.get((ns, secret)) or self.secrets.get((None, secret)) or {}
            if data.get("password"):
                reader = Credential(reader_name(resource.spec.tenant), data["password"])
            elif generated:
                missing.append(f"Secret {secret} (key password) for the read-only user")
        tls: dict[str, TlsMaterial] = {}
        for role, tls_ref in referenced_tls(resource.spec).items():
            data = self.secrets.get((ns, tls_ref.name)) or self.secrets.get((None, tls_ref.name)) or {}
            keys = tls_keys(tls_ref)
            if any(key not in data for key in keys.values()):
                missing.append(f"Secret {tls_ref.name} (keys {', '.join(keys.values())})")
                continue
            tls[role] = TlsMaterial(**{part: data[key] for part, key in keys.items()})
        creds = Credentials(
            kafka=found.get("kafka"),
            alerts_db=found.get("alerts_db"),
            reader=reader,
            kafka_tls=tls.get("kafka_tls"),
            alerts_db_tls=tls.get("alerts_db_tls"),
        )
        return creds, missing


def secret_data(doc: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys as text (``stringData`` wins over ``data``, as the API server merges them)."""
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (doc.get("stringData") or {}).items()})
    return data


def parse_documents(docs: Iterable[Any], source: str = "<input>") -> Manifests:
    """Validate every ChargingAnalytics document; collect Secrets; raise with *all* issues."""
    result = Manifests()
    issues: list[Issue] = []
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        label = f"{source}#{index}"
        if not isinstance(doc, dict):
            issues.append(Issue(label, "(document)", "is not a mapping"))
            continue
        kind = doc.get("kind")
        raw_meta = doc.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        name = f"{meta.get('namespace') or '-'}/{meta.get('name') or '?'}"
        if kind == "Secret" and doc.get("apiVersion") == "v1":
            result.secrets[(meta.get("namespace"), str(meta.get("name")))] = secret_data(doc)
            continue
        if kind != c.KIND:
            continue  # other kinds may share the file (Namespaces, ConfigMaps, ...)
        label = f"{label} ({name})"
        try:
            result.resources.append(ChargingAnalytics.model_validate(doc))
        except ValidationError as err:
            issues.extend(issues_from(err, label))
    if issues:
        raise ManifestError(issues)
    return result


def load_file(path: Path) -> Manifests:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as err:
        raise ManifestError([Issue(str(path), "(yaml)", str(err))]) from err
    return parse_documents(docs, path.name)
