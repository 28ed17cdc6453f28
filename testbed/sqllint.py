"""Parse and lint the RisingWave SQL the operator renders (test helper; no product code).

* :class:`RisingWaveSecrets` is sqlglot's ``risingwave`` dialect plus RisingWave's
  ``key = SECRET <name> [AS FILE]`` property values (sqlglot 30.30 fails on them); the value is
  parsed into a :class:`SecretRef` node.
* :func:`parse_one_statement` parses exactly one statement. Statements sqlglot only knows as an
  opaque :class:`sqlglot.exp.Command` (``CREATE SECRET``, ``ALTER … SWAP WITH``, ``CREATE USER``,
  ``GRANT`` …) must instead match one of a few strict regular expressions.
* :class:`Linter` checks statements, in apply order, against the rules of ``docs/risingwave.md``
  (the ``§N`` below are its sections); it remembers the relations created so far (columns, types,
  bounded state, append-only) to check the statements that read them.

Rules (``Violation.rule``):

``now-placement``  (§4) NOW()/CURRENT_TIMESTAMP in the SELECT list, GROUP BY, ORDER BY or an
                   aggregate FILTER of a materialized view or sink query.
``now-form``       (§4) a NOW() in WHERE/HAVING/ON that is not ``<column expr without NOW()> cmp
                   <non-decreasing expr with exactly one NOW()>`` (or two temporal filters ORed).
``window-args``    (§3) TUMBLE/HOP whose first argument is not a table/CTE name, whose time
                   argument is not a bare column, or whose intervals are not positive constants.
``hop-multiple``   (§3) HOP size (4th argument) not a positive multiple of the slide (3rd).
``sink-shape``     (§6) CREATE SINK not ``FROM <relation> WITH (…)`` / ``AS <query> WITH (…)``;
                   kafka without FORMAT…ENCODE or with legacy ``type=``; FORMAT PLAIN over a
                   non-append-only input without ``force_append_only`` in the ENCODE options; jdbc
                   without a valid ``type``/``primary_key``; ``snapshot`` with AS.
``round-double``   (§5) ``ROUND(x, n)`` where ``x`` is not provably NUMERIC/integer (there is no
                   ``round(double precision, int)``).
``bounded-state``  (§0, §2, §4) a materialized view that reads the source, a windowed relation
                   or another relation with unbounded state, without a lower-bound temporal filter.
``now-in-source``  (§4) NOW() anywhere in a CREATE SOURCE/TABLE (generated columns, watermarks).
``kafka-options``  (§1) ``scan.startup.mode`` other than earliest/latest, or ``group.id.prefix``
                   spelt with a ``properties.`` prefix.
``unknown-relation`` a query reads a relation that no earlier statement created (the linter
                   cannot check what it cannot see, so it refuses).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.risingwave import RisingWave
from sqlglot.tokens import TokenType  # type: ignore[attr-defined]  # not in the module's explicit exports

# --------------------------------------------------------------------------------------------
# The dialect: RisingWave + ``SECRET <name> [AS FILE]`` property values
# --------------------------------------------------------------------------------------------


class SecretRef(exp.Expression):
    """``SECRET <name> [AS FILE]`` as the value of a WITH (...) property."""

    arg_types = {"this": True, "file": False}


_NAME_TOKENS = (TokenType.VAR, TokenType.IDENTIFIER)


class RisingWaveSecrets(RisingWave):
    """sqlglot's RisingWave dialect that also parses ``SECRET`` references in WITH (...)."""

    class Parser(RisingWave.Parser):  # type: ignore[valid-type,misc]  # sqlglot nests its classes
        def _parse_key_value_property(self, parse_value: Any = None, optional: bool = False) -> Any:
            if parse_value is None and not optional:
                index = self._index
                key = self._parse_column()
                if (
                    key is not None
                    and self._match(TokenType.EQ)
                    and self._curr is not None
                    and self._curr.text.upper() == "SECRET"
                    and self._next is not None
                    and self._next.token_type in _NAME_TOKENS
                ):
                    self._advance()
                    name = self._parse_table_parts()
                    as_file = self._match_text_seq("AS", "FILE")
                    if isinstance(key, exp.Column):
                        key = key.to_dot() if len(key.parts) > 1 else exp.var(key.name)
                    value = SecretRef(this=name, file=True if as_file else None)
                    return self.expression(exp.Property(this=key, value=value))
                self._retreat(index)
            return super()._parse_key_value_property(parse_value, optional)

    class Generator(RisingWave.Generator):  # type: ignore[valid-type,misc]
        TRANSFORMS = {
            **RisingWave.Generator.TRANSFORMS,
            SecretRef: lambda self, e: (
                f"SECRET {self.sql(e, 'this')}" + (" AS FILE" if e.args.get("file") else "")
            ),
        }


DIALECT = RisingWaveSecrets


class SqlParseError(AssertionError):
    """The text is not exactly one statement the extended dialect (or a strict regex) accepts."""


@contextmanager
def _quiet_sqlglot() -> Iterator[None]:
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "contains unsupported syntax. Falling back to Command"
    try:
        yield
    finally:
        logger.setLevel(level)


