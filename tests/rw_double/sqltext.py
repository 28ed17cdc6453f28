"""SQL text handling for the RisingWave DOUBLE: tokenizer, names, statement heads, re-printing.

This is test infrastructure, not a RisingWave implementation. It understands exactly as much SQL
as the operator's renderer emits (see ``tests/rw_double/__init__.py``) and re-prints definitions
the way RisingWave stores them: keywords upper-cased, canonical spacing, ``IF NOT EXISTS``
stripped (docs/risingwave.md §11).

Statements sqlglot's ``risingwave`` dialect cannot parse faithfully (``CREATE SINK ... FROM x``
becomes ``AS SELECT * FROM x`` there; ``CREATE SECRET``/``USER``/``GRANT``/``ALTER ... SWAP`` fall
back to an opaque ``Command``) are handled here with a small tokenizer instead.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field

from .errors import SqlError, parse_error

# --------------------------------------------------------------------------------------------
# Tokens


@dataclass(frozen=True)
class Token:
    kind: str  # ident | qident | string | number | op | punct | param
    text: str  # the source text of the token
    value: str  # ident: lower-cased; qident: unquoted; string: unescaped; others: text
    start: int
    end: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.value in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("ident", "qident")


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>[eE]?'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<param>\$\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>::|<=|>=|<>|!=|\|\||->>|->|[-+*/%<>=~!^&|@#])
  | (?P<punct>[(),;.\[\]])
    """,
    re.VERBOSE | re.DOTALL,
)


