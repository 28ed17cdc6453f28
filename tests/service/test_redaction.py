"""No credential reaches any output, whatever the error path (hypothesis over hostile credentials).

Error paths, each with real components:

* ``rw_sink`` / ``rw_source``: RisingWave (the double) rejects the JDBC sink / the Kafka source with
  a message that echoes the credentials the statement carried, in every form a server might use
  (raw, SQL-quoted, ``E'...'``-escaped, JSON, Rust ``Debug``, Python ``repr``; the double's
  ``fail_next`` knob);
* ``postgres``: the real PostgreSQL refuses the alert database's hostile user (its message names
  the user);
* ``kafka``: the real broker (PLAINTEXT) cannot complete the SASL handshake with hostile
  credentials;
* ``kubernetes``: the real apiserver refuses to write the read-only user's Secret (the resource
  owns it and it is immutable), with a hostile generated password.

Outputs: the status the operator wrote (read back from the apiserver), the Events it posts, every
log record (DEBUG and up, all loggers), the plan (Plan mode and Apply mode), and the CLI's output
(``render``, ``plan``, ``apply``) for the same manifests.

A leak is a credential value found in an output in any of the forms checked here (defined here,
independently of the operator's own scrubbing). Set ``CHA_LEAK_REPORT=path.json`` to write the
count per (path, output).
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charging_analytics import cli
from charging_analytics import constants as c
from charging_analytics.operator import credentials as credentials_module
from charging_analytics.operator.kube import KubeClient
from charging_analytics.operator.service import Resource, Service
from charging_analytics.operator.settings import OperatorSettings
from charging_analytics.status import published
from tests.service.harness import Harness

PATHS = ("rw_sink", "rw_source", "postgres", "kafka", "kubernetes")
OUTPUTS = ("status", "events", "logs", "plans", "cli")

#: The Stalled reason each path must produce in Apply mode.
EXPECTED_REASON = {
    "rw_sink": "ApplyFailed",
    "rw_source": "ApplyFailed",
    "postgres": "AlertsDatabaseUnavailable",
    "kafka": "KafkaAuthenticationFailed",  # the SASL handshake the PLAINTEXT broker refuses
    "kubernetes": "SecretUnwritable",
}

_LEAKS: dict[str, dict[str, int]] = {p: dict.fromkeys(OUTPUTS, 0) for p in PATHS}

#: Characters that break naive quoting or redaction, and a few that break encodings.
_HOSTILE_CHARS = [*"\\'\"\n\t$;-é☃\u2028", "$$", "\\'", "''", "\\n", "%", "+", " "]
hostile = st.builds(
    lambda core, tag: f"{tag}{core}",
    st.lists(st.sampled_from(_HOSTILE_CHARS), min_size=2, max_size=8).map("".join),
    st.from_regex(r"[A-Za-z0-9]{6}", fullmatch=True),
)
FIXED = [
    ("us\\er'x", "pa\\ss'w\"o\nrd$$"),
    ("ü$$s'er", "p\\'w\\\\n\u2028é☃"),
]


def forms(value: str) -> set[str]:
    """The forms a leaked value could take in an output (independent of the operator's code)."""
    out = {
        value,
        value.replace("'", "''"),
        value.replace("\\", "\\\\").replace("'", "\\'"),
        value.replace("\\", "\\\\").replace("'", "''"),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        base64.b64encode(value.encode()).decode(),
    }
    return {f for f in out if len(f) >= 4}


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _strings(v)
    elif obj is not None:
        yield str(obj)


def _count(texts: list[str], secrets: list[str]) -> int:
    return sum(1 for s in secrets if any(f in t for t in texts for f in forms(s)))


def _echo(user: str, password: str) -> str:
    """A server message echoing both credentials in many forms."""
    e_user = user.replace("\\", "\\\\").replace("'", "''")
    e_pw = password.replace("\\", "\\\\").replace("'", "''")
    return (
        f"sql parser error: expected literal string, found: E'{e_pw}'\n"
        f"LINE 1: ... user = '{user}', password = '{password}' ...\n"
        "        ^\n"
        f"connector error: user {json.dumps(user)} ({user!r}, E'{e_user}') password {password!r} "
        f"rejected: {password}"
    )


def _settings(path: str) -> OperatorSettings:
    return OperatorSettings(
        check_kafka=path == "kafka",
        manage_postgres_table=path == "postgres",
        secret_store="inline",
        metrics_port=0,
        kafka_timeout_seconds=3,
        backoff_base_seconds=1,
        backoff_max_seconds=2,
        catalog_cache_seconds=0,
    )


def _body(harness: Harness, path: str, name: str) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if path in ("rw_source", "kafka"):
        overrides["kafka"] = {
            "security": {
                "protocol": "SASL_PLAINTEXT",
                "saslMechanism": "PLAIN",
                "credentialsSecretRef": {"name": f"{name}-kafka"},
            }
        }
    if path == "kubernetes":
        overrides["readOnlyUser"] = {"enabled": True}
    return harness.tenant(name, postgres_sink=path in ("rw_sink", "postgres"), **overrides)


def _manifests(harness: Harness, body: dict[str, Any], secrets: dict[str, dict[str, str]]) -> Path:
    docs = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": n, "namespace": harness.ns},
            "stringData": d,
        }
        for n, d in secrets.items()
    ]
    path = Path(f"/tmp/cha-leak-{uuid.uuid4().hex}.yaml")
    path.write_text(yaml.safe_dump_all([*docs, body], allow_unicode=True), encoding="utf-8")
    return path


def _cli(args: list[str]) -> str:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            cli.main(args)
        except SystemExit:
            pass
        except Exception as exc:  # a traceback is an output too
            err.write(f"{type(exc).__name__}: {exc}")
    return out.getvalue() + err.getvalue()


