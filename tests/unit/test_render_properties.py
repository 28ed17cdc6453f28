"""Properties of rendering over generated specs (hypothesis).

* Valid specs (drawn from strategies that respect the model's patterns and cross-field rules)
  render statements that each parse as exactly one statement, whose structure does not depend on
  the string values: the AST with every literal and the tenant replaced by placeholders is the
  same as for a canonical spec with the same features, and the executable form (credentials in
  it) has the same structure as the display form.
* Hostile strings (quotes, ``;``, comments, backslashes, ``$$``, unicode, newlines) in any field
  that reaches SQL are rejected by model validation with an error naming that field.
* Credentials never reach the display SQL; the executable statements carry them exactly (inline)
  or reference RisingWave secrets that carry them (``risingwave`` store).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from charging_analytics import ledger
from charging_analytics import spec as spec_module
from charging_analytics.catalog import TenantCatalog
from charging_analytics.pipeline import reader_name
from charging_analytics.plan import PlanOptions, build_plan
from charging_analytics.render import (
    REDACTED,
    Credential,
    Credentials,
    DesiredObject,
    Digester,
    RenderOptions,
    as_text,
    render,
)
from charging_analytics.spec import ChargingAnalyticsSpec
from charging_analytics.validation import ManifestError, parse_documents
from testbed.specs import resource
from testbed.sqllint import (
    SecretRef,
    command_literal,
    created_name,
    lint,
    match_command,
    parse_one_statement,
    statement_kind,
    table_key,
    with_properties,
)

#: One digest cache for this module's renderings, as the service keeps one for all of its own.
DIGESTER = Digester()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# Strategies: valid specs
# --------------------------------------------------------------------------------------------

tenants = st.from_regex(r"[a-z][a-z0-9_]{1,20}", fullmatch=True).filter(
    lambda t: not spec_module.tenant_is_reserved(t)
)
hosts = st.from_regex(spec_module.HOST_PATTERN, fullmatch=True).filter(lambda h: len(h) <= 60)
servers = st.lists(st.builds("{}:{}".format, hosts, st.integers(1, 65535)), min_size=1, max_size=4)
topics = st.from_regex(spec_module.KAFKA_TOPIC_PATTERN, fullmatch=True).filter(lambda t: len(t) <= 60)
sql_names = st.from_regex(r"[a-z_][a-z0-9_]{0,30}", fullmatch=True)
prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False).map(float)
percent = st.floats(min_value=0, max_value=100, exclude_min=True, allow_nan=False)
#: Arbitrary text a Kubernetes Secret may hold (PostgreSQL text cannot hold NUL).
secret_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=40
)
hostile_credentials = st.one_of(
    secret_text,
    st.sampled_from(
        ["x'; DROP TABLE y; --", "it's", "back\\slash", "\\'", "$$", "$q$ $q$", "'||'", "é☃\u2028"]
    ),
)


def duration(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@st.composite
def spec_docs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``spec`` mapping; every optional feature drawn on or off."""
    slide = 60 * draw(st.integers(1, 60))  # availability is measured in whole minutes
    window = slide * draw(st.integers(2, 24))
    revenue = draw(st.integers(1, 2 * 86400))
    retention = draw(st.integers(max(window + 60, revenue, 61), 8 * 86400))
    down_minutes = draw(st.integers(window // 60, min(10080, (retention - 1) // 60)))
    sasl = draw(st.booleans())
    security: dict[str, Any] = {"protocol": draw(st.sampled_from(["PLAINTEXT", "SSL"]))}
    if sasl:
        security = {
            "protocol": draw(st.sampled_from(["SASL_PLAINTEXT", "SASL_SSL"])),
            "saslMechanism": draw(st.sampled_from(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])),
            "credentialsSecretRef": {"name": "kafka-creds"},
        }
    kafka: dict[str, Any] = {
        "bootstrapServers": draw(servers),
        "eventsTopic": draw(topics),
        "startupMode": draw(st.sampled_from(["earliest", "latest"])),
        "security": security,
    }
    group = draw(st.none() | topics.map(lambda t: t[:100]))
    if group is not None:
        kafka["consumerGroupPrefix"] = group
    sinks: dict[str, Any] = {}
    if draw(st.booleans()):
        sinks["kafka"] = {"topic": draw(topics)}
    if draw(st.booleans()):
        sinks["postgres"] = {
            "host": draw(hosts),
            "port": draw(st.integers(1, 65535)),
            "database": draw(sql_names),
            "schema": draw(sql_names),
            "table": draw(sql_names),
            "sslmode": draw(st.sampled_from(["disable", "require", "verify-full"])),
            "credentialsSecretRef": {"name": "pg-creds"},
        }
    alerts: dict[str, Any] = {
        "stalledSessionMinutes": draw(st.integers(1, min(1440, (retention - 1) // 60))),
        "connectorFaults": draw(st.booleans()),
        "connectorDownMinutes": down_minutes,
        "sinks": sinks,
    }
    threshold = draw(st.none() | percent)
    if threshold is not None:
        alerts["availabilityBelowPercent"] = threshold
    return {
        "tenant": draw(tenants),
        "kafka": kafka,
        "analytics": {
            "tariffs": {
                "currency": draw(st.from_regex(r"[A-Z]{3}", fullmatch=True)),
                "pricePerKwh": {"CCS": draw(prices), "CHAdeMO": draw(prices), "Type2": draw(prices)},
            },
            "revenueWindow": duration(revenue),
            "availabilityWindow": duration(window),
            "availabilitySlide": duration(slide),
            "upStatuses": draw(
                st.lists(
                    st.sampled_from(["Available", "Charging", "Reserved", "Faulted"]), min_size=1, unique=True
                )
            ),
            "stateRetention": duration(retention),
        },
        "alerts": alerts,
        "readOnlyUser": {"enabled": draw(st.booleans())},
    }


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """The same features with every value that reaches SQL replaced by a fixed one."""
    out = copy.deepcopy(doc)
    out["tenant"] = "canonical_tenant"
    k = out["kafka"]
    k["bootstrapServers"] = ["broker:9092"] * len(k["bootstrapServers"])
    k["eventsTopic"] = "events"
    if "consumerGroupPrefix" in k:
        k["consumerGroupPrefix"] = "group"
    if "saslMechanism" in k["security"]:
        k["security"]["saslMechanism"] = "PLAIN"
    k["startupMode"] = "earliest"
    t = out["analytics"]["tariffs"]
    t["currency"] = "XXX"
    t["pricePerKwh"] = {"CCS": 1.5, "CHAdeMO": 1.5, "Type2": 1.5}
    a = out["alerts"]
    if "availabilityBelowPercent" in a:
        a["availabilityBelowPercent"] = 50.5
    if "kafka" in a["sinks"]:
        a["sinks"]["kafka"]["topic"] = "alerts"
    if "postgres" in a["sinks"]:
        a["sinks"]["postgres"].update(
            host="db", port=5432, database="db", schema="s", table="t", sslmode="disable"
        )
    return out


def model(doc: dict[str, Any]) -> ChargingAnalyticsSpec:
    return ChargingAnalyticsSpec.model_validate(doc)


def creds_for(username: str, password: str) -> Credentials:
    return Credentials(
        kafka=Credential(username, password),
        alerts_db=Credential(username + "-db", password + "-db"),
        reader=Credential("reader", password + "-ro"),
    )


# --------------------------------------------------------------------------------------------
# Statement structure with the values taken out
# --------------------------------------------------------------------------------------------


def shape(node: Any, tenant: str) -> Any:
    """The AST with literals reduced to their type and the tenant schema to a placeholder."""
    if isinstance(node, exp.Command):
        label, m = match_command(node.sql())
        return ("Command", label, _tenantless(m.group("name"), tenant))
    if isinstance(node, exp.Literal):
        return "<string>" if node.is_string else "<number>"
    if isinstance(node, exp.ByteString):  # psycopg's E'' form, used when a value has a backslash
        return "<string>"
    if isinstance(node, exp.Identifier):
        return ("Identifier", node.name, node.quoted)
    if isinstance(node, list):
        return tuple(shape(n, tenant) for n in node)
    if not isinstance(node, exp.Expr):
        return node
    items = []
    for key, value in node.args.items():
        if value is None or value is False or value == []:
            continue
        schema_part = (isinstance(node, exp.Table) and key == "db") or (
            isinstance(node, exp.Column) and key == "table"
        )
        if schema_part and isinstance(value, exp.Identifier) and value.name == tenant:
            items.append((key, "<tenant>"))
        else:
            items.append((key, shape(value, tenant)))
    return (type(node).__name__, tuple(items))


def _tenantless(name: str, tenant: str) -> str:
    """A (possibly quoted, possibly qualified) name with the tenant's schema and user abstracted."""
    parts = [p.strip('"') for p in re.findall(r'"(?:[^"]|"")+"|[^."]+', name)]
    if parts and parts[0] == tenant:
        parts[0] = "<tenant>"
    elif parts == [reader_name(tenant)]:
        parts = ["<tenant reader>"]
    return ".".join(parts)


def _grant_shape(grant: str, tenant: str) -> str:
    parse_one_statement(grant)
    return grant.replace(f'"{reader_name(tenant)}"', "<reader>").replace(f'"{tenant}"', "<tenant>")


def summary(stmt: exp.Expr, tenant: str) -> tuple[str, str, frozenset[str]]:
    """(statement kind, created object, WITH keys)."""
    name = _tenantless(created_name(stmt) or "", tenant)
    keys = frozenset(with_properties(stmt)) if isinstance(stmt, exp.Create) else frozenset()
    return statement_kind(stmt), name, keys


@SETTINGS
@given(
    doc=spec_docs(),
    store=st.sampled_from(["inline", "risingwave"]),
    user=hostile_credentials,
    password=hostile_credentials,
)
def test_statement_structure_does_not_depend_on_any_value(
    doc: dict[str, Any], store: str, user: str, password: str
) -> None:
    spec = model(doc)
    options = RenderOptions(secret_store=store, credentials=creds_for(user, password), digester=DIGESTER)  # type: ignore[arg-type]
    objects = render(spec, options)
    baseline = render(model(canonical(doc)), RenderOptions(secret_store=store))  # type: ignore[arg-type]
    assert [(o.kind, _tenantless(o.key, spec.tenant)) for o in objects] == [
        (o.kind, _tenantless(o.key, "canonical_tenant")) for o in baseline
    ]
    for o, b in zip(objects, baseline, strict=True):
        display = parse_one_statement(o.sql)
        executable = parse_one_statement(as_text(o.statement))
        reference = parse_one_statement(b.sql)
        assert summary(display, spec.tenant) == summary(reference, "canonical_tenant"), o.name
        assert summary(executable, spec.tenant) == summary(display, spec.tenant), o.name
        assert shape(display, spec.tenant) == shape(reference, "canonical_tenant"), o.name
        assert shape(executable, spec.tenant) == shape(display, spec.tenant), o.name
        if o.update_statement is not None:
            label = match_command(as_text(o.update_statement))[0]
            assert label == {"Secret": "ALTER SECRET", "User": "ALTER USER"}[o.kind]
        assert [_grant_shape(as_text(g), spec.tenant) for g in o.grants] == [
            _grant_shape(as_text(g), "canonical_tenant") for g in b.grants
        ]


@settings(max_examples=25, deadline=None)
@given(doc=spec_docs(), store=st.sampled_from(["inline", "risingwave"]))
def test_generated_specs_render_statements_that_pass_every_lint_rule(doc: dict[str, Any], store: str) -> None:
    objects = render(model(doc), RenderOptions(secret_store=store))  # type: ignore[arg-type]
    report = lint(o.sql for o in objects)
    assert report.violations == [], str(report)


# --------------------------------------------------------------------------------------------
# Hostile values are rejected, naming the field
# --------------------------------------------------------------------------------------------

PAYLOADS = [
    "x'; DROP TABLE y; --", "a'b", 'a"b', "a\\b", "$$", "$q$x$q$", "a;b", "a--b", "a/*b", "é", "☃",
    "\uff41", "a\u200bb", "a b", "a\nb", "ok\n", "\t", "a\x00b", "{}", "%s", "a,b",
]  # fmt: skip
hostile = st.one_of(
    st.sampled_from(PAYLOADS),
    st.builds(
        lambda a, p, b: a + p + b,
        st.from_regex(r"[a-z]{0,4}", fullmatch=True),
        st.sampled_from(PAYLOADS),
        st.from_regex(r"[a-z0-9]{0,4}", fullmatch=True),
    ),
    st.text(max_size=12),
)

S = spec_module
#: manifest path -> (where it lives in the spec mapping, its pattern, its maxLength)
FIELDS: dict[str, tuple[tuple[Any, ...], str, int]] = {
    "spec.tenant": (("tenant",), S.TENANT_PATTERN, 40),
    "spec.kafka.eventsTopic": (("kafka", "eventsTopic"), S.KAFKA_TOPIC_PATTERN, 249),
    "spec.kafka.bootstrapServers[1]": (("kafka", "bootstrapServers", 1), S.BOOTSTRAP_SERVER_PATTERN, 260),
    "spec.kafka.consumerGroupPrefix": (("kafka", "consumerGroupPrefix"), S.CONSUMER_GROUP_PATTERN, 100),
    "spec.analytics.tariffs.currency": (("analytics", "tariffs", "currency"), S.CURRENCY_PATTERN, 3),
    "spec.alerts.sinks.kafka.topic": (("alerts", "sinks", "kafka", "topic"), S.KAFKA_TOPIC_PATTERN, 249),
    "spec.alerts.sinks.postgres.host": (("alerts", "sinks", "postgres", "host"), S.HOST_PATTERN, 253),
    "spec.alerts.sinks.postgres.database": (
        ("alerts", "sinks", "postgres", "database"),
        S.SQL_NAME_PATTERN,
        63,
    ),
    "spec.alerts.sinks.postgres.schema": (("alerts", "sinks", "postgres", "schema"), S.SQL_NAME_PATTERN, 63),
    "spec.alerts.sinks.postgres.table": (("alerts", "sinks", "postgres", "table"), S.SQL_NAME_PATTERN, 63),
    "spec.risingwave.host": (("risingwave", "host"), S.HOST_PATTERN, 253),
    "spec.risingwave.database": (("risingwave", "database"), S.SQL_NAME_PATTERN, 63),
}


def _full_spec() -> dict[str, Any]:
    return {
        "tenant": "acme",
        "risingwave": {"host": "rw", "database": "dev"},
        "kafka": {
            "bootstrapServers": ["k0:9092", "k1:9092"],
            "eventsTopic": "events",
            "consumerGroupPrefix": "g",
        },
        "analytics": {
            "tariffs": {"currency": "EUR", "pricePerKwh": {"CCS": 0.5, "CHAdeMO": 0.4, "Type2": 0.3}}
        },
        "alerts": {
            "availabilityBelowPercent": 80,
            "sinks": {
                "kafka": {"topic": "alerts"},
                "postgres": {"host": "db", "database": "alerts", "credentialsSecretRef": {"name": "pg"}},
            },
        },
    }


def _manifest(spec: dict[str, Any]) -> dict[str, Any]:
    return resource("t", "ns", spec)


def test_the_hostile_field_template_is_itself_valid() -> None:
    assert len(parse_documents([_manifest(_full_spec())]).resources) == 1


@pytest.mark.parametrize("path", list(FIELDS))
@settings(max_examples=40, deadline=None)
@given(value=hostile)
def test_hostile_value_is_rejected_by_validation_naming_the_field(path: str, value: str) -> None:
    where, pattern, max_length = FIELDS[path]
    valid = re.fullmatch(pattern, value) is not None and len(value) <= max_length
    assume(not valid)
    spec = _full_spec()
    node = spec
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    with pytest.raises(ManifestError) as err:
        parse_documents([_manifest(spec)])
    assert {issue.path for issue in err.value.issues} == {path}


@pytest.mark.parametrize(
    "tenant",
    ["public", "information_schema", "pg_temp", "rw_catalog", "rw_x", "pg_acme", ledger.SYSTEM_SCHEMA],
)
def test_reserved_schema_names_are_rejected_as_tenants(tenant: str) -> None:
    spec = _full_spec()
    spec["tenant"] = tenant
    with pytest.raises(ManifestError) as err:
        parse_documents([_manifest(spec)])
    (issue,) = err.value.issues
    assert issue.path == "spec.tenant"
    assert "reserved" in issue.message


# --------------------------------------------------------------------------------------------
# Credentials: never in the display SQL, exactly in the executable SQL
# --------------------------------------------------------------------------------------------


@st.composite
def sasl_docs_with_sinks(draw: st.DrawFn) -> dict[str, Any]:
    doc = draw(spec_docs())
    doc["kafka"]["security"] = {
        "protocol": "SASL_SSL",
        "saslMechanism": "SCRAM-SHA-512",
        "credentialsSecretRef": {"name": "kafka-creds"},
    }
    doc["alerts"]["sinks"] = {
        "kafka": {"topic": "alerts"},
        "postgres": {"host": "db", "database": "alerts", "credentialsSecretRef": {"name": "pg"}},
    }
    doc["readOnlyUser"] = {"enabled": True}
    return doc


def _literal(value: exp.Expr) -> str:
    assert isinstance(value, exp.Literal | exp.ByteString), repr(value)
    return value.this


@settings(max_examples=40, deadline=None)
@given(doc=sasl_docs_with_sinks(), user=hostile_credentials, password=hostile_credentials)
def test_inline_credentials_reach_only_the_executable_statements(
    doc: dict[str, Any], user: str, password: str
) -> None:
    spec = model(doc)
    creds = creds_for(user, password)
    options = RenderOptions(secret_store="inline", credentials=creds, digester=DIGESTER)
    objects = {o.name: o for o in render(spec, options)}
    unresolved = render(spec, RenderOptions(secret_store="inline"))
    assert [o.sql for o in objects.values()] == [o.sql for o in unresolved]  # display ignores credentials
    secrets = [user, password, user + "-db", password + "-db", password + "-ro"]

    def shown(objs: list[DesiredObject]) -> list[str]:
        """Everything a plan, a status or a log line may show (hashes aside: they are hex)."""
        plan = build_plan(objs, TenantCatalog(spec.tenant, False), PlanOptions(ledger_exists=False))
        return [*(o.sql for o in objs), *plan.statements(), *(repr(replace(o, hash="")) for o in objs)]

    baseline = shown(unresolved)
    assume(all(secret not in text for text in baseline for secret in secrets))
    for text in [*shown(list(objects.values())), repr(creds)]:
        for secret in secrets:
            assert secret not in text
    for name in ("ocpp_events", "alerts_to_kafka"):
        props = with_properties(parse_one_statement(as_text(objects[name].statement)))
        assert _literal(props["properties.sasl.username"]) == user
        assert _literal(props["properties.sasl.password"]) == password
        display = with_properties(parse_one_statement(objects[name].sql))
        assert _literal(display["properties.sasl.password"]) == REDACTED
    props = with_properties(parse_one_statement(as_text(objects["alerts_to_postgres"].statement)))
    assert (_literal(props["user"]), _literal(props["password"])) == (user + "-db", password + "-db")
    reader = objects[reader_name(spec.tenant)]
    assert command_literal(as_text(reader.statement)) == password + "-ro"
    assert reader.update_statement is not None
    assert command_literal(as_text(reader.update_statement)) == password + "-ro"
    assert command_literal(reader.sql) == REDACTED
    assert [o.name for o in objects.values() if o.unresolved] == []
    assert {o.name for o in unresolved if o.unresolved} == {
        "ocpp_events",
        "alerts_to_kafka",
        "alerts_to_postgres",
        reader_name(spec.tenant),
    }


@settings(max_examples=40, deadline=None)
@given(doc=sasl_docs_with_sinks(), user=hostile_credentials, password=hostile_credentials)
def test_risingwave_store_puts_credentials_only_into_secret_statements(
    doc: dict[str, Any], user: str, password: str
) -> None:
    spec = model(doc)
    creds = creds_for(user, password)
    options = RenderOptions(secret_store="risingwave", credentials=creds, digester=DIGESTER)
    objects = {o.name: o for o in render(spec, options)}
    expected = {
        "kafka_username": user, "kafka_password": password,
        "alerts_db_username": user + "-db", "alerts_db_password": password + "-db",
    }  # fmt: skip
    for name, value in expected.items():
        secret = objects[name]
        assert command_literal(as_text(secret.statement)) == value
        assert secret.update_statement is not None
        assert command_literal(as_text(secret.update_statement)) == value
        assert command_literal(secret.sql) == REDACTED
    for name, keys in {
        "ocpp_events": ("properties.sasl.username", "properties.sasl.password"),
        "alerts_to_kafka": ("properties.sasl.username", "properties.sasl.password"),
        "alerts_to_postgres": ("user", "password"),
    }.items():
        for form in (as_text(objects[name].statement), objects[name].sql):
            props = with_properties(parse_one_statement(form))
            refs = [props[k] for k in keys]
            assert all(isinstance(r, SecretRef) for r in refs), (name, refs)
            assert {table_key(r.this).split(".")[0] for r in refs} == {spec.tenant}
        assert set(objects[name].depends_on) >= {table_key(props[k].this).split(".")[1] for k in keys}


@settings(max_examples=15, deadline=None)
@given(doc=sasl_docs_with_sinks(), old=secret_text, new=secret_text)
def test_rotating_a_credential_changes_what_the_ledger_records_for_every_object_that_embeds_it(
    doc: dict[str, Any], old: str, new: str
) -> None:
    assume(old != new)
    spec = model(doc)
    rendered_before = render(spec, RenderOptions(credentials=creds_for("u", old)))
    rendered_after = render(spec, RenderOptions(credentials=creds_for("u", new)))
    # the definition hash (shown in status) never depends on a credential ...
    assert [o.hash for o in rendered_before] == [o.hash for o in rendered_after]
    # ... the ledger value carries the credential digest
    before = {o.name: o.ledger_value for o in rendered_before}
    after = {o.name: o.ledger_value for o in rendered_after}
    assert {n for n in before if before[n] != after[n]} == {
        "ocpp_events",
        "alerts_to_kafka",
        "alerts_to_postgres",
        reader_name(spec.tenant),
    }
