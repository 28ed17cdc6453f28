"""Which RisingWave versions the operator supports, and what each version can do.

The one place that knows version facts. The RisingWave client reads ``SELECT version()`` on
connect; :func:`capabilities_for` turns the version into a frozen :class:`Capabilities`, which
render and plan take as a plain input (so they stay pure). Every statement whose form depends on
the server's version is chosen from these fields, and nowhere else.

RisingWave's ``version()`` is ``PostgreSQL 13.14.0-RisingWave-<cargo version> (<git sha>)``
(``current_cluster_version`` in ``src/common/src/lib.rs`` of risingwavelabs/risingwave).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "FACTS",
    "FLOOR",
    "NEWEST_KNOWN",
    "Capabilities",
    "Fact",
    "UnsupportedRisingWaveVersion",
    "Version",
    "capabilities_for",
    "parse_version",
]


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def of(cls, text: str) -> Version:
        major, minor, patch = (int(p) for p in text.split("."))
        return cls(major, minor, patch)


_VERSION = re.compile(r"RisingWave-v?(\d+)\.(\d+)\.(\d+)")


def parse_version(version_text: str) -> Version:
    """The RisingWave version in a ``SELECT version()`` answer.

    ``PostgreSQL 13.14.0-RisingWave-2.3.0 (0a1b2c3)`` -> 2.3.0; a pre-release such as
    ``3.2.0-alpha`` counts as its release. Anything else raises :class:`ValueError` (a plain
    PostgreSQL, or a proxy that answers for itself).
    """
    m = _VERSION.search(version_text)
    if m is None:
        raise ValueError(f"not a RisingWave version string: {version_text[:120]!r}")
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)))


@dataclass(frozen=True)
class Fact:
    """One version-dependent fact: what arrives in ``since`` and where that is recorded."""

    name: str
    since: Version
    what: str
    source: str


_RW = "https://github.com/risingwavelabs/risingwave/pull/"
_DOCS = "https://docs.risingwave.com/"

#: The version facts the operator relies on. The floor is the newest ``since`` among the facts
#: the operator cannot work without (``required``).
FACTS: tuple[Fact, ...] = (
    Fact(
        "secrets_schema_id",
        Version(2, 3, 0),
        "rw_catalog.rw_secrets has schema_id (the catalog snapshot joins secrets to schemas)",
        _RW + "20556",
    ),
    Fact(
        "jdbc_user_password",
        Version(2, 3, 0),
        "the JDBC sink takes user/password options (before: unknown field `user`)",
        _RW + "19822",
    ),
    Fact(
        "grant_all_views",
        Version(2, 3, 0),
        "GRANT SELECT ON ALL VIEWS IN SCHEMA (before: expected TO, found: VIEWS)",
        _RW + "20670",
    ),
    Fact(
        "generate_series_timestamptz",
        Version(2, 3, 0),
        "generate_series over timestamptz (before: only the timestamp form)",
        _DOCS + "sql/functions/set-returning",
    ),
    Fact(
        "alter_source_connector",
        Version(2, 6, 0),
        "ALTER SOURCE ... CONNECTOR WITH (...) changes Kafka properties such as SASL credentials in place",
        _DOCS + "sql/commands/sql-alter-source",
    ),
    Fact(
        "mv_schema_name",
        Version(3, 0, 0),
        "rw_catalog.rw_materialized_views has schema_name (the snapshot joins rw_schemas instead)",
        _DOCS + "sql/system-catalogs/rw-catalog",
    ),
    Fact(
        "wait_targets",
        Version(3, 0, 0),
        "WAIT MATERIALIZED VIEW/SINK/TABLE name (before: only a plain WAIT for every job)",
        _DOCS + "sql/commands/sql-wait",
    ),
)
_BY_NAME = {f.name: f for f in FACTS}
_REQUIRED = ("secrets_schema_id", "jdbc_user_password", "grant_all_views", "generate_series_timestamptz")

#: The oldest RisingWave the operator supports: every required fact holds from here on.
FLOOR: Version = max(_BY_NAME[n].since for n in _REQUIRED)
#: The newest version the operator was checked against; newer ones are accepted and get every
#: capability known here.
NEWEST_KNOWN = Version(3, 0, 3)


class UnsupportedRisingWaveVersion(Exception):
    """The server is older than :data:`FLOOR`; nothing may be applied to it."""

    def __init__(self, found: Version, where: str) -> None:
        self.found = found
        missing = [f for f in FACTS if f.name in _REQUIRED and found < f.since]
        needs = "; ".join(f"{f.what} (from {f.since})" for f in missing)
        super().__init__(
            f"RisingWave at {where} is version {found}; the operator supports RisingWave {FLOOR} and "
            f"newer (tested up to {NEWEST_KNOWN}). It needs: {needs}. Nothing was applied."
        )


@dataclass(frozen=True)
class Capabilities:
    """What the connected RisingWave can do, derived from its version only."""

    version: Version
    #: ``ALTER SOURCE s CONNECTOR WITH (properties.sasl.username = ..., ...)`` rotates a Kafka
    #: source's inline credentials without recreating it (no data loss, no approval).
    alter_source_connector: bool
    #: ``WAIT MATERIALIZED VIEW name`` waits for one job; before, only a plain ``WAIT``.
    wait_targets: bool
    #: ``rw_materialized_views.schema_name`` exists (the snapshot does not depend on it).
    mv_schema_name: bool

    @property
    def supported(self) -> bool:
        return self.version >= FLOOR

    def require_supported(self, where: str) -> None:
        if not self.supported:
            raise UnsupportedRisingWaveVersion(self.version, where)


def _has(version: Version, name: str) -> bool:
    return version >= _BY_NAME[name].since


def capabilities_for(version: Version) -> Capabilities:
    return Capabilities(
        version=version,
        alter_source_connector=_has(version, "alter_source_connector"),
        wait_targets=_has(version, "wait_targets"),
        mv_schema_name=_has(version, "mv_schema_name"),
    )


#: What render and plan assume when no server was asked (``charging-analytics render``, tests):
#: the floor, so offline output works on every supported version.
BASELINE: Capabilities = capabilities_for(FLOOR)
