"""``charging-analytics render | validate | crds`` on manifests, without RisingWave or Kubernetes."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from charging_analytics import cli
from charging_analytics.crd import CRD_FILENAME
from charging_analytics.render import RenderOptions, render
from charging_analytics.validation import parse_documents
from testbed.sqllint import created_name, parse_one_statement

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

HEADER = re.compile(r"^-- tenant (\S+) \((\S+)\)$", re.MULTILINE)
OBJECT = re.compile(r"^-- (\w+) (\S+) \((sha256:[0-9a-f]{24})\)$")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def blocks(out: str) -> dict[str, list[tuple[str, str, str]]]:
    """Rendered output -> tenant -> [(kind, qualified name, statement without its ';')]."""
    result: dict[str, list[tuple[str, str, str]]] = {}
    parts = HEADER.split(out)
    assert parts[0] == "", f"output before the first tenant header: {parts[0]!r}"
    for tenant, _owner, body in zip(parts[1::3], parts[2::3], parts[3::3], strict=True):
        statements = []
        for chunk in [c for c in body.strip().split("\n\n-- ") if c]:
            head, _, text = chunk.removeprefix("-- ").partition("\n")
            m = OBJECT.match(f"-- {head}")
            assert m, f"not an object header: {head!r}"
            assert text.endswith(";"), f"{m.group(2)} does not end with ';'"
            statements.append((m.group(1), m.group(2), text[:-1]))
        result[tenant] = statements
    return result


# --------------------------------------------------------------------------------------------
# render
# --------------------------------------------------------------------------------------------


def test_render_prints_every_tenant_of_a_multi_document_file_in_apply_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    both = (
        (EXAMPLES / "acme.yaml").read_text(encoding="utf-8")
        + "\n---\n"
        + (EXAMPLES / "voltbay.yaml").read_text(encoding="utf-8")
    )
    path = write(tmp_path, "tenants.yaml", both)
    code, out, err = run(["render", "-f", str(path)], capsys)
    assert (code, err) == (0, "")
    rendered = blocks(out)
    assert list(rendered) == ["acme", "voltbay"]
    manifests = parse_documents(list(yaml.safe_load_all(both)))
    for resource in manifests.resources:
        creds, _ = asyncio.run(manifests.credentials_for(resource))
        expected = render(resource.spec, RenderOptions(credentials=creds))
        got = rendered[resource.spec.tenant]
        assert [(k, n) for k, n, _ in got] == [(o.kind, o.qualified) for o in expected]
        for (_, name, text), obj in zip(got, expected, strict=True):
            assert text == obj.sql
            stmt = parse_one_statement(text)
            assert created_name(stmt) == name


def test_render_output_splits_into_exactly_one_statement_per_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sqlglot import parse

    from testbed.sqllint import DIALECT

    code, out, _ = run(["render", "-f", str(EXAMPLES / "acme.yaml"), "--secret-store", "risingwave"], capsys)
    assert code == 0
    statements = [s for s in parse(out, read=DIALECT) if s is not None]
    manifests = parse_documents(
        list(yaml.safe_load_all((EXAMPLES / "acme.yaml").read_text(encoding="utf-8")))
    )
    (resource,) = manifests.resources
    objects = render(resource.spec, RenderOptions(secret_store="risingwave"))
    assert len(statements) == len(blocks(out)["acme"]) == len(objects)


def test_render_never_prints_the_credentials_from_the_secrets_in_the_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for store in ("inline", "risingwave"):
        code, out, _ = run(["render", "-f", str(EXAMPLES / "acme.yaml"), "--secret-store", store], capsys)
        assert code == 0
        for value in ("change-me-kafka", "change-me-postgres", "acme-pipeline", "alerts_writer"):
            assert value not in out


BAD_MANIFEST = """\
apiVersion: analytics.evcharging.io/v1alpha1
kind: ChargingAnalytics
metadata: {name: bad, namespace: tenants}
spec:
  tenant: bad
  kafka: {bootstrapServers: ["k:9092"], eventsTopic: "events; DROP"}
  analytics: {tariffs: {currency: EUR, pricePerKwh: {CCS: 1, CHAdeMO: 1, Type2: 1}}}
