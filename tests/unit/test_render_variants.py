"""Everything render produces, over 21 spec variants x 2 secret stores x credentials present or
absent x 2 capability sets (168 renderings), against a golden digest per rendering, plus the
properties that tie the display and executable forms together.

The golden (``tests/golden/render-variants.json``) records, per rendering, a digest of every field
of every object: display and executable statements, update and grant statements, hash, credential
digest, ledger value, unresolved roles and sensitive values. A refactor of the renderer keeps it
byte-identical; ``UPDATE_GOLDEN=1`` rewrites it after an intended change (review the goldens in
``tests/golden/*.sql`` too).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from psycopg import sql

from charging_analytics import render as render_module
from charging_analytics.render import (
    REDACTED,
    Credential,
    Credentials,
    CredentialSlot,
    DesiredObject,
    Digester,
    RenderOptions,
    as_text,
    fill,
    render,
)
from charging_analytics.rw.capabilities import BASELINE, NEWEST_KNOWN, capabilities_for
from charging_analytics.rw.literal import rw_literal
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.tls import TlsMaterial

#: One digest cache for this module's renderings, as the service keeps one for all of its own.
DIGESTER = Digester()
ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "render-variants.json"


def _example(name: str) -> dict[str, Any]:
    docs = yaml.safe_load_all((ROOT / "examples" / name).read_text(encoding="utf-8"))
    doc = next(d for d in docs if isinstance(d, dict) and d.get("kind") == "ChargingAnalytics")
    spec: dict[str, Any] = doc["spec"]
    return spec


Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node.pop(last, None)

    return edit


_TLS_ALL = {"name": "kafka-tls", "caKey": "ca.crt", "certificateKey": "tls.crt", "privateKeyKey": "tls.key"}
_PLAINTEXT = _set("kafka.security", {"protocol": "PLAINTEXT"})

#: variant -> (example, edits)
VARIANTS: dict[str, tuple[str, tuple[Edit, ...]]] = {
    "acme": ("acme.yaml", ()),
    "voltbay": ("voltbay.yaml", ()),
    "plaintext": ("acme.yaml", (_PLAINTEXT,)),
    "sasl-tls-ca": (
        "acme.yaml",
        (_set("kafka.security.protocol", "SASL_SSL"),
         _set("kafka.security.tlsSecretRef", {"name": "kafka-tls", "caKey": "ca.crt"})),
    ),
    "sasl-tls-all": (
        "acme.yaml",
        (_set("kafka.security.protocol", "SASL_SSL"), _set("kafka.security.tlsSecretRef", _TLS_ALL)),
    ),
    "ssl-client-cert": (
        "acme.yaml",
        (_set("kafka.security", {"protocol": "SSL", "tlsSecretRef": {
            "name": "kafka-tls", "certificateKey": "tls.crt", "privateKeyKey": "tls.key"}}),),
    ),
    "no-kafka-sink": ("acme.yaml", (_drop("alerts.sinks.kafka"),)),
    "no-postgres-sink": ("acme.yaml", (_drop("alerts.sinks.postgres"),)),
    "no-sinks": ("acme.yaml", (_set("alerts.sinks", {}),)),
    "postgres-node-files": (
        "acme.yaml",
        (_set("alerts.sinks.postgres.sslmode", "verify-full"),
         _set("alerts.sinks.postgres.sinkTlsFiles", {
             "caPath": "/etc/tls/ca.crt", "certificatePath": "/etc/tls/tls.crt",
             "privateKeyPath": "/etc/tls/tls.pk8"})),
    ),
    "postgres-tls-ref": (
        "acme.yaml",
        (_set("alerts.sinks.postgres.sslmode", "require"),
         _set("alerts.sinks.postgres.tlsSecretRef", {"name": "pg-tls", "caKey": "ca.crt"}),
         _set("alerts.sinks.postgres.sinkTlsFiles", {"caPath": "/etc/tls/ca.crt"})),
    ),
    "no-faults": ("acme.yaml", (_set("alerts.connectorFaults", False),)),
    "no-availability-alert": ("acme.yaml", (_drop("alerts.availabilityBelowPercent"),)),
    "no-reader": ("acme.yaml", (_set("readOnlyUser", {"enabled": False}),)),
    "latest-no-group": (
        "acme.yaml", (_set("kafka.startupMode", "latest"), _drop("kafka.consumerGroupPrefix")),
    ),
    "tariffs": (
        "acme.yaml",
        (_set("analytics.tariffs", {"currency": "USD", "pricePerKwh": {
            "CCS": 0.1234, "CHAdeMO": 0, "Type2": 12.5}}),),
    ),
    "durations": (
        "acme.yaml",
        (_set("analytics.stateRetention", "48h"), _set("analytics.availabilityWindow", "30m"),
         _set("analytics.availabilitySlide", "5m"), _set("analytics.revenueWindow", "15m")),
    ),
    "up-statuses": ("acme.yaml", (_set("analytics.upStatuses", ["Available", "Charging", "Reserved"]),)),
    "alert-minutes": (
        "acme.yaml",
        (_set("alerts.stalledSessionMinutes", 45), _set("alerts.connectorDownMinutes", 120),
         _set("alerts.availabilityBelowPercent", 62.5)),
    ),
    "minimal": (
        "voltbay.yaml",
        (_PLAINTEXT, _set("alerts.sinks", {}), _set("alerts.connectorFaults", False),
         _set("readOnlyUser", {"enabled": False})),
    ),
    "everything-tls": (
        "acme.yaml",
        (_set("tenant", "fleet_02"), _set("kafka.security.protocol", "SASL_SSL"),
         _set("kafka.security.tlsSecretRef", _TLS_ALL), _set("alerts.sinks.postgres.sslmode", "verify-ca"),
         _set("alerts.sinks.postgres.tlsSecretRef", {"name": "pg-tls", "caKey": "ca.crt"}),
         _set("alerts.sinks.postgres.sinkTlsFiles", {"caPath": "/etc/tls/ca.crt"})),
    ),
}  # fmt: skip

#: Values that exercise quoting (``'``), backslashes (psycopg's ``E''`` form) and unicode.
CREDENTIALS = Credentials(
    kafka=Credential("acme-pipeline", "it's a p\\ss"),
    alerts_db=Credential("alerts_writer", "pg-pässword"),
    reader=Credential("reader-login", "ro'\\pw"),
    kafka_tls=TlsMaterial(
        ca="-----CA-----\nAAA\n", certificate="-----CERT-----\nBBB\n", private_key="-----KEY-----\nCCC\n"
    ),
    alerts_db_tls=TlsMaterial(ca="-----PG CA-----\nDDD\n"),
)  # fmt: skip
CAPABILITIES = {"floor": BASELINE, "newest": capabilities_for(NEWEST_KNOWN)}
STORES = ("inline", "risingwave")
CASES = [
    (variant, store, with_credentials, caps)
    for variant in VARIANTS
    for store in STORES
    for with_credentials in (True, False)
    for caps in CAPABILITIES
]


def _spec(variant: str) -> ChargingAnalyticsSpec:
    example, edits = VARIANTS[variant]
    doc = copy.deepcopy(_example(example))
    for edit in edits:
        edit(doc)
    return ChargingAnalyticsSpec.model_validate(doc)


def _render(case: tuple[str, str, bool, str]) -> list[DesiredObject]:
    variant, store, with_credentials, caps = case
    options = RenderOptions(
        secret_store=store,  # type: ignore[arg-type]
        credentials=CREDENTIALS if with_credentials else None,
        capabilities=CAPABILITIES[caps],
        digester=DIGESTER,
    )
    return render(_spec(variant), options)


def _case_id(case: tuple[str, str, bool, str]) -> str:
    variant, store, with_credentials, caps = case
    return f"{variant}/{store}/{'credentials' if with_credentials else 'no-credentials'}/{caps}"


def _text(composed: Any) -> str | None:
    return None if composed is None else as_text(composed)


def _record(o: DesiredObject) -> dict[str, Any]:
    return {
        "kind": o.kind, "schema": o.schema, "name": o.name, "sql": o.sql, "depends_on": list(o.depends_on),
        "hash": o.hash, "credential_digest": o.credential_digest, "ledger_value": o.ledger_value,
        "statement": as_text(o.statement), "display": as_text(o.display),
        "update_statement": _text(o.update_statement), "update_display": _text(o.update_display),
        "grants": [as_text(g) for g in o.grants], "unresolved": list(o.unresolved),
        "sensitive": list(o.sensitive), "target_reset": _text(o.target_reset),
    }  # fmt: skip


def _digest(objects: list[DesiredObject]) -> str:
    payload = json.dumps([_record(o) for o in objects], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def test_there_are_168_renderings_over_21_variants() -> None:
    assert len(VARIANTS) == 21
    assert len(CASES) == 168
    assert len({_case_id(c) for c in CASES}) == 168


def test_every_rendering_matches_its_golden_digest() -> None:
    digests = {_case_id(case): _digest(_render(case)) for case in CASES}
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = sorted(k for k in digests if golden.get(k) != digests[k])
    assert set(golden) == set(digests)
    assert changed == [], f"{len(changed)} renderings changed, e.g. {changed[:5]}"


def _redacted(executable: str, sensitive: tuple[str, ...]) -> str:
    for value in sorted(sensitive, key=len, reverse=True):
        executable = executable.replace(rw_literal(value).as_string(), rw_literal(REDACTED).as_string())
    return executable


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_display_is_the_executable_form_with_every_credential_redacted(
    case: tuple[str, str, bool, str],
) -> None:
    values = set(_values(CREDENTIALS))
    for o in _render(case):
        assert o.sql == as_text(o.display)
        executable = as_text(o.statement)
        assert _redacted(executable, o.sensitive) == o.sql, o.name
        assert (o.update_statement is None) == (o.update_display is None), o.name
        if o.update_statement is not None and o.update_display is not None:
            shown = as_text(o.update_display)
            assert _redacted(as_text(o.update_statement), o.sensitive) == shown, o.name
            assert not any(v in shown for v in values), o.name
            executable += as_text(o.update_statement)
        assert not any(v in o.sql for v in values), o.name
        assert set(o.sensitive) <= values
        assert all(rw_literal(v).as_string() in executable for v in o.sensitive), o.name
        assert bool(o.credential_digest) == bool(o.sensitive), o.name
        if case[2]:
            assert o.unresolved == (), o.name
        else:
            assert o.sensitive == (), o.name


def _values(creds: Credentials) -> list[str]:
    out: list[str] = []
    for holder in (creds.kafka, creds.alerts_db, creds.reader):
        assert holder is not None
        out += [holder.username, holder.password]
    for material in (creds.kafka_tls, creds.alerts_db_tls):
        assert material is not None
        out += list(material.values())
    # user names are not secret in every role, but none of these may reach a display form
    return out


def test_an_unfilled_credential_slot_cannot_become_text() -> None:
    slot = CredentialSlot("kafka", "password")
    statement = sql.SQL("ALTER SECRET s AS {}").format(slot)
    with pytest.raises(TypeError, match="must be filled"):
        as_text(statement)
    assert as_text(fill(statement, lambda role, part: rw_literal(f"{role}/{part}"))) == (
        "ALTER SECRET s AS 'kafka/password'"
    )


def test_the_digest_cache_recognises_a_credential_without_holding_it() -> None:
    digester = render_module.Digester()
    salt = render_module.digest_salt("acme", "kafka", "password")
    digest = digester.digest("it's a p\\ss", salt)
    assert digester.known(salt, "it's a p\\ss") == digest
    assert digester.known(salt, "rotated") is None
    assert digester.digest("rotated", salt) != digest
    fingerprints = [fingerprint for fingerprint, _ in digester._digests.values()]
    assert len(fingerprints) == 1
    # another digester (a new process) computes the same digest under a fingerprint of its own key
    other = render_module.Digester()
    assert other.digest("rotated", salt) == digester.digest("rotated", salt)
    assert [f for f, _ in other._digests.values()] != fingerprints
    assert all(isinstance(f, bytes) and b"rotated" not in f and b"p\\ss" not in f for f in fingerprints)