# Strict shapes for the statements sqlglot only knows as ``exp.Command``. A name is quoted (as
# psycopg's Identifier renders it) or a plain identifier; a literal is one standard or E'' string.
_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)'
_QNAME = rf"{_IDENT}(?:\.{_IDENT})?"
_LITERAL = r"""(?:[Ee]'(?:[^'\\]|''|\\[\s\S])*'|'(?:[^']|'')*')"""
_KIND = r"(?:MATERIALIZED VIEW|VIEW|TABLE|SOURCE|SINK|SUBSCRIPTION)"
COMMAND_PATTERNS: dict[str, re.Pattern[str]] = {
    "CREATE SECRET": re.compile(
        rf"CREATE SECRET (?:IF NOT EXISTS )?(?P<name>{_QNAME}) WITH \(backend = 'meta'\)"
        rf" AS\s+(?P<value>{_LITERAL})"
    ),
    "ALTER SECRET": re.compile(
        rf"ALTER SECRET (?P<name>{_QNAME}) WITH \(backend = 'meta'\) AS\s+(?P<value>{_LITERAL})"
    ),
    # RisingWave >= 2.6 (https://docs.risingwave.com/sql/commands/sql-alter-source): rotate a Kafka
    # source's SASL credentials in place
    "ALTER SOURCE CONNECTOR": re.compile(
        rf"ALTER SOURCE (?P<name>{_QNAME}) CONNECTOR WITH"
        rf" \(properties\.sasl\.username = (?P<user>{_LITERAL}),"
        rf" properties\.sasl\.password = (?P<value>{_LITERAL})\)"
    ),
    "DROP SECRET": re.compile(rf"DROP SECRET (?:IF EXISTS )?(?P<name>{_QNAME})(?: CASCADE)?"),
    "SWAP": re.compile(rf"ALTER {_KIND} (?P<name>{_QNAME}) SWAP WITH (?P<other>{_QNAME})"),
    "CREATE USER": re.compile(
        rf"CREATE USER (?P<name>{_IDENT})(?: WITH)?"
        r"(?: (?:NOSUPERUSER|NOCREATEDB|NOCREATEUSER|LOGIN|NOLOGIN))*"
        rf" PASSWORD\s+(?P<value>{_LITERAL})"
    ),
    "ALTER USER": re.compile(rf"ALTER USER (?P<name>{_IDENT})(?: WITH)? PASSWORD\s+(?P<value>{_LITERAL})"),
    "DROP USER": re.compile(rf"DROP USER (?:IF EXISTS )?(?P<name>{_IDENT})"),
    "GRANT": re.compile(
        rf"GRANT (?:USAGE|SELECT|CREATE|CONNECT)(?:, ?(?:USAGE|SELECT|CREATE|CONNECT))* ON "
        rf"(?:SCHEMA {_IDENT}|DATABASE {_IDENT}|(?:MATERIALIZED VIEW|VIEW|SOURCE|SINK) {_QNAME}"
        rf"|ALL (?:MATERIALIZED VIEWS|VIEWS|SOURCES|SINKS|TABLES) IN SCHEMA {_IDENT}) TO (?P<name>{_IDENT})"
    ),
}


def match_command(sql: str) -> tuple[str, re.Match[str]]:
    """The strict pattern an opaque statement matches, or :class:`SqlParseError`."""
    text = sql.strip().rstrip(";").strip()
    for label, pattern in COMMAND_PATTERNS.items():
        m = pattern.fullmatch(text)
        if m is not None:
            return label, m
    raise SqlParseError(f"sqlglot cannot parse this statement and no strict pattern matches it:\n{sql}")


def parse_one_statement(sql: str) -> exp.Expr:
    """Exactly one statement, parsed with :data:`DIALECT` (opaque ones checked by regex)."""
    try:
        with _quiet_sqlglot():
            parsed = sqlglot.parse(sql, read=DIALECT)
    except sqlglot.errors.SqlglotError as err:
        raise SqlParseError(f"does not parse: {err}\n{sql}") from err
    statements = [s for s in parsed if s is not None]
    if len(statements) != 1:
        raise SqlParseError(f"expected exactly one statement, found {len(statements)}:\n{sql}")
    stmt = statements[0]
    if isinstance(stmt, exp.Command):
        match_command(sql)
    return stmt


def unescape_literal(text: str) -> str:
    """The value of one SQL string literal as psycopg renders it ('' and E'' forms)."""
    text = text.strip()
    if text[:1] in "eE":
        body = text[2:-1]
        return re.sub(r"\\([\s\S])", r"\1", body.replace("''", "'"))
    return text[1:-1].replace("''", "'")


def command_literal(sql: str) -> str:
    """The secret value of an opaque statement (``CREATE/ALTER SECRET … AS``, ``… USER … PASSWORD``)."""
    label, m = match_command(sql)
    if "value" not in m.groupdict():
        raise SqlParseError(f"{label} statement carries no value: {sql}")
    return unescape_literal(m.group("value"))


# --------------------------------------------------------------------------------------------
# AST helpers
# --------------------------------------------------------------------------------------------


def statement_kind(stmt: exp.Expr) -> str:
    """``MATERIALIZED VIEW``, ``VIEW``, ``SOURCE``, ``SINK``, ``TABLE``, ``SCHEMA``, ``DROP …`` …"""
    if isinstance(stmt, exp.Create):
        kind = str(stmt.args.get("kind") or "").upper()
        props = stmt.args.get("properties")
        if kind == "VIEW" and props is not None and props.find(exp.MaterializedProperty):
            return "MATERIALIZED VIEW"
        return kind
    if isinstance(stmt, exp.Drop):
        kind = str(stmt.args.get("kind") or "").upper()
        return f"DROP {'MATERIALIZED ' if stmt.args.get('materialized') else ''}{kind}"
    if isinstance(stmt, exp.Command):
        label, _ = match_command(stmt.sql(dialect=DIALECT))
        return label
    return type(stmt).__name__.upper()


def table_key(table: exp.Expr) -> str:
    """``schema.name`` (or ``name``) of a Table / Column-used-as-name, lower-cased."""
    if isinstance(table, exp.Table):
        parts = [p for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p is not None]
    elif isinstance(table, exp.Column):
        parts = [p for p in (table.args.get("db"), table.args.get("table"), table.this) if p is not None]
    else:
        raise TypeError(f"not a name: {table!r}")
    return ".".join(p.name.lower() for p in parts)


def created_name(stmt: exp.Expr) -> str | None:
    """Qualified name of the object a CREATE/DROP creates or drops."""
    if isinstance(stmt, exp.Create | exp.Drop):
        target = stmt.this
        if target is None and stmt.args.get("tables"):
            target = stmt.args["tables"][0]
        if isinstance(target, exp.Schema):
            target = target.this
        if isinstance(target, exp.Table):
            return table_key(target)
        if isinstance(target, exp.Identifier):
            return target.name.lower()
    if isinstance(stmt, exp.Command):
        _, m = match_command(stmt.sql(dialect=DIALECT))
        return ".".join(part.strip('"') for part in re.findall(_IDENT, m.group("name")))
    return None


