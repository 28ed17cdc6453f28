"""Turn manifest documents into validated models, or errors that name the field and the rule."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import constants as c
from .render import Credentials
from .secret_source import CredentialReader, ManifestSecrets, stored_reader
from .spec import ChargingAnalytics, SpecError, spec_error_path


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
    #: The file's Secrets. Never printed.
    secrets: ManifestSecrets = field(default_factory=ManifestSecrets, repr=False)

    async def resolve(self, resource: ChargingAnalytics, *, generated: bool = True) -> FileCredentials:
        """Credentials from the Secrets in the files, by the operator's rules (with
        ``generated=False``, the Secret the operator itself writes is not looked for)."""
        ns = resource.metadata.effective_namespace
        creds, problems = await CredentialReader(self.secrets).available(ns, resource.spec)
        absent = [f"Secret {p.secret} (keys {', '.join(p.keys)})" for p in problems if p.absent]
        unusable = [p.message for p in problems if not p.absent]
        reader_spec = resource.spec.read_only_user
        if reader_spec.enabled:
            secret = reader_spec.secret(resource.metadata.name)
            reader = stored_reader(await self.secrets.read_secret(ns, secret), resource.spec.tenant)
            if reader is not None:
                creds = replace(creds, reader=reader)
            elif generated:
                absent.append(f"Secret {secret} (keys username, password) for the read-only user")
        return FileCredentials(creds, absent, unusable)

    async def credentials_for(
        self, resource: ChargingAnalytics, *, generated: bool = True
    ) -> tuple[Credentials, list[str]]:
        """:meth:`resolve`'s credentials, and every Secret it could not use."""
        found = await self.resolve(resource, generated=generated)
        return found.credentials, [*found.absent, *found.unusable]


@dataclass(frozen=True)
class FileCredentials:
    credentials: Credentials
    #: the Secrets (and the keys they would need) that the files lack
    absent: list[str]
    #: why a Secret the files hold cannot be used (the operator's message for it)
    unusable: list[str]


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
            result.secrets.add(doc)
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
