"""Query analysis for the RisingWave DOUBLE (sqlglot where it parses, tokens otherwise).

Finds the relations a query depends on and applies the bind/plan-time checks RisingWave makes
on the queries the operator emits:

* TUMBLE/HOP first argument must be a relation name: a subquery there is a *parse* error in
  RisingWave ("syntax error at or near FROM": the parser reads ``(SELECT *`` as an expression and
  stops at FROM; ``parse_table_factor`` in src/sqlparser/src/parser.rs, v2.2.0 … v3.0.3), any other
  complex argument the binder's message (docs/risingwave.md §3);
* ``generate_series`` over timestamptz only from v2.3.0 (the overload in
  src/expr/impl/src/table_function/generate_series.rs arrived then);
* HOP window size must be an exact multiple of the slide, both positive (docs/risingwave.md §3);
* in streaming queries (MVs, sinks) ``NOW()`` is only allowed in WHERE/HAVING/ON/FROM and must
  have the temporal-filter shape ``input_expr cmp now_expr`` (docs/risingwave.md §4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from .errors import SqlError, parse_error
from .sqltext import Name, Token, find_relation_refs, format_interval, interval_seconds, tokenize

GENERATE_SERIES_TZ_ERROR = (
    "function generate_series(timestamp with time zone, timestamp with time zone, interval) does not exist"
)

# docs/risingwave.md §3 (identical in v2.1, v2.5, v2.8)
WINDOW_FIRST_ARG_ERROR = (
    "The 1st arg of window table function should be a table name (incl. source, CTE, view) but not "
    "complex structure (subquery, join, another table function). Consider using an intermediate CTE "
    "or view as workaround."
)
# docs/risingwave.md §4; "None" names the SELECT list. The Some(...) spellings for GROUP BY / FILTER
# are UNCERTAIN (only the prefix is documented): match on the prefix.
NOW_CLAUSE_ERROR = (
    "For streaming queries, `NOW()` function is only allowed in `WHERE`, `HAVING`, `ON` and `FROM`. "
    "Found in clause: {clause}"
)
# docs/risingwave.md §4
NOW_SHAPE_ERROR = (
    "Conditions containing now must be in the form of `input_expr cmp now_expr` or `now_expr cmp "
    "input_expr`, where `input_expr` references a column and contains no `now()`, and `now_expr` is "
    "a non-decreasing expression contains `now()`."
)

_EOWC = re.compile(r"\s+EMIT\s+ON\s+WINDOW\s+CLOSE\s*$", re.IGNORECASE)


@dataclass
class QueryAnalysis:
    relations: list[Name] = field(default_factory=list)  # in order of appearance, de-duplicated
    output_columns: list[str] = field(default_factory=list)  # "*" when not derivable
    parsed_by_sqlglot: bool = False


def analyze_query(
    query: str, *, streaming: bool, version: tuple[int, int, int] = (99, 0, 0)
) -> QueryAnalysis:
    body = _EOWC.sub("", query.strip())
    _check_parse_level(body, version)
    try:
        tree = sqlglot.parse_one(body, read="risingwave")
    except (ParseError, TokenError, ValueError):
        return _analyze_tokens(body)
    if not isinstance(tree, exp.Query):
        return _analyze_tokens(body)
    ctes = {_fold(cte.args["alias"].this) for cte in tree.find_all(exp.CTE) if cte.args.get("alias")}
    relations: list[Name] = []

    def add(name: Name) -> None:
        if len(name.parts) == 1 and name.name in ctes:
            return
        if name not in relations:
            relations.append(name)

    for table in tree.find_all(exp.Table):
        func = table.this
        if isinstance(func, exp.Anonymous) and func.name.lower() in ("tumble", "hop"):
            first = _check_window_function(func)
            if first is not None:
                add(first)
            continue
        if isinstance(func, exp.Identifier) and table.name:
            parts = [p for p in (table.args.get("catalog"), table.args.get("db"), func) if p]
            add(Name(tuple(_fold(p) for p in parts), tuple(bool(p.quoted) for p in parts)))
    if streaming:
        _check_now(tree)
    return QueryAnalysis(relations, _output_columns(tree), parsed_by_sqlglot=True)


def _check_parse_level(body: str, version: tuple[int, int, int]) -> None:
    """Checks on the token stream, before any binder-level analysis (see the module docstring)."""
    tokens = tokenize(body)
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1 : i + 3]
        if tok.is_kw("tumble", "hop") and len(nxt) == 2 and nxt[0].text == "(" and nxt[1].text == "(":
            depth = 0
            for later in tokens[i + 1 :]:
                depth += {"(": 1, ")": -1}.get(later.text, 0) if later.kind == "punct" else 0
                if depth <= 0:
                    break
                if depth >= 2 and later.is_kw("from"):
                    raise parse_error(body, later.start, "syntax error at or near FROM")
        if tok.is_kw("generate_series") and version < (2, 3, 0) and _timestamptz_args(tokens[i + 1 :]):
            raise SqlError(GENERATE_SERIES_TZ_ERROR)


def _timestamptz_args(rest: list[Token]) -> bool:
    """Whether a call's first two arguments are evidently timestamptz (NOW() or a cast to it)."""
    depth, args, words = 0, 0, []
    for tok in rest:
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
            if depth == 0:
                break
        elif tok.kind == "punct" and tok.text == "," and depth == 1:
            args += 1
            if args == 2:
                break
        else:
            words.append(tok.value if tok.kind == "ident" else tok.text)
    text = " ".join(words)
    return "now" in words or "timestamptz" in words or "timestamp with time zone" in text