def property_key(prop: exp.Property) -> str:
    key = prop.this
    if isinstance(key, exp.Var | exp.Identifier | exp.Literal):
        return str(key.name).lower()
    return str(key.sql(dialect=DIALECT)).lower()


def with_properties(stmt: exp.Expr) -> dict[str, exp.Expr]:
    """The ``WITH (key = value, …)`` options of a CREATE, by key."""
    props = stmt.args.get("properties")
    out: dict[str, exp.Expr] = {}
    if props is None:
        return out
    for p in props.expressions:
        if type(p) is exp.Property:
            out[property_key(p)] = p.args["value"]
    return out


def _format(stmt: exp.Expr) -> tuple[str | None, str | None, dict[str, exp.Expr]]:
    """FORMAT, ENCODE and the ENCODE (...) options of a source/sink."""
    props = stmt.args.get("properties")
    fmt = enc = None
    options: dict[str, exp.Expr] = {}
    if props is not None:
        for p in props.expressions:
            if isinstance(p, exp.FileFormatProperty):
                fmt = p.name.upper()
            elif isinstance(p, exp.EncodeProperty) and not p.args.get("key"):
                enc = p.name.upper()
                inner = p.args.get("properties")
                if inner is not None:
                    options = {property_key(q): q.args["value"] for q in inner.expressions}
    return fmt, enc, options


def literal_text(value: exp.Expr | None) -> str | None:
    if isinstance(value, exp.Literal) and value.is_string:
        return str(value.this)
    return None


def _is_now(node: exp.Expr) -> bool:
    if isinstance(node, exp.CurrentTimestamp):
        return True
    return isinstance(node, exp.Anonymous) and node.name.upper() in ("NOW", "CURRENT_TIMESTAMP")


def _owner(node: exp.Expr) -> exp.Expr | None:
    return node.find_ancestor(exp.Select)


def _now_nodes(node: exp.Expr | None, owner: exp.Expr | None = None) -> list[exp.Expr]:
    """NOW() calls under ``node`` (those of nested queries excluded when ``owner`` is given)."""
    if node is None:
        return []
    found: list[exp.Expr] = [n for n in node.find_all(exp.CurrentTimestamp, exp.Anonymous) if _is_now(n)]
    if owner is not None:
        found = [n for n in found if _owner(n) is owner]
    return found


def _columns(node: exp.Expr, owner: exp.Expr | None) -> list[exp.Column]:
    return [c for c in node.find_all(exp.Column) if owner is None or _owner(c) is owner]


def _unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _conjuncts(cond: exp.Expr | None) -> list[exp.Expr]:
    if cond is None:
        return []
    cond = _unparen(cond)
    if isinstance(cond, exp.And):
        return _conjuncts(cond.this) + _conjuncts(cond.expression)
    return [cond]


_UNITS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60, "m": 60,
    "hour": 3600, "hours": 3600, "h": 3600,
    "day": 86400, "days": 86400, "d": 86400,
    "week": 604800, "weeks": 604800,
}  # fmt: skip


def interval_seconds(node: exp.Expr) -> Fraction | None:
    """Seconds of a constant interval (``INTERVAL '90 seconds'``, ``INTERVAL '1' HOUR``), else None."""
    node = _unparen(node)
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DType.INTERVAL):
        text = literal_text(node.this)
    elif isinstance(node, exp.Interval):
        value = node.this
        if not (isinstance(value, exp.Literal)):
            return None
        unit = node.args.get("unit")
        text = value.this + (f" {unit.name}" if unit is not None else "")
    else:
        return None
    if text is None:
        return None
    parts = text.lower().split()
    if not parts or len(parts) % 2:
        return None
    total = Fraction(0)
    for number, unit in zip(parts[::2], parts[1::2], strict=True):
        if not re.fullmatch(r"-?\d+(?:\.\d+)?", number) or unit not in _UNITS:
            return None
        total += Fraction(number) * _UNITS[unit]
    return total


# --------------------------------------------------------------------------------------------
# Conservative types
# --------------------------------------------------------------------------------------------

NUMERIC, INT, DOUBLE, TEXT, TSTZ, TS, INTERVAL, BOOL, NULL, UNKNOWN = (
    "numeric", "int", "double", "text", "timestamptz", "timestamp", "interval", "bool", "null", "unknown",
)  # fmt: skip
_EXACT = {NUMERIC, INT}
_DTYPE = {
    exp.DType.DECIMAL: NUMERIC, exp.DType.BIGDECIMAL: NUMERIC,
    exp.DType.INT: INT, exp.DType.BIGINT: INT, exp.DType.SMALLINT: INT, exp.DType.TINYINT: INT,
    exp.DType.DOUBLE: DOUBLE, exp.DType.FLOAT: DOUBLE,
    exp.DType.VARCHAR: TEXT, exp.DType.TEXT: TEXT, exp.DType.CHAR: TEXT, exp.DType.NVARCHAR: TEXT,
    exp.DType.TIMESTAMPTZ: TSTZ, exp.DType.TIMESTAMP: TS, exp.DType.INTERVAL: INTERVAL,
    exp.DType.BOOLEAN: BOOL,
}  # fmt: skip


def datatype(dt: exp.DataType) -> str:
    return _DTYPE.get(dt.this, UNKNOWN)


def _unify(types: Iterable[str]) -> str:
    ts = {t for t in types if t != NULL}
    if not ts:
        return NULL
    if len(ts) == 1:
        return ts.pop()
    if ts <= {INT, NUMERIC, DOUBLE}:
        return DOUBLE if DOUBLE in ts else NUMERIC
    return UNKNOWN


