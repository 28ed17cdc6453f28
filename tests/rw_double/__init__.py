"""A RisingWave DOUBLE for tests: a PostgreSQL-wire server with catalog-faithful semantics.

This is NOT RisingWave. RisingWave cannot be installed here, so tests of the operator's RisingWave
boundary (``charging_analytics.rw.client``) and everything above it run against this stand-in,
or against a real RisingWave when ``RISINGWAVE_DSN`` is set (see ``fixtures.py``).

What it imitates (each behaviour cites the section of ``docs/risingwave.md`` that states it):

* catalog: schemas, sources, tables (with rows), materialized views, views, sinks, secrets, users,
  grants; ids, owners, re-printed definitions (§11) and dependencies by object id;
* DDL semantics: duplicates, IF [NOT] EXISTS (§9), DROP with dependents / CASCADE (§9),
  ALTER ... SWAP WITH / RENAME TO (§10, §11), CREATE USER without IF NOT EXISTS (§8), GRANT/REVOKE
  (§8), licensed secrets (§7), BEGIN notice (§13), NOW() and TUMBLE/HOP checks (§3, §4), sink
  FROM/AS rules and append-only checks (§6), background DDL / WAIT / rw_ddl_progress (§12);
* reads: ``rw_catalog.*`` (§11, §12) and a few ``pg_catalog`` views, plus user tables, answered by
  transpiling the SELECT to SQLite with sqlglot;
* a RisingWave version (``version``, default 3.0.3): ``version()`` in RisingWave's format, and what
  that version rejects (catalog columns, JDBC options, GRANT forms, ``generate_series`` overloads,
  ``ALTER SOURCE ... CONNECTOR WITH``), each citing the RisingWave change; ``E'...'`` after PASSWORD and
  as a secret value is rejected on every version;
* knobs for tests: ``unreachable``, ``latency``, ``fail_next``, ``set_backfill``, ``license``,
  ``version``, ``statements``/``records``, ``connector_option``, ``dml_visibility_delay``, and
  ``engine_seconds`` (CPU spent executing statements, for benchmarks).

It is built to hold a fleet: name lookups are indexed, a relation's SQLite table is made when a
statement first reads or writes it, and a superuser's catalog read replaces only the rows of the
relations changed since the last read, so DDL and catalog reads cost what changed, not the
catalog's size (``tests/testbed/rw_double/test_double_catalog_reads.py`` checks that the kept
tables equal a rebuild). A catalog query is translated to SQLite once per shape, its string
literals bound as parameters: the operator's reads of some schemas differ only in the names they
list (``test_double_prepared_queries.py`` checks that each still answers for its own literals).

Entry point: :class:`RisingWaveDouble` (``start()``/``stop()``, ``.dsn``); pytest fixtures live in
:mod:`tests.rw_double.fixtures`.
"""

from .errors import SqlError
from .server import ObjectInfo, RisingWaveDouble
from .wire import Injection, StatementRecord

__all__ = ["Injection", "ObjectInfo", "RisingWaveDouble", "SqlError", "StatementRecord"]