"""


def test_render_of_an_invalid_manifest_prints_nothing_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (EXAMPLES / "voltbay.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, "mixed.yaml", good + "\n---\n" + BAD_MANIFEST)
    code, out, err = run(["render", "-f", str(path)], capsys)
    assert code == 1
    assert out == ""
    assert "spec.kafka.eventsTopic" in err


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_validate_accepts_the_examples(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", "-f", str(EXAMPLES / example)], capsys)
    assert (code, err) == (0, "")
    tenant = example.removesuffix(".yaml")
    (line,) = out.splitlines()
    assert line.startswith(f"tenants/{tenant}: valid (tenant {tenant})")


def test_validate_notes_secrets_the_file_does_not_contain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = [
        d
        for d in yaml.safe_load_all((EXAMPLES / "acme.yaml").read_text(encoding="utf-8"))
        if d["kind"] != "Secret"
    ]
    path = write(tmp_path, "acme.yaml", yaml.safe_dump_all(docs))
    code, out, _ = run(["validate", "-f", str(path)], capsys)
    assert code == 0
    assert "Secrets not in this file: Secret acme-kafka-sasl (keys username, password)" in out
    assert "Secret acme-alerts-db" in out


def test_validate_names_a_secret_in_the_file_that_the_operator_could_not_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = list(yaml.safe_load_all((EXAMPLES / "acme.yaml").read_text(encoding="utf-8")))
    for doc in docs:
        if doc["kind"] == "Secret" and doc["metadata"]["name"] == "acme-kafka-sasl":
            doc["stringData"]["password"] = "change\0me"
    path = write(tmp_path, "acme.yaml", yaml.safe_dump_all(docs))
    code, out, _ = run(["validate", "-f", str(path)], capsys)
    assert code == 0
    assert (
        "unusable Secrets: spec.kafka.security.credentialsSecretRef: Secret tenants/acme-kafka-sasl "
        "key 'password' contains a NUL character"
    ) in out
    assert "Secrets not in this file" not in out
    assert "change" not in out


BASE_SPEC = """\
apiVersion: analytics.evcharging.io/v1alpha1
kind: ChargingAnalytics
metadata: {{name: t, namespace: ns}}
spec:
  tenant: t1
  kafka:
    bootstrapServers: ["k:9092"]
    eventsTopic: events
{kafka_extra}
  analytics:
    tariffs: {{currency: EUR, pricePerKwh: {{CCS: {price}, CHAdeMO: 1, Type2: 1}}}}
{analytics_extra}
{alerts}
"""

BAD: dict[str, tuple[dict[str, str], str, str]] = {
    # name: (template fields, path, message)
    "window not a multiple of the slide": (
        {"analytics_extra": "    availabilityWindow: 10m\n    availabilitySlide: 3m"},
        "spec.analytics.availabilityWindow",
        "availabilityWindow must be a multiple of availabilitySlide, and larger than it",
    ),
    "retention shorter than the revenue window": (
        {"analytics_extra": "    revenueWindow: 48h\n    stateRetention: 24h"},
        "spec.analytics.stateRetention",
        "stateRetention must be at least revenueWindow and availabilityWindow",
    ),
    "down-alert threshold shorter than the availability window": (
        {"analytics_extra": "    availabilityWindow: 1h", "alerts": "  alerts: {connectorDownMinutes: 20}"},
        "spec.alerts.connectorDownMinutes",
        "alerts.connectorDownMinutes must be at least analytics.availabilityWindow "
        "(shorter outages show in uptime_pct and the low-availability alert)",
    ),
    "down-alert threshold beyond the horizon": (
        {"analytics_extra": "    stateRetention: 1h", "alerts": "  alerts: {connectorDownMinutes: 60}"},
        "spec.alerts.connectorDownMinutes",
        "alerts.connectorDownMinutes must be shorter than analytics.stateRetention",
    ),
    "availability slide not whole minutes": (
        {"analytics_extra": "    availabilityWindow: 300s\n    availabilitySlide: 30s"},
        "spec.analytics.availabilitySlide",
        "availabilitySlide and availabilityWindow must be whole minutes "
        "(availability is measured in one-minute buckets)",
    ),
    "SASL without mechanism and credentials": (
        {"kafka_extra": "    security: {protocol: SASL_SSL}"},
        "spec.kafka.security.protocol",
        "SASL_PLAINTEXT and SASL_SSL need saslMechanism and credentialsSecretRef",
    ),
    "SASL mechanism without a SASL protocol": (
        {"kafka_extra": "    security: {protocol: SSL, saslMechanism: PLAIN}"},
        "spec.kafka.security.protocol",
        "saslMechanism and credentialsSecretRef are only valid with a SASL_ protocol",
    ),
    "stalled threshold beyond the retention": (
        {"analytics_extra": "    stateRetention: 1h", "alerts": "  alerts: {stalledSessionMinutes: 60}"},
        "spec.alerts.stalledSessionMinutes",
        "alerts.stalledSessionMinutes must be shorter than analytics.stateRetention",
    ),
    "price with five decimals": (
        {"price": "0.12345"},
        "spec.analytics.tariffs.pricePerKwh.CCS",
        "prices have at most 4 decimal places",
    ),
    "startup mode RisingWave rejects": (
        {"kafka_extra": "    startupMode: timestamp"},
        "spec.kafka.startupMode",
        "Input should be 'earliest' or 'latest'",
    ),
    "unknown field": (
        {"kafka_extra": "    topic: events"},
        "spec.kafka.topic",
        "unknown field (not part of the ChargingAnalytics schema)",
    ),
    "duration with two units": (
        {"analytics_extra": "    revenueWindow: 1h30m"},
        "spec.analytics.revenueWindow",
        "String should match pattern",
    ),
}


def _bad_manifest(fields: dict[str, str]) -> str:
    values = {"kafka_extra": "", "analytics_extra": "", "alerts": "", "price": "1", **fields}
    return BASE_SPEC.format(**values)


def test_the_bad_manifest_template_is_valid_without_a_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["validate", "-f", str(write(tmp_path, "ok.yaml", _bad_manifest({})))], capsys)
    assert (code, err) == (0, "")


@pytest.mark.parametrize("case", list(BAD))
def test_validate_exits_one_naming_the_field_and_the_rule(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fields, path, message = BAD[case]
    manifest = write(tmp_path, "bad.yaml", _bad_manifest(fields))
    code, out, err = run(["validate", "-f", str(manifest)], capsys)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: bad.yaml#1 (ns/t): {path}: "), lines[0]
    assert message in lines[0]


def test_validate_reports_every_bad_document_of_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _bad_manifest(BAD["price with five decimals"][0])
    second = _bad_manifest(BAD["unknown field"][0]).replace("name: t,", "name: u,")
    code, _, err = run(["validate", "-f", str(write(tmp_path, "two.yaml", first + "---\n" + second))], capsys)
    assert code == 1
    assert "two.yaml#1 (ns/t): spec.analytics.tariffs.pricePerKwh.CCS" in err
    assert "two.yaml#2 (ns/u): spec.kafka.topic" in err


def test_validate_reports_broken_yaml_and_files_without_a_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["validate", "-f", str(write(tmp_path, "broken.yaml", "spec: [unclosed\n"))], capsys)
    assert (code, out) == (1, "")
    assert "(yaml)" in err
    empty = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, out, err = run(["validate", "-f", str(empty)], capsys)
    assert (code, out) == (1, "")
    assert err == "error: no ChargingAnalytics resource in the input\n"


# --------------------------------------------------------------------------------------------
# crds
# --------------------------------------------------------------------------------------------


def test_crds_check_exits_one_for_a_tampered_copy_and_zero_for_a_fresh_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "crds"
    assert run(["crds", str(out_dir)], capsys)[0] == 0
    assert run(["crds", "--check", str(out_dir / CRD_FILENAME)], capsys)[0] == 0
    target = out_dir / CRD_FILENAME
    target.write_text(target.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    code, _, err = run(["crds", "--check", str(out_dir / CRD_FILENAME)], capsys)
    assert code == 1
    assert f"out of date: {target}" in err


def test_crds_check_exits_one_when_the_file_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["crds", "--check", str(tmp_path)], capsys)[0] == 1


def test_console_script_renders_the_same_as_the_golden_file(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "voltbay.yaml", tmp_path / "voltbay.yaml")
    result = subprocess.run(["charging-analytics", "render", "-f", str(tmp_path / "voltbay.yaml")],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "tests" / "golden" / "voltbay.sql").read_text(encoding="utf-8")


def test_manifests_that_still_set_late_event_tolerance_stay_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The field has no effect (no event inside stateRetention is dropped for being late), but
    # manifests written for the watermark pipeline must keep passing validation and admission.
    manifest = write(tmp_path, "old.yaml", _bad_manifest({"analytics_extra": "    lateEventTolerance: 5m"}))
    code, out, _ = run(["validate", "-f", str(manifest)], capsys)
    assert code == 0
    assert "valid" in out