def _arith(op: exp.Expr, left: str, right: str) -> str:
    if NULL in (left, right):
        return right if left == NULL else left
    numeric = {INT, NUMERIC, DOUBLE}
    if left in numeric and right in numeric:
        if DOUBLE in (left, right):
            return DOUBLE
        return NUMERIC if NUMERIC in (left, right) else INT
    times = {TSTZ, TS}
    if isinstance(op, exp.Sub) and left in times and right == left:
        return INTERVAL
    if isinstance(op, exp.Add | exp.Sub) and left in times and right == INTERVAL:
        return left
    if isinstance(op, exp.Add) and left == INTERVAL and right in times:
        return right
    if isinstance(op, exp.Add | exp.Sub) and left == right == INTERVAL:
        return INTERVAL
    if isinstance(op, exp.Mul | exp.Div) and left == INTERVAL and right in numeric:
        return INTERVAL
    return UNKNOWN


# --------------------------------------------------------------------------------------------
# The linter
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    rule: str
    statement: str  # name of the object the statement creates (or the statement's start)
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.statement}: {self.message}"


@dataclass
class Relation:
    """What the linter knows about a relation created by an earlier statement."""

    kind: str
    columns: dict[str, str]
    bounded: bool  # its state/rows are bounded by temporal filters (or it stores nothing)
    append_only: bool


_WINDOW_FUNCS = ("TUMBLE", "HOP")
_STREAMING_KINDS = ("MATERIALIZED VIEW", "SINK")
_COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ)
_AGGS_PASSTHROUGH = (exp.Min, exp.Max, exp.ArgMax, exp.ArgMin, exp.FirstValue, exp.LastValue, exp.AnyValue)