def _fold(ident: exp.Expression) -> str:
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted else ident.this.lower()
    return ident.name.lower()


def _check_window_function(func: exp.Anonymous) -> Name | None:
    args = func.expressions
    kind = func.name.upper()
    if not args:
        return None
    first = args[0]
    if isinstance(first, exp.Column):
        parts = first.parts
        name = Name(tuple(_fold(p) for p in parts), tuple(bool(p.quoted) for p in parts))
    elif isinstance(first, exp.Identifier):
        name = Name((_fold(first),), (bool(first.quoted),))
    else:
        raise SqlError(WINDOW_FIRST_ARG_ERROR)  # docs/risingwave.md §3
    if kind == "HOP" and len(args) >= 4:
        slide, size = _interval(args[2]), _interval(args[3])
        if slide is not None and size is not None:
            if slide <= 0 or size <= 0:
                raise SqlError(
                    f"window_size {format_interval(size)} and window_slide {format_interval(slide)} "
                    "must be positive"
                )
            ratio = size / slide
            if abs(ratio - round(ratio)) > 1e-9:
                # docs/risingwave.md §3 ("window_size … cannot be divided by window_slide"); full text
                # from src/frontend/src/planner/relation.rs
                raise SqlError(
                    "Invalid arguments for HOP window function: window_size "
                    f"{format_interval(size)} cannot be divided by window_slide {format_interval(slide)}"
                )
    return name


def _interval(node: exp.Expression) -> float | None:
    if isinstance(node, exp.Interval):
        unit = node.args.get("unit")
        return interval_seconds(node.this.name if node.this else "", unit.name if unit else None)
    return None


def _contains_now(node: exp.Expression) -> bool:
    return any(_is_now(n) for n in _walk_same_query(node))


def _is_now(node: exp.Expression) -> bool:
    return isinstance(node, exp.CurrentTimestamp) or (
        isinstance(node, exp.Anonymous) and node.name.lower() == "now"
    )


def _walk_same_query(node: exp.Expression) -> list[exp.Expression]:
    """All nodes under ``node`` without descending into nested queries."""
    out: list[exp.Expression] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        for child in cur.iter_expressions():
            if isinstance(child, exp.Query | exp.Subquery):
                continue
            stack.append(child)
    return out