def tokenize(sql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN_RE.match(sql, pos)
        if m is None:
            raise parse_error(sql, pos, f"unexpected character {sql[pos]!r}")
        kind = m.lastgroup or ""
        text = m.group()
        if kind == "string" and (len(text) < 2 or not text.endswith("'")):
            raise parse_error(sql, pos, "unterminated quoted string")
        if kind not in ("ws", "comment"):
            if kind == "ident":
                value = text.lower()
            elif kind == "qident":
                value = text[1:-1].replace('""', '"')
            elif kind == "string":
                body = text[2:-1] if text[0] in "eE" else text[1:-1]
                value = body.replace("''", "'")
            else:
                value = text
            tokens.append(Token(kind, text, value, m.start(), m.end()))
        pos = m.end()
    return tokens


def split_statements(sql: str) -> list[str]:
    """Split a simple-query string on top-level semicolons (empty statements dropped)."""
    tokens = tokenize(sql)
    out: list[str] = []
    start = 0
    for tok in tokens:
        if tok.kind == "punct" and tok.text == ";":
            piece = sql[start : tok.start].strip()
            if piece:
                out.append(piece)
            start = tok.end
    tail = sql[start:].strip()
    if tail and tokenize(tail):
        out.append(tail)
    return out


# --------------------------------------------------------------------------------------------
# Names


@dataclass(frozen=True)
class Name:
    """A possibly qualified object name; parts already case-folded (unquoted parts lower-cased)."""

    parts: tuple[str, ...]
    quoted: tuple[bool, ...] = ()

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def schema(self) -> str | None:
        return self.parts[-2] if len(self.parts) >= 2 else None

    @property
    def database(self) -> str | None:
        return self.parts[-3] if len(self.parts) >= 3 else None

    def __str__(self) -> str:
        return ".".join(self.parts)


_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name: str) -> str:
    """Quote an identifier only when needed, as RisingWave's re-printer does for new names."""
    if _SIMPLE_IDENT.match(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def print_name(schema: str | None, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


# --------------------------------------------------------------------------------------------
# A cursor over tokens


class Cursor:
    def __init__(self, sql: str, tokens: Sequence[Token] | None = None) -> None:
        self.sql = sql
        self.tokens = list(tokens) if tokens is not None else tokenize(sql)
        self.i = 0

    # -- inspection
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if 0 <= j < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def at_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.is_kw(*words)

    def at_punct(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text == text

    def pos(self) -> int:
        tok = self.peek()
        return tok.start if tok is not None else len(self.sql)

    # -- consumption
    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise parse_error(self.sql, len(self.sql), "unexpected end of input")
        self.i += 1
        return tok

    def accept_kw(self, *words: str) -> bool:
        """Consume the keyword sequence ``words`` if it is next."""
        for k, word in enumerate(words):
            tok = self.peek(k)
            if tok is None or not tok.is_kw(word):
                return False
        self.i += len(words)
        return True

    def expect_kw(self, *words: str) -> None:
        if not self.accept_kw(*words):
            raise self.error(f"expected {' '.join(w.upper() for w in words)}")

    def accept_punct(self, text: str) -> bool:
        if self.at_punct(text):
            self.i += 1
            return True
        return False

    def expect_punct(self, text: str) -> None:
        if not self.accept_punct(text):
            raise self.error(f"expected {text}")

    def accept_op(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.text == text:
            self.i += 1
            return True
        return False

    def error(self, expected: str) -> SqlError:
        tok = self.peek()
        found = tok.text if tok is not None else "EOF"
        return parse_error(self.sql, self.pos(), f"{expected}, found: {found}")

    def name(self) -> Name:
        parts: list[str] = []
        quoted: list[bool] = []
        while True:
            tok = self.next()
            if not tok.is_name:
                self.i -= 1
                raise self.error("expected identifier")
            parts.append(tok.value)
            quoted.append(tok.kind == "qident")
            if self.at_punct(".") and (nxt := self.peek(1)) is not None and nxt.is_name:
                self.i += 1
                continue
            return Name(tuple(parts), tuple(quoted))

    def skip_parens(self) -> tuple[int, int]:
        """Consume a balanced ``( ... )`` group; return the token index range of its inside."""
        self.expect_punct("(")
        inner_start = self.i
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "punct" and tok.text in "([":
                depth += 1
            elif tok.kind == "punct" and tok.text in ")]":
                depth -= 1
        return inner_start, self.i - 1

    def rest_text(self) -> str:
        return self.sql[self.pos() :].strip()


def split_top_level(tokens: Sequence[Token], sep: str = ",") -> list[list[Token]]:
    """Split a token list on depth-0 separators."""
    groups: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind == "punct" and tok.text in "([":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")]":
            depth -= 1
        if depth == 0 and tok.kind == "punct" and tok.text == sep:
            groups.append([])
            continue
        groups[-1].append(tok)
    return [g for g in groups if g]


# --------------------------------------------------------------------------------------------
# WITH (...) options


@dataclass(frozen=True)
class OptionValue:
    text: str  # re-printed value, e.g. "'kafka'" or "SECRET acme.pw"
    value: str  # literal value (unquoted) or the secret's name
    secret: Name | None = None  # set for ``key = SECRET name [AS FILE]`` (docs/risingwave.md §7)
    secret_start: int | None = None  # source offset of the secret's name


def parse_options(c: Cursor) -> dict[str, OptionValue]:
    """Parse ``( key = value, ... )``; keys may be dotted (``properties.bootstrap.server``)."""
    start, end = c.skip_parens()
    options: dict[str, OptionValue] = {}
    for group in split_top_level(c.tokens[start:end]):
        sub = Cursor(c.sql, group)
        key_parts = [sub.next().value]
        while sub.accept_punct("."):
            key_parts.append(sub.next().value)
        key = ".".join(key_parts)
        if not sub.accept_op("="):
            raise sub.error("expected =")
        if sub.at_kw("secret"):
            sub.next()
            secret_start = sub.pos()
            secret = sub.name()
            as_file = sub.accept_kw("as", "file")
            text = f"SECRET {secret}" + (" AS FILE" if as_file else "")
            options[key] = OptionValue(text, str(secret), secret, secret_start)
        else:
            tok = sub.next()
            if tok.kind in ("string", "number", "ident", "qident"):
                options[key] = OptionValue(tok.text, tok.value)
            else:
                raise sub.error("expected option value")
        if not sub.at_end():
            raise sub.error("expected , or )")
    return options


# --------------------------------------------------------------------------------------------
# Re-printing (docs/risingwave.md §11: stored definitions are the re-printed AST, keywords upper-cased,
# canonical spacing, IF NOT EXISTS stripped)

RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create current_date current_time current_timestamp current_user default deferrable
    desc distinct do else end except false fetch for foreign from grant group having in initially
    intersect into lateral leading limit localtime localtimestamp not null offset on only or order
    placing primary references returning select session_user some symmetric table then to trailing
    true union unique user using variadic when where window with""".split()  # noqa: SIM905
)

KEYWORDS = RESERVED | frozenset(
    """add after alter append authorization backend background_ddl begin between bigint boolean by
    cascade char character close commit connector cross cube current data database date day days
    decimal delete double drop emit encode escape exists explain extract file filter first flush
    following format full hop hour hours if ilike include index inner insert int integer interval is
    join json key last left like materialized minute minutes month months natural nulls numeric
    outer over partition password plain precision preceding primary privileges range real recursive
    rename replace restrict revoke right rollback row rows schema schemas second seconds secret set
    show sink sinks smallint source sources swap system tables text time timestamp timestamptz
    transaction tumble type unbounded update upsert usage values varchar view views wait watermark
    without work year years zone""".split()  # noqa: SIM905
)

#: Keywords after which ``(`` is separated by a space (everything else is a function call).
_SPACE_BEFORE_PAREN = frozenset(
    """as in from join values on exists filter over using with and or not when then else where having
    select union all any some into table json avro protobuf csv bytes parquet template plain upsert
    debezium""".split()  # noqa: SIM905
)


@dataclass
class Printed:
    """A re-printed statement with relation references that can be re-bound on renames."""

    pieces: list[str | int] = field(default_factory=list)  # text or a catalog object id


def reprint(tokens: Sequence[Token], refs: dict[int, int] | None = None) -> Printed:
    """Re-print tokens canonically. ``refs`` maps token index -> object id for relation names.

    A reference spans the token at that index and any ``.``-joined name tokens following it.
    """
    refs = refs or {}
    out = Printed()
    buf: list[str] = []
    prev: Token | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        text = _print_token(tok, prev, nxt)
        span = 1
        if i in refs:
            span = _name_span(tokens, i)
        sep = _separator(prev, tok)
        buf.append(sep)
        if i in refs:
            out.pieces.append("".join(buf))
            buf = []
            out.pieces.append(refs[i])
        else:
            buf.append(text)
        prev = tokens[i + span - 1]
        i += span
    if buf:
        out.pieces.append("".join(buf))
    return out


def _name_span(tokens: Sequence[Token], i: int) -> int:
    span = 1
    while (
        i + span + 1 < len(tokens)
        and tokens[i + span].kind == "punct"
        and tokens[i + span].text == "."
        and tokens[i + span + 1].is_name
    ):
        span += 2
    return span


def _print_token(tok: Token, prev: Token | None, nxt: Token | None) -> str:
    if tok.kind == "ident":
        # option keys (``connector = ...``, ``group.id.prefix``) and qualified parts stay as names
        as_name = (nxt is not None and nxt.text in ("=", ".")) or (prev is not None and prev.text == ".")
        return tok.value.upper() if tok.value in KEYWORDS and not as_name else tok.value
    if tok.kind == "string" and tok.text[0] in "eE":
        return "E" + tok.text[1:]
    return tok.text


def _separator(prev: Token | None, tok: Token) -> str:
    if prev is None:
        return ""
    if tok.kind == "punct" and tok.text in (",", ")", ".", "]", ";"):
        return ""
    if prev.kind == "punct" and prev.text in ("(", ".", "["):
        return ""
    if (tok.kind == "op" and tok.text == "::") or (prev.kind == "op" and prev.text == "::"):
        return ""
    if tok.kind == "punct" and tok.text in ("(", "["):
        if prev.is_name and not (prev.kind == "ident" and prev.value in _SPACE_BEFORE_PAREN):
            return ""
        return " "
    return " "


# --------------------------------------------------------------------------------------------
# Relation references in a query, found from tokens (fallback when sqlglot cannot parse, and
# to know *where* in the text each reference sits so definitions can be re-bound on renames)


@dataclass(frozen=True)
class TokenRef:
    index: int  # token index where the name starts
    name: Name


def find_relation_refs(tokens: Sequence[Token]) -> Iterator[TokenRef]:
    """Relation names after FROM / JOIN (and comma-joined), and the first argument of TUMBLE/HOP."""
    n = len(tokens)
    stack: list[tuple[bool, bool]] = []  # per open paren: (in_from before it, FROM-less function)
    in_from = False
    no_from = False  # inside EXTRACT(... FROM ...) and friends, FROM is not a clause
    i = 0
    while i < n:
        tok = tokens[i]
        prev = tokens[i - 1] if i else None
        if tok.kind == "punct" and tok.text == "(":
            stack.append((in_from, no_from))
            no_from = prev is not None and prev.is_kw(*_FROM_FUNCTIONS)
            in_from = False
        elif tok.kind == "punct" and tok.text == ")":
            in_from, no_from = stack.pop() if stack else (False, False)
        elif tok.is_kw("from", "join") and not no_from and not _is_distinct_from(tokens, i):
            in_from = True
            i = yield from _ref_at(tokens, i + 1)
            continue
        elif tok.kind == "punct" and tok.text == "," and in_from:
            i = yield from _ref_at(tokens, i + 1)
            continue
        elif tok.is_kw(*_CLAUSE_ENDS):
            in_from = False
        i += 1


_FROM_FUNCTIONS = ("extract", "substring", "trim", "position", "overlay")
_CLAUSE_ENDS = (
    "where", "group", "having", "order", "limit", "union", "except", "intersect", "on", "window",
    "emit", "with", "select",
)  # fmt: skip


def _is_distinct_from(tokens: Sequence[Token], i: int) -> bool:
    return i >= 2 and tokens[i - 1].is_kw("distinct") and tokens[i - 2].is_kw("is", "not")


def _ref_at(tokens: Sequence[Token], i: int) -> Generator[TokenRef, None, int]:
    """Generator-helper: yield a reference starting at ``i`` (if any); return the next index."""
    n = len(tokens)
    if i >= n:
        return i
    tok = tokens[i]
    if tok.is_kw("lateral", "only"):
        i += 1
        if i >= n:
            return i
        tok = tokens[i]
    if not tok.is_name:
        return i
    span = _name_span(tokens, i)
    after = i + span
    if after < n and tokens[after].kind == "punct" and tokens[after].text == "(":
        # a table function: TUMBLE/HOP take a relation as first argument (docs/risingwave.md §3)
        if tok.is_kw("tumble", "hop") and span == 1:
            j = after + 1
            if j < n and tokens[j].is_name:
                inner_span = _name_span(tokens, j)
                yield TokenRef(j, _name_from(tokens, j, inner_span))
        return after
    yield TokenRef(i, _name_from(tokens, i, span))
    return after


def _name_from(tokens: Sequence[Token], i: int, span: int) -> Name:
    parts = tuple(tokens[k].value for k in range(i, i + span, 2))
    quoted = tuple(tokens[k].kind == "qident" for k in range(i, i + span, 2))
    return Name(parts, quoted)


# --------------------------------------------------------------------------------------------
# Intervals (for TUMBLE/HOP validation)

_UNIT_SECONDS = {
    "microsecond": 1e-6, "microseconds": 1e-6, "us": 1e-6,
    "millisecond": 1e-3, "milliseconds": 1e-3, "ms": 1e-3,
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60, "m": 60,
    "hour": 3600, "hours": 3600, "h": 3600, "hr": 3600, "hrs": 3600,
    "day": 86400, "days": 86400, "d": 86400,
    "week": 604800, "weeks": 604800,
}  # fmt: skip


def interval_seconds(text: str, unit: str | None = None) -> float | None:
    """Seconds in an interval literal like ``'60 seconds'``, ``'1' HOUR`` or ``'00:15:00'``."""
    text = text.strip().lower()
    if unit:
        try:
            return float(text) * _UNIT_SECONDS[unit.lower()]
        except (KeyError, ValueError):
            return None
    if re.fullmatch(r"-?\d+:\d{2}(:\d{2}(\.\d+)?)?", text):
        sign = -1 if text.startswith("-") else 1
        nums = [float(x) for x in text.lstrip("-").split(":")]
        while len(nums) < 3:
            nums.append(0.0)
        return sign * (nums[0] * 3600 + nums[1] * 60 + nums[2])
    total = 0.0
    found = False
    for num, word in re.findall(r"(-?\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if word not in _UNIT_SECONDS:
            return None
        total += float(num) * _UNIT_SECONDS[word]
        found = True
    if not found:
        try:
            return float(text)
        except ValueError:
            return None
    return total


def format_interval(seconds: float) -> str:
    """PostgreSQL-style interval text (``00:15:00``, ``1 day 02:00:00``) as RisingWave prints it."""
    whole = int(seconds)
    days, rem = divmod(whole, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    clock = f"{h:02d}:{m:02d}:{s:02d}"
    if days:
        return (
            f"{days} day{'s' if days != 1 else ''} {clock}"
            if (h or m or s)
            else (f"{days} day{'s' if days != 1 else ''}")
        )
    return clock