class Linter:
    """Lints statements in apply order, remembering the relations they create."""

    def __init__(self) -> None:
        self.relations: dict[str, Relation] = {}
        self._ctes: dict[str, exp.Expr] = {}
        self._current = ""

    # -- public ------------------------------------------------------------------------------

    def check(self, sql: str) -> list[Violation]:
        """Parse one statement, lint it, then register what it creates."""
        stmt = parse_one_statement(sql)
        return self.check_ast(stmt, sql)

    def check_ast(self, stmt: exp.Expr, sql: str = "") -> list[Violation]:
        kind = statement_kind(stmt)
        self._current = created_name(stmt) or (sql or stmt.sql(dialect=DIALECT))[:40]
        self._ctes = {cte.alias_or_name.lower(): cte.this for cte in stmt.find_all(exp.CTE)}
        out: list[Violation] = []
        if isinstance(stmt, exp.Create):
            out += self._lint_create(stmt, kind, sql)
            self._register(stmt, kind)
        elif isinstance(stmt, exp.Drop):
            name = created_name(stmt)
            if name is not None:
                self.relations.pop(name, None)
        out += self._lint_windows(stmt)
        out += self._lint_round(stmt)
        return out

    # -- per kind ----------------------------------------------------------------------------

    def _v(self, rule: str, message: str) -> Violation:
        return Violation(rule, self._current, message)

    def _lint_create(self, stmt: exp.Create, kind: str, sql: str) -> list[Violation]:
        out: list[Violation] = []
        query = stmt.expression
        if kind in ("SOURCE", "TABLE"):
            if _now_nodes(stmt):
                out.append(self._v("now-in-source", f"NOW() in a {kind} definition (use PROCTIME())"))
            out += self._lint_kafka_options(stmt)
        if isinstance(query, exp.Query):
            for table in query.find_all(exp.Table):
                if isinstance(table.this, exp.Func):
                    continue  # TUMBLE/HOP: their relation is checked with the window rules
                key = table_key(table)
                if key not in self._ctes and self._lookup(key) is None:
                    out.append(self._v("unknown-relation", f"reads unknown relation {key}"))
        if kind in _STREAMING_KINDS and isinstance(query, exp.Query):
            out += self._lint_now(query, kind)
        if kind == "MATERIALIZED VIEW" and isinstance(query, exp.Query):
            unbounded = self._unbounded_inputs(query)
            if unbounded:
                out.append(
                    self._v(
                        "bounded-state",
                        f"reads {', '.join(sorted(unbounded))} without a lower-bound temporal filter "
                        "(`col > NOW() - INTERVAL …`): its state and rows grow forever",
                    )
                )
        if kind == "SINK":
            out += self._lint_sink(stmt, sql)
        return out

    def _register(self, stmt: exp.Create, kind: str) -> None:
        name = created_name(stmt)
        if name is None or kind in ("SCHEMA", "SINK"):
            return
        if kind in ("SOURCE", "TABLE"):
            schema = stmt.this
            columns = {}
            if isinstance(schema, exp.Schema):
                for col in schema.expressions:
                    if isinstance(col, exp.ColumnDef) and isinstance(col.args.get("kind"), exp.DataType):
                        columns[col.name.lower()] = datatype(col.args["kind"])
            has_connector = "connector" in with_properties(stmt)
            streaming = kind == "SOURCE" or has_connector
            self.relations[name] = Relation(kind, columns, bounded=not streaming, append_only=streaming)
            return
        query = stmt.expression
        if isinstance(query, exp.Query):
            self.relations[name] = Relation(
                kind,
                self._output_columns(query),
                bounded=not self._unbounded_inputs(query),
                append_only=self._append_only(query),
            )

    # -- relations and scopes ----------------------------------------------------------------

    def _lookup(self, key: str) -> Relation | None:
        if key in self.relations:
            return self.relations[key]
        bare = key.rsplit(".", 1)[-1]
        matches = [r for k, r in self.relations.items() if k.rsplit(".", 1)[-1] == bare]
        return matches[0] if len(matches) == 1 and "." not in key else None

    def _from_items(self, select: exp.Select) -> list[exp.Expr]:
        items: list[exp.Expr] = []
        src = select.args.get("from_")
        if src is not None:
            items.append(src.this)
        for join in select.args.get("joins") or ():
            items.append(join.this)
        return items

    @staticmethod
    def _window_call(item: exp.Expr) -> exp.Expr | None:
        if isinstance(item, exp.Table) and isinstance(item.this, exp.Func):
            fn = item.this
            name = fn.name.upper() if isinstance(fn, exp.Anonymous) else type(fn).__name__.upper()
            if name in _WINDOW_FUNCS:
                return fn
        return None

    def _relation_columns(self, item: exp.Expr) -> dict[str, str] | None:
        """Columns of a FROM item (None: unknown relation)."""
        window = self._window_call(item)
        if window is not None:
            args = window.expressions
            base = self._name_columns(args[0]) if args and isinstance(args[0], exp.Column) else None
            if base is None:
                return None
            time_type = base.get(args[1].name.lower(), UNKNOWN) if len(args) > 1 else UNKNOWN
            return {**base, "window_start": time_type, "window_end": time_type}
        if isinstance(item, exp.Table):
            return self._name_columns(item)
        if isinstance(item, exp.Subquery):
            return self._output_columns(item.this)
        return None

    def _name_columns(self, name: exp.Expr) -> dict[str, str] | None:
        key = table_key(name)
        if key in self._ctes:
            return self._output_columns(self._ctes[key])
        rel = self._lookup(key)
        return dict(rel.columns) if rel is not None else None

    def _scope(self, select: exp.Select) -> list[tuple[str, dict[str, str] | None]]:
        scope: list[tuple[str, dict[str, str] | None]] = []
        for item in self._from_items(select):
            alias = item.alias_or_name.lower() if hasattr(item, "alias_or_name") else ""
            scope.append((alias, self._relation_columns(item)))
        return scope

    def _output_columns(self, query: exp.Expr) -> dict[str, str]:
        query = _unparen(query)
        if isinstance(query, exp.Subquery):
            return self._output_columns(query.this)
        if isinstance(query, exp.SetOperation):
            left = self._output_columns(query.this)
            right = list(self._output_columns(query.expression).values())
            return {
                name: _unify([t, right[i]]) if i < len(right) else UNKNOWN
                for i, (name, t) in enumerate(left.items())
            }
        if not isinstance(query, exp.Select):
            return {}
        out: dict[str, str] = {}
        for proj in query.expressions:
            if isinstance(proj, exp.Star):
                for _, cols in self._scope(query):
                    out.update(cols or {})
                continue
            out[proj.alias_or_name.lower()] = self.infer(proj)
        return out

    def _column_type(self, col: exp.Column) -> str:
        select = _owner(col)
        if not isinstance(select, exp.Select):
            return UNKNOWN
        name = col.name.lower()
        qualifier = col.table.lower() if col.table else None
        found: list[str] = []
        for alias, cols in self._scope(select):
            if qualifier is not None and alias != qualifier:
                continue
            if cols is None:
                return UNKNOWN
            if name in cols:
                found.append(cols[name])
        return found[0] if len(found) == 1 else UNKNOWN

    def infer(self, e: exp.Expr) -> str:
        """Conservative type of an expression: UNKNOWN when it cannot be shown."""
        e = _unparen(e)
        if isinstance(e, exp.Alias):
            return self.infer(e.this)
        if isinstance(e, exp.Column):
            return self._column_type(e)
        if isinstance(e, exp.Literal):
            if e.is_string:
                return TEXT
            return INT if re.fullmatch(r"\d+", e.this) else NUMERIC
        if isinstance(e, exp.Null):
            return NULL
        if isinstance(e, exp.Boolean):
            return BOOL
        if isinstance(e, exp.Cast):
            return datatype(e.to)
        if isinstance(e, exp.Neg):
            return self.infer(e.this)
        if isinstance(e, exp.Add | exp.Sub | exp.Mul | exp.Div | exp.Mod):
            return _arith(e, self.infer(e.this), self.infer(e.expression))
        if isinstance(e, exp.Extract):
            return NUMERIC
        if isinstance(e, exp.Round):
            inner = self.infer(e.this)
            if e.args.get("decimals") is not None:
                return NUMERIC if inner in _EXACT else UNKNOWN
            return inner
        if isinstance(e, exp.Filter):
            return self.infer(e.this)
        if isinstance(e, exp.Count):
            return INT
        if isinstance(e, exp.Sum):
            inner = self.infer(e.this)
            return NUMERIC if inner in _EXACT else inner if inner in (DOUBLE, INTERVAL) else UNKNOWN
        if isinstance(e, exp.Avg):
            inner = self.infer(e.this)
            return NUMERIC if inner in _EXACT else inner if inner in (DOUBLE, INTERVAL) else UNKNOWN
        if isinstance(e, _AGGS_PASSTHROUGH):
            return self.infer(e.this)
        if isinstance(e, exp.Case):
            branches = [i.args["true"] for i in e.args.get("ifs") or ()]
            if e.args.get("default") is not None:
                branches.append(e.args["default"])
            return _unify(self.infer(b) for b in branches)
        if isinstance(e, exp.Coalesce):
            return _unify(self.infer(x) for x in [e.this, *e.expressions])
        if isinstance(e, exp.DPipe):
            return TEXT
        if _is_now(e):
            return TSTZ
        if isinstance(e, exp.Interval):
            return INTERVAL
        if isinstance(e, exp.Predicate | exp.Connector | exp.Not):
            return BOOL
        return UNKNOWN

    # -- rule (e): ROUND ---------------------------------------------------------------------

    def _lint_round(self, stmt: exp.Expr) -> list[Violation]:
        out: list[Violation] = []
        for node in stmt.find_all(exp.Round):
            if node.args.get("decimals") is None:
                continue
            t = self.infer(node.this)
            if t not in _EXACT:
                out.append(
                    self._v(
                        "round-double",
                        f"ROUND({node.this.sql(dialect=DIALECT)}, n): first argument is {t}, "
                        "not numeric (no round(double precision, int); cast to NUMERIC)",
                    )
                )
        return out

    # -- rules (b), (c): TUMBLE / HOP ----------------------------------------------------------

    def _lint_windows(self, stmt: exp.Expr) -> list[Violation]:
        out: list[Violation] = []
        for fn in stmt.find_all(exp.Anonymous):
            name = fn.name.upper()
            if name not in _WINDOW_FUNCS:
                continue
            args = fn.expressions
            want = 3 if name == "TUMBLE" else 4
            if len(args) not in (want, want + 1):
                out.append(self._v("window-args", f"{name} takes {want} or {want + 1} arguments"))
                continue
            rel, time_col, *intervals = args
            if not isinstance(rel, exp.Column):
                out.append(
                    self._v(
                        "window-args",
                        f"{name}'s 1st argument must be a table/source/MV/view/CTE name, not "
                        f"{type(rel).__name__.lower()} (subquery, join or table function)",
                    )
                )
            elif table_key(rel) not in self._ctes and self._lookup(table_key(rel)) is None:
                out.append(self._v("unknown-relation", f"{name} reads unknown relation {table_key(rel)}"))
            if not isinstance(time_col, exp.Column) or time_col.table:
                out.append(
                    self._v(
                        "window-args",
                        f"{name}'s time argument must be a bare column, not {time_col.sql(dialect=DIALECT)}",
                    )
                )
            seconds = [interval_seconds(i) for i in intervals[: want - 2]]
            if any(s is None or s <= 0 for s in seconds):
                out.append(self._v("window-args", f"{name} intervals must be positive constants"))
                continue
            if name == "HOP":
                slide, size = seconds
                assert slide is not None
                assert size is not None
                if size % slide != 0:
                    out.append(
                        self._v(
                            "hop-multiple",
                            f"HOP size {size}s is not a multiple of slide {slide}s "
                            "(HOP(relation, time, slide, size))",
                        )
                    )
        return out

    # -- rules (a), (g): NOW() -----------------------------------------------------------------

    def _lint_now(self, query: exp.Expr, kind: str) -> list[Violation]:
        out: list[Violation] = []
        for select in query.find_all(exp.Select):
            filters = [f for f in select.find_all(exp.Filter) if _owner(f) is select]
            for f in filters:
                if _now_nodes(f.expression, select):
                    out.append(self._v("now-placement", f"NOW() in an aggregate FILTER of a {kind}"))
            for proj in select.expressions:
                now = [n for n in _now_nodes(proj, select) if n.find_ancestor(exp.Filter) is None]
                if now:
                    out.append(
                        self._v(
                            "now-placement",
                            f"NOW() in the SELECT list of a {kind} ({proj.sql(dialect=DIALECT)[:60]})",
                        )
                    )
            for clause in ("group", "order"):
                node = select.args.get(clause)
                if _now_nodes(node, select):
                    out.append(self._v("now-placement", f"NOW() in {clause.upper()} BY of a {kind}"))
            conditions = [select.args.get("where"), select.args.get("having")]
            conditions += [j.args.get("on") for j in select.args.get("joins") or ()]
            for cond in conditions:
                if cond is not None:
                    body = cond.this if isinstance(cond, exp.Where | exp.Having) else cond
                    _, problems = self._temporal(body, select)
                    out += [self._v("now-form", p) for p in problems]
        return out

    def _temporal(self, cond: exp.Expr, owner: exp.Expr) -> tuple[int, list[str]]:
        """(number of temporal filters, problems) of a WHERE/HAVING/ON condition."""
        cond = _unparen(cond)
        if isinstance(cond, exp.And):
            a, pa = self._temporal(cond.this, owner)
            b, pb = self._temporal(cond.expression, owner)
            return a + b, pa + pb
        if isinstance(cond, exp.Or):
            a, pa = self._temporal(cond.this, owner)
            b, pb = self._temporal(cond.expression, owner)
            problems = pa + pb
            if a and b:
                problems.append("two temporal filters ORed together (only AND, or OR with plain predicates)")
            return a + b, problems
        if not _now_nodes(cond, owner):
            return 0, []
        text = cond.sql(dialect=DIALECT)
        if isinstance(cond, _COMPARISONS):
            left, right = cond.this, cond.expression
            left_now, right_now = bool(_now_nodes(left, owner)), bool(_now_nodes(right, owner))
            if left_now == right_now:
                return 1, [f"NOW() on both sides of `{text}`"]
            column_side, now_side = (right, left) if left_now else (left, right)
            return 1, self._check_sides(column_side, [now_side], owner, text)
        if isinstance(cond, exp.Between):
            bounds = [cond.args["low"], cond.args["high"]]
            now_bounds = [b for b in bounds if _now_nodes(b, owner)]
            if _now_nodes(cond.this, owner):
                return 1, [f"NOW() on the column side of `{text}`"]
            return 1, self._check_sides(cond.this, now_bounds, owner, text)
        return 1, [f"NOW() in `{text}`, which is not `input_expr cmp now_expr`"]

    def _check_sides(
        self, column_side: exp.Expr, now_sides: Sequence[exp.Expr], owner: exp.Expr, text: str
    ) -> list[str]:
        problems: list[str] = []
        if not _columns(column_side, owner):
            problems.append(f"the non-NOW() side of `{text}` references no column")
        for side in now_sides:
            if _columns(side, owner):
                problems.append(f"`{text}` mixes NOW() and a column on the same side")
            elif len(_now_nodes(side, owner)) != 1 or not _monotone_now(side):
                problems.append(
                    f"`{side.sql(dialect=DIALECT)}` is not a non-decreasing expression "
                    "with exactly one NOW() (NOW() ± constant interval)"
                )
        return problems

    # -- rule (f): bounded state -------------------------------------------------------------

    def _unbounded_inputs(self, query: exp.Expr) -> set[str]:
        """Inputs whose rows the query keeps without a bound (empty: bounded)."""
        query = _unparen(query)
        if isinstance(query, exp.Subquery):
            return self._unbounded_inputs(query.this)
        if isinstance(query, exp.SetOperation):
            return self._unbounded_inputs(query.this) | self._unbounded_inputs(query.expression)
        if not isinstance(query, exp.Select):
            return {"<unsupported query>"}
        if self._append_only_top_n(query):
            return set()
        unbounded: set[str] = set()
        for item in self._from_items(query):
            unbounded |= self._item_unbounded(item)
        if unbounded and _has_lower_bound(query.args.get("where"), query):
            unbounded = set()
        # Subqueries in predicates/projections keep their own state (anti-joins, IN, …).
        for sub in query.find_all(exp.Select):
            if sub is query or _owner_query(sub) is not query or _is_from_item(sub, query):
                continue
            unbounded |= self._unbounded_inputs(sub)
        return unbounded

    def _append_only_top_n(self, query: exp.Select) -> bool:
        """``SELECT … FROM (SELECT …, ROW_NUMBER() OVER (PARTITION BY …) AS rn FROM <append-only>)
        WHERE rn = 1`` (or ``rn <= n``): RisingWave keeps only the top n rows per partition of an
        append-only input (AppendOnlyGroupTopN), so the state is bounded by the partition keys."""
        items = self._from_items(query)
        where = query.args.get("where")
        if len(items) != 1 or not isinstance(items[0], exp.Subquery) or where is None:
            return False
        inner = _unparen(items[0].this)
        if not isinstance(inner, exp.Select):
            return False
        ranks = {
            alias.alias_or_name
            for alias in inner.expressions
            if isinstance(alias, exp.Alias)
            and isinstance(alias.this, exp.Window)
            and isinstance(alias.this.this, exp.RowNumber)
            and alias.this.args.get("partition_by")
        }
        limited = any(
            isinstance(cond, (exp.EQ, exp.LTE))
            and isinstance(cond.this, exp.Column)
            and cond.this.name in ranks
            and isinstance(cond.expression, exp.Literal)
            for cond in _conjuncts(where.this)
        )
        inner_plain = inner.copy()
        inner_plain.set("expressions", [e for e in inner_plain.expressions if e.alias_or_name not in ranks])
        return limited and self._append_only(inner_plain)

    def _item_unbounded(self, item: exp.Expr) -> set[str]:
        window = self._window_call(item)
        if window is not None:
            return {f"{window.name.upper()}(…) (a windowed relation)"}
        if isinstance(item, exp.Subquery):
            return self._unbounded_inputs(item.this)
        if isinstance(item, exp.Table):
            key = table_key(item)
            if key in self._ctes:
                return self._unbounded_inputs(self._ctes[key])
            rel = self._lookup(key)
            if rel is None:
                return {f"unknown relation {key}"}
            return set() if rel.bounded else {f"{rel.kind.lower()} {key}"}
        return {f"unsupported FROM item {type(item).__name__}"}

    def _append_only(self, query: exp.Expr) -> bool:
        query = _unparen(query)
        if isinstance(query, exp.Subquery):
            return self._append_only(query.this)
        if isinstance(query, exp.Union):
            return (
                not query.args.get("distinct")
                and self._append_only(query.this)
                and self._append_only(query.expression)
            )
        if not isinstance(query, exp.Select):
            return False
        if (
            query.args.get("group")
            or query.args.get("having")
            or query.args.get("distinct")
            or query.args.get("joins")
            or query.find(exp.AggFunc, exp.Subquery, exp.Window)
            or _now_nodes(query)
        ):
            return False
        for item in self._from_items(query):
            window = self._window_call(item)
            if window is not None:
                args = window.expressions
                if not args or not isinstance(args[0], exp.Column) or not self._name_append_only(args[0]):
                    return False
            elif isinstance(item, exp.Subquery):
                if not self._append_only(item.this):
                    return False
            elif not (isinstance(item, exp.Table) and self._name_append_only(item)):
                return False
        return True

    def _name_append_only(self, name: exp.Expr) -> bool:
        key = table_key(name)
        if key in self._ctes:
            return self._append_only(self._ctes[key])
        rel = self._lookup(key)
        return rel is not None and rel.append_only

    # -- rule (d): sinks ---------------------------------------------------------------------

    def _lint_sink(self, stmt: exp.Create, sql: str) -> list[Violation]:
        out: list[Violation] = []
        shape = _sink_shape(sql or stmt.sql(dialect=DIALECT))
        if shape.problem:
            out.append(self._v("sink-shape", shape.problem))
        props = with_properties(stmt)
        connector = literal_text(props.get("connector"))
        fmt, enc, enc_options = _format(stmt)
        query = stmt.expression
        if "snapshot" in props and shape.form != "FROM":
            out.append(self._v("sink-shape", "snapshot='false' only works with CREATE SINK … FROM"))
        if connector is None:
            out.append(self._v("sink-shape", "sink without connector"))
        elif connector == "kafka":
            if "type" in props:
                out.append(self._v("sink-shape", "legacy type= in a kafka sink; use FORMAT … ENCODE only"))
            if fmt is None or enc is None:
                out.append(self._v("sink-shape", "kafka sink needs FORMAT … ENCODE …"))
            if "force_append_only" in props:
                out.append(self._v("sink-shape", "force_append_only goes in ENCODE (...) options, not WITH"))
            forced = literal_text(enc_options.get("force_append_only")) == "true"
            if (
                fmt == "PLAIN"
                and isinstance(query, exp.Query)
                and not forced
                and not self._append_only(query)
            ):
                out.append(
                    self._v(
                        "sink-shape",
                        "FORMAT PLAIN over a non-append-only input needs "
                        "ENCODE JSON (force_append_only='true')",
                    )
                )
            if fmt == "UPSERT" and "primary_key" not in props:
                out.append(self._v("sink-shape", "FORMAT UPSERT needs primary_key"))
        elif connector == "jdbc":
            sink_type = literal_text(props.get("type"))
            if fmt is not None:
                out.append(self._v("sink-shape", "the jdbc sink has no FORMAT clause"))
            if sink_type not in ("append-only", "upsert"):
                out.append(
                    self._v("sink-shape", f"jdbc sink type must be append-only or upsert, not {sink_type}")
                )
            if sink_type == "upsert" and "primary_key" not in props:
                out.append(self._v("sink-shape", "an upsert jdbc sink needs primary_key"))
            missing = {"jdbc.url", "table.name"} - set(props)
            if missing:
                out.append(self._v("sink-shape", f"jdbc sink without {', '.join(sorted(missing))}"))
        return out

    def _lint_kafka_options(self, stmt: exp.Create) -> list[Violation]:
        props = with_properties(stmt)
        out: list[Violation] = []
        mode = props.get("scan.startup.mode")
        if mode is not None and literal_text(mode) not in ("earliest", "latest"):
            out.append(self._v("kafka-options", "scan.startup.mode only accepts 'earliest' or 'latest'"))
        if "properties.group.id.prefix" in props:
            out.append(
                self._v("kafka-options", "the consumer group option is group.id.prefix (no properties.)")
            )
        return out


