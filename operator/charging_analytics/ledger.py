"""The operator's ledger: what each ledger value means, and the statements that write it (pure).

One table for all tenants (``cha_system.ledger``, :data:`SYSTEM_SCHEMA`.:data:`LEDGER_TABLE`),
one row per object the operator manages, keyed by ``(tenant, object_name)``. An apply costs the
ledger O(1) statements whatever the number of objects:

1. before its first DDL, **one** multi-row ``INSERT`` marks the work the apply is about to do
   (and claims the tenant);
2. after its last DDL, **one** ``DELETE`` forgets removed objects (only when some were removed)
   and **one** multi-row ``INSERT`` records what was built;
3. **one** ``FLUSH`` makes those writes visible to the next catalog snapshot (DML becomes
   visible at a checkpoint; ``FLUSH`` forces one).

A table with a primary key overwrites the row of an existing key on ``INSERT`` (RisingWave's
default conflict behaviour, https://docs.risingwave.com/sql/commands/sql-create-table), so a
write needs no ``DELETE`` first.

The marks are what makes an interrupted apply converge without a human, at whatever statement it
stopped (the planner reads them, :func:`decode`):

* ``creating:<value>`` — the object did not exist and is being created. If it exists on the next
  reconcile, it is the operator's own finished work (``IF NOT EXISTS`` creates only what is
  missing) and is recorded as ``<value>``; if not, it is created. Neither is drift, and nothing
  of it can be "destroyed": destructive approval is only ever asked for objects that held data
  before the apply.
* ``replacing:<id>:<value>`` — the object with RisingWave id ``<id>`` is being dropped and built
  anew. Still that id: the old object, rebuild it; another id: the new one is done; missing:
  create it.
* ``pending`` — a rebuild of an object without an id (written by earlier versions too): resume it.
* ``granted`` / ``pending`` on a ``@grants:<user>`` row — a read-only user's grants.

Anything else is a recorded value: the definition hash (``sha256:…``, with ``~<digest>`` of the
credentials the object embeds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from .rw.literal import rw_literal
from .templates import template

#: Schema that holds the operator's ledger.
SYSTEM_SCHEMA = "cha_system"
LEDGER_TABLE = "ledger"
QUALIFIED = f"{SYSTEM_SCHEMA}.{LEDGER_TABLE}"
#: Ledger row (object_name) that records which resource owns a tenant on this endpoint.
OWNER_ROW = "__owner__"
#: The columns a snapshot reads, in this order.
SELECT = sql.SQL("SELECT tenant, object_name, kind, definition_hash, depends_on FROM {}").format(
    sql.Identifier(SYSTEM_SCHEMA, LEDGER_TABLE)
)

PENDING = "pending"


def owner_id(namespace: str, name: str) -> str:
    """The owner row's value: the resource that owns the tenant on an endpoint."""
    return f"{namespace}/{name}"

GRANTED = "granted"
_GRANTS_PREFIX = "@grants:"


def grants_row(user: str) -> str:
    """The row (object_name) that records whether a read-only user's grants are current."""
    return _GRANTS_PREFIX + user


def records_an_object(object_name: str) -> bool:
    """Whether a row records an object (not the owner row nor a user's grants)."""
    return object_name != OWNER_ROW and not object_name.startswith(_GRANTS_PREFIX)

_CREATING = "creating:"
_REPLACING = "replacing:"

MarkState = Literal["recorded", "creating", "replacing", "pending"]


@dataclass(frozen=True)
class Mark:
    """A decoded ledger value."""

    state: MarkState
    #: The recorded value, or the value the unfinished work will record ("" for ``pending``).
    value: str
    #: ``replacing``: the RisingWave id of the object being replaced.
    replaces: int | None = None


def creating(value: str) -> str:
    return _CREATING + value


def replacing(old_id: int | None, value: str) -> str:
    return PENDING if old_id is None else f"{_REPLACING}{old_id}:{value}"


def decode(raw: str) -> Mark:
    if raw == PENDING:
        return Mark("pending", "")
    if raw.startswith(_CREATING):
        return Mark("creating", raw[len(_CREATING) :])
    if raw.startswith(_REPLACING):
        old, sep, value = raw[len(_REPLACING) :].partition(":")
        if sep and old.isdigit():
            return Mark("replacing", value, int(old))
        return Mark("pending", "")
    return Mark("recorded", raw)


def encode_depends(depends_on: Sequence[str]) -> str:
    """The ``depends_on`` column: object names, comma-separated."""
    return ",".join(depends_on)


def decode_depends(column: str | None) -> tuple[str, ...]:
    return tuple(d.strip() for d in (column or "").split(",") if d.strip())


@dataclass(frozen=True)
class Row:
    """One ledger row of a tenant."""

    key: str  # object_name
    kind: str
    value: str  # definition_hash column: a recorded value or a mark
    depends_on: tuple[str, ...] = ()


def _table() -> sql.Identifier:
    return sql.Identifier(SYSTEM_SCHEMA, LEDGER_TABLE)


def bootstrap() -> list[sql.Composed]:
    """Statements that create the ledger (idempotent)."""
    return [
        template("schema").format(schema=sql.Identifier(SYSTEM_SCHEMA)),
        template("ledger").format(ledger=_table()),
    ]


def unique(rows: Sequence[Row]) -> list[Row]:
    """One row per key (the last one wins), in first-seen order: one INSERT must not carry a key
    twice."""
    by_key: dict[str, Row] = {}
    for row in rows:
        by_key.pop(row.key, None)
        by_key[row.key] = row
    return list(by_key.values())


def write(tenant: str, rows: Sequence[Row]) -> sql.Composed:
    """One ``INSERT`` of every row (overwriting existing keys)."""
    assert rows, "nothing to write"
    values = sql.SQL(", ").join(
        sql.SQL("({}, {}, {}, {}, {}, NOW())").format(
            rw_literal(tenant),
            rw_literal(row.key),
            rw_literal(row.kind),
            rw_literal(row.value),
            rw_literal(encode_depends(row.depends_on)),
        )
        for row in unique(rows)
    )
    return sql.SQL(
        "INSERT INTO {} (tenant, object_name, kind, definition_hash, depends_on, applied_at) VALUES {}"
    ).format(_table(), values)


def forget(tenant: str, keys: Sequence[str] | None = None) -> sql.Composed:
    """One ``DELETE`` of the given rows of the tenant (every row with ``keys=None``)."""
    if keys is None:
        return sql.SQL("DELETE FROM {} WHERE tenant = {}").format(_table(), rw_literal(tenant))
    assert keys, "nothing to forget"
    names = sql.SQL(", ").join(rw_literal(k) for k in dict.fromkeys(keys))
    return sql.SQL("DELETE FROM {} WHERE tenant = {} AND object_name IN ({})").format(
        _table(), rw_literal(tenant), names
    )