def _run_path(
    harness: Harness, path: str, user: str, password: str, caplog: pytest.LogCaptureFixture
) -> dict[str, int]:
    name = f"leak-{path.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
    body = _body(harness, path, name)
    secrets: dict[str, dict[str, str]] = {}
    if path in ("rw_sink", "postgres"):
        secrets[f"{name}-alerts-db"] = {"username": user, "password": password}
    if path in ("rw_source", "kafka"):
        secrets[f"{name}-kafka"] = {"username": user, "password": password}
    for secret, data in secrets.items():
        harness.secret(secret, data)
    double = harness.rw.require_double("failure injection")
    if path == "rw_sink":
        double.fail_next(r"CREATE SINK .*alerts_to_postgres", _echo(user, password))
    if path == "rw_source":
        double.fail_next(r"CREATE SOURCE", _echo(user, password))

    texts: dict[str, list[str]] = {o: [] for o in OUTPUTS}
    reasons: list[str] = []
    caplog.clear()
    with caplog.at_level(logging.DEBUG):

        async def reconcile(spec_body: dict[str, Any]) -> None:
            service = Service(_settings(path), KubeClient())
            try:
                created = harness.create(spec_body)
                if path == "kubernetes" and spec_body["spec"].get("mode", "Apply") == "Apply":
                    _immutable_reader_secret(harness, created)
                outcome = await service.reconcile(Resource.from_body(created), origin="create")
                reasons.extend(cond.reason for cond in outcome.conditions if cond.type == "Stalled")
                texts["events"] += [m for _, _, m in outcome.events] + [r for _, r, _ in outcome.events]
                texts["plans"] += list(_strings(published(outcome.status).get("plan")))
                status = (harness.get(spec_body["metadata"]["name"]) or {}).get("status")
                texts["status"] += list(_strings(status))
                texts["plans"] += list(_strings((status or {}).get("plan")))
            finally:
                await service.close()

        asyncio.run(reconcile(body))
        planned = json.loads(json.dumps(body))
        planned["metadata"]["name"] = f"{name}-plan"
        planned["spec"]["tenant"] = body["spec"]["tenant"] + "_p"
        planned["spec"]["mode"] = "Plan"
        if path == "rw_sink":
            double.fail_next(r"CREATE SINK .*alerts_to_postgres", _echo(user, password))
        asyncio.run(reconcile(planned))

        manifest = _manifests(harness, body, secrets)
        try:
            dsn = harness.rw.dsn
            texts["cli"].append(_cli(["render", "-f", str(manifest)]))
            texts["cli"].append(_cli(["plan", "-f", str(manifest), "--dsn", dsn]))
            if path in ("rw_sink", "rw_source"):
                double.fail_next(
                    r"CREATE SINK .*alerts_to_postgres" if path == "rw_sink" else r"CREATE SOURCE",
                    _echo(user, password),
                )
                texts["cli"].append(_cli(["apply", "-f", str(manifest), "--dsn", dsn]))
        finally:
            manifest.unlink()
    for record in caplog.records:
        texts["logs"].append(record.getMessage())
        if record.exc_info:
            texts["logs"].append(logging.Formatter().formatException(record.exc_info))
        if record.exc_text:
            texts["logs"].append(record.exc_text)
    # the error path was taken (a test that never failed anything would prove nothing)
    assert reasons[0] == EXPECTED_REASON[path], (path, reasons)
    return {o: _count(texts[o], [user, password]) for o in OUTPUTS}


@pytest.fixture(autouse=True)
def _hostile_reader_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator generates the read-only user's password; make that value hostile too."""
    monkeypatch.setattr(credentials_module.secrets, "token_urlsafe", lambda n: _READER[0])


_READER = ["r\\o'pw\"$$\n" + uuid.uuid4().hex[:6]]


def _record(path: str, counts: dict[str, int]) -> None:
    for output, n in counts.items():
        _LEAKS[path][output] += n
    report = os.environ.get("CHA_LEAK_REPORT")
    if report:
        Path(report).write_text(json.dumps(_LEAKS, indent=2), encoding="utf-8")


@pytest.mark.parametrize("path", PATHS)
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(user=hostile, password=hostile)
def test_no_credential_reaches_any_output_on_any_error_path(
    harness: Harness, caplog: pytest.LogCaptureFixture, path: str, user: str, password: str
) -> None:
    if path == "kubernetes":
        _READER[0] = password  # the generated password is the credential on this path
    counts = _run_path(harness, path, user, password, caplog)
    _record(path, counts)
    assert counts == dict.fromkeys(OUTPUTS, 0), (path, counts)


def _immutable_reader_secret(harness: Harness, owner: dict[str, Any]) -> None:
    """The resource's own read-only-user Secret, stale and immutable: the operator must rewrite
    it (it owns it) and the apiserver refuses the write."""
    name = owner["metadata"]["name"]
    ref = {"apiVersion": c.API_VERSION, "kind": c.KIND, "name": name, "uid": owner["metadata"]["uid"]}
    harness.rest.post(
        f"/api/v1/namespaces/{harness.ns}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-readonly", "namespace": harness.ns, "ownerReferences": [ref]},
            "immutable": True,
            "stringData": {"username": "someone-else", "password": "x"},
        },
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("user", "password"), FIXED)
def test_known_hostile_credentials_reach_no_output(
    harness: Harness, caplog: pytest.LogCaptureFixture, path: str, user: str, password: str
) -> None:
    if path == "kubernetes":
        _READER[0] = password
    counts = _run_path(harness, path, user, password, caplog)
    _record(path, counts)
    assert counts == dict.fromkeys(OUTPUTS, 0), (path, counts)