def _owner_query(node: exp.Expr) -> exp.Expr | None:
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        parent = parent.parent
    return parent


def _is_from_item(sub: exp.Expr, query: exp.Select) -> bool:
    """Whether ``sub`` is (inside) a FROM/JOIN subquery or a CTE of ``query``."""
    node: exp.Expr | None = sub
    while node is not None and node is not query:
        if isinstance(node, exp.From | exp.Join | exp.With | exp.CTE):
            return True
        node = node.parent
    return False


def _is_const_interval(node: exp.Expr) -> bool:
    return interval_seconds(node) is not None


def _monotone_now(node: exp.Expr) -> bool:
    """NOW(), or NOW() ± a constant interval (non-decreasing in time)."""
    node = _unparen(node)
    if _is_now(node):
        return True
    if isinstance(node, exp.Cast) and node.to.this in (exp.DType.TIMESTAMPTZ, exp.DType.TIMESTAMP):
        return _monotone_now(node.this)
    if isinstance(node, exp.Sub):
        return _monotone_now(node.this) and _is_const_interval(node.expression)
    if isinstance(node, exp.Add):
        return (_monotone_now(node.this) and _is_const_interval(node.expression)) or (
            _is_const_interval(node.this) and _monotone_now(node.expression)
        )
    return False