def _check_now(tree: exp.Expression) -> None:
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            for node in _walk_same_query(projection):
                if _is_now(node):
                    in_filter = any(isinstance(a, exp.Filter) for a in _ancestors(node, projection))
                    clause = "Some(Filter)" if in_filter else "None"
                    raise SqlError(NOW_CLAUSE_ERROR.format(clause=clause))
        group = select.args.get("group")
        if group is not None and _contains_now(group):
            raise SqlError(NOW_CLAUSE_ERROR.format(clause="Some(GroupBy)"))
        for key in ("where", "having"):
            clause_node = select.args.get(key)
            if clause_node is not None:
                _check_temporal_condition(clause_node.this)
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                _check_temporal_condition(on)


def _ancestors(node: exp.Expression, stop: exp.Expression) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    cur = node.parent
    while cur is not None and cur is not stop:
        out.append(cur)
        cur = cur.parent
    return out


_COMPARISONS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _check_temporal_condition(cond: exp.Expression) -> None:
    """docs/risingwave.md §4: `input_expr cmp now_expr`; several ANDed; at most one per OR."""
    for conjunct in _split(cond, exp.And):
        if not _contains_now(conjunct):
            continue
        if isinstance(conjunct, exp.Or):
            disjuncts = _split(conjunct, exp.Or)
            with_now = [d for d in disjuncts if _contains_now(d)]
            if len(with_now) > 1:
                raise SqlError(NOW_SHAPE_ERROR)
            _check_now_comparison(with_now[0])
        else:
            _check_now_comparison(conjunct)


def _split(node: exp.Expression, kind: type[exp.Connector]) -> list[exp.Expression]:
    node = node.unnest() if isinstance(node, exp.Paren) else node
    if isinstance(node, kind):
        return _split(node.left, kind) + _split(node.right, kind)
    return [node]


def _check_now_comparison(node: exp.Expression) -> None:
    node = node.unnest() if isinstance(node, exp.Paren) else node
    if isinstance(node, _COMPARISONS):
        sides = [node.left, node.right]
    elif isinstance(node, exp.Between):
        sides = [node.this, node.args["low"], node.args["high"]]
    else:
        raise SqlError(NOW_SHAPE_ERROR)
    now_sides = [s for s in sides if _contains_now(s)]
    input_sides = [s for s in sides if not _contains_now(s)]
    for side in now_sides:
        if any(isinstance(n, exp.Column) for n in _walk_same_query(side)):
            raise SqlError(NOW_SHAPE_ERROR)
        if sum(1 for n in _walk_same_query(side) if _is_now(n)) != 1:
            raise SqlError(NOW_SHAPE_ERROR)
    if not input_sides or not any(
        isinstance(n, exp.Column) for s in input_sides for n in _walk_same_query(s)
    ):
        raise SqlError(NOW_SHAPE_ERROR)


def _output_columns(tree: exp.Expression) -> list[str]:
    query = tree
    while isinstance(query, exp.SetOperation):
        query = query.this
    if not isinstance(query, exp.Select):
        return ["*"]
    names: list[str] = []
    for projection in query.expressions:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            names.append("*")
        else:
            alias = projection.alias_or_name
            names.append(alias if alias else f"?column?{len(names)}")
    return names


# ---------------------------------------------------------------- fallback: tokens only


def _analyze_tokens(query: str) -> QueryAnalysis:
    tokens = tokenize(query)
    ctes = _token_cte_names(tokens)
    relations: list[Name] = []
    for ref in find_relation_refs(tokens):
        if len(ref.name.parts) == 1 and ref.name.name in ctes:
            continue
        if ref.name not in relations:
            relations.append(ref.name)
    return QueryAnalysis(relations, ["*"], parsed_by_sqlglot=False)


def _token_cte_names(tokens: list[Token]) -> set[str]:
    names: set[str] = set()
    for i in range(1, len(tokens) - 2):
        prev, tok, nxt, after = tokens[i - 1], tokens[i], tokens[i + 1], tokens[i + 2]
        if (
            (prev.is_kw("with", "recursive") or (prev.kind == "punct" and prev.text == ","))
            and tok.is_name
            and nxt.is_kw("as")
            and after.kind == "punct"
            and after.text == "("
        ):
            names.add(tok.value)
    return names