def _has_lower_bound(where: exp.Expr | None, owner: exp.Select) -> bool:
    """A top-level ``col > NOW() - …`` (or ``NOW() - … < col``, ``col BETWEEN NOW() - … AND …``)."""
    if where is None:
        return False
    for c in _conjuncts(where.this if isinstance(where, exp.Where) else where):
        if isinstance(c, exp.GT | exp.GTE):
            col, now = c.this, c.expression
        elif isinstance(c, exp.LT | exp.LTE):
            col, now = c.expression, c.this
        elif isinstance(c, exp.Between):
            col, now = c.this, c.args["low"]
        else:
            continue
        if _columns(col, owner) and not _now_nodes(col, owner) and _monotone_now(now):
            return True
    return False


@dataclass(frozen=True)
class SinkShape:
    form: str  # "FROM" | "AS" | "?"
    problem: str | None = None


def _sink_shape(sql: str) -> SinkShape:
    """Token-level shape of CREATE SINK (sqlglot accepts ``FROM (SELECT …)`` and WITH-first forms)."""
    tokens = DIALECT().tokenize(sql)
    # Quoted identifiers are never keywords; bare words (IF, NOT, names) compare upper-cased.
    words = [None if t.token_type == TokenType.IDENTIFIER else t.text.upper() for t in tokens]
    try:
        i = words.index("SINK") + 1
    except ValueError:
        return SinkShape("?", "not a CREATE SINK statement")
    if words[i : i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3

    def name_end(j: int) -> int:
        if j >= len(tokens) or tokens[j].token_type not in _NAME_TOKENS:
            return -1
        j += 1
        while j + 1 < len(tokens) and tokens[j].token_type == TokenType.DOT:
            if tokens[j + 1].token_type not in _NAME_TOKENS:
                return -1
            j += 2
        return j

    i = name_end(i)
    if i < 0 or i >= len(tokens):
        return SinkShape("?", "CREATE SINK without a name")
    head = words[i]
    if head == "FROM":
        j = name_end(i + 1)
        if j < 0:
            return SinkShape(
                "FROM",
                "CREATE SINK … FROM takes a relation name only; FROM (SELECT …) "
                "is a syntax error (use AS SELECT … WITH (…))",
            )
        if j >= len(tokens) or words[j] != "WITH":
            return SinkShape("FROM", "CREATE SINK … FROM <relation> must be followed by WITH (…)")
        return SinkShape("FROM")
    if head == "AS":
        if i + 1 < len(tokens) and words[i + 1] in ("SELECT", "WITH"):
            if (
                words[i + 1] == "WITH"
                and i + 2 < len(tokens)
                and tokens[i + 2].token_type == TokenType.L_PAREN
            ):
                return SinkShape("AS", "CREATE SINK … AS must be followed by the query")
            return SinkShape("AS")
        return SinkShape("AS", "CREATE SINK … AS must be followed by a query")
    if head == "WITH":
        return SinkShape("?", "WITH (…) must come after FROM <relation> / AS <query>")
    return SinkShape("?", f"unexpected {tokens[i].text!r} after the sink name")


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


@dataclass
class LintReport:
    violations: list[Violation] = field(default_factory=list)

    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}

    def __str__(self) -> str:
        return "\n".join(str(v) for v in self.violations) or "clean"


def lint(statements: Iterable[str], linter: Linter | None = None) -> LintReport:
    """Lint statements in apply order (each must parse as exactly one statement)."""
    linter = linter or Linter()
    report = LintReport()
    for sql in statements:
        report.violations += linter.check(sql)
    return report


__all__ = [
    "COMMAND_PATTERNS",
    "DIALECT",
    "LintReport",
    "Linter",
    "RisingWaveSecrets",
    "SecretRef",
    "SqlParseError",
    "Violation",
    "command_literal",
    "created_name",
    "interval_seconds",
    "lint",
    "match_command",
    "parse_one_statement",
    "statement_kind",
    "unescape_literal",
    "with_properties",
]

