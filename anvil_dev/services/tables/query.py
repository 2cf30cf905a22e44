"""Query operators (`anvil.tables.query`) and their compilation to parameterised SQL.

Values never become part of the SQL text: every value is a `?` parameter, and column names are
quoted identifiers taken from the schema, never from the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anvil_dev.services.tables.dialect import NO_MATCH, SQLITE, Dialect
from anvil_dev.services.tables.errors import NoSuchColumnError, TableError
from anvil_dev.services.tables.schema import ROW_ID, TableInfo, quote
from anvil_dev.services.tables.values import Column, query_value, row_ref


def _fields_eq(*names: str) -> tuple[Callable[[Any], int], Callable[[Any, Any], bool]]:
    def key(self: Any) -> tuple[Any, ...]:
        return tuple(_hashable(getattr(self, n)) for n in names)

    def __hash__(self: Any) -> int:
        return hash((type(self).__name__, key(self)))

    def __eq__(self: Any, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(key(self) == key(other))

    return __hash__, __eq__


def _hashable(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    return v


class _PatternQuery:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    __hash__, __eq__ = _fields_eq("pattern")

    def __repr__(self) -> str:
        return f"q.{type(self).__name__}({self.pattern!r})"


class like(_PatternQuery):
    """Case-sensitive LIKE: % is any text, _ any one character, \\ escapes them."""


class ilike(_PatternQuery):
    """Case-insensitive LIKE."""


class _ValueQuery:
    _op = ""

    def __init__(self, value: Any) -> None:
        self.value = value

    __hash__, __eq__ = _fields_eq("value")

    def __repr__(self) -> str:
        return f"q.{type(self).__name__}({self.value!r})"


class greater_than(_ValueQuery):
    _op = ">"


class less_than(_ValueQuery):
    _op = "<"


class greater_than_or_equal_to(_ValueQuery):
    _op = ">="


class less_than_or_equal_to(_ValueQuery):
    _op = "<="


class full_text_match:
    """Rows whose text contains every word of `query` (stemmed, stop words ignored);
    with raw=True, `query` is in Postgres tsquery syntax (a & b | !c, prefix:*)."""

    def __init__(self, query: str, raw: bool = False) -> None:
        self.query = query
        self.raw = raw

    __hash__, __eq__ = _fields_eq("query", "raw")

    def __repr__(self) -> str:
        return f"q.full_text_match({self.query!r}, raw={self.raw!r})"


class OfQuery:
    """all_of, any_of and none_of: queries that combine other queries and column conditions."""

    _joiner = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    __hash__, __eq__ = _fields_eq("args", "kwargs")

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"q.{type(self).__name__}({', '.join(parts)})"


class all_of(OfQuery):
    _joiner = " AND "


class any_of(OfQuery):
    _joiner = " OR "


class none_of(OfQuery):
    _joiner = " OR "


not_ = none_of


def between(min: Any, max: Any, min_inclusive: bool = True, max_inclusive: bool = False) -> all_of:
    """Values from min to max: min included and max excluded unless told otherwise."""
    low = greater_than_or_equal_to(min) if min_inclusive else greater_than(min)
    high = less_than_or_equal_to(max) if max_inclusive else less_than(max)
    return all_of(low, high)


class page_size:
    """How many rows a search loads at a time."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    __hash__, __eq__ = _fields_eq("rows")


class fetch_only:
    """Load only these columns at first (others are loaded when read); linked=q.fetch_only(...)."""

    spec: dict[str, Any]

    def __init__(self, *only_cols: str, **linked_cols: fetch_only) -> None:
        spec: dict[str, Any] = {}
        for col in only_cols:
            if not isinstance(col, str):
                raise TypeError("columns must be strings")
            spec[col] = True
        for col, only in linked_cols.items():
            if not isinstance(only, fetch_only):
                raise TypeError("keyword arguments must use q.fetch_only()")
            spec[col] = only.spec
        self.spec = spec

    __hash__, __eq__ = _fields_eq("spec")


class only_cols:
    """Rows that show only these columns (others raise NoSuchColumnError)."""

    def __init__(self, *cols: str) -> None:
        self.cols = tuple(sorted(cols))

    __hash__, __eq__ = _fields_eq("cols")


class order_by:
    """Sort a search by a column (ascending unless told otherwise); several sort in turn."""

    def __init__(self, column_name: str, ascending: bool = True) -> None:
        self.column_name = column_name
        self.ascending = ascending

    __hash__, __eq__ = _fields_eq("column_name", "ascending")

    def __repr__(self) -> str:
        return f"order_by({self.column_name!r}, ascending={self.ascending!r})"


QUERY_CLASSES: tuple[type, ...] = (
    like,
    ilike,
    greater_than,
    less_than,
    greater_than_or_equal_to,
    less_than_or_equal_to,
    full_text_match,
    all_of,
    any_of,
    none_of,
    page_size,
    fetch_only,
    only_cols,
)


# --------------------------------------------------------------------------------------------
# Compilation


@dataclass
class Compiled:
    where: str = "TRUE"
    params: list[Any] = field(default_factory=list)
    order: str = ""
    page_size: int | None = None
    fetch: dict[str, Any] | None = None
    only: tuple[str, ...] | None = None
    # Columns compared by equality or range or sorted on: candidates for an index.
    used: set[str] = field(default_factory=set)
    # Columns searched with full_text_match (PostgreSQL indexes them with GIN).
    used_fts: set[str] = field(default_factory=set)
    # The columns its WHERE refers to, as they were when it was compiled (None: not known), which
    # `current_query` checks before each read or delete: a search made before a column was retyped
    # or removed would otherwise act on what the column no longer means. Sort columns are not
    # among them: what rows match does not depend on them.
    columns: tuple[Column, ...] | None = ()

    def stale_for(self, table: TableInfo) -> bool:
        """Whether `table`, as it is now, may have changed or lost a column the WHERE refers to."""
        if self.columns is None:
            return True
        for c in self.columns:
            now = table.columns.get(c.name)
            if now is not c and now != c:  # the same object while the schema is the same
                return True
        return False


def current_query(
    compiled: Compiled, table: TableInfo, recompile: Callable[[], Compiled] | None, for_write: bool = False
) -> Compiled:
    """`compiled`, or compiled again (`recompile`) when a column its WHERE refers to has changed since,
    as Anvil runs a search's query anew each time; a search that cannot be (a client's cursor
    holds no arguments) is refused then. A cursor from before cursors carried their columns is
    read as it is, but never deleted by (`for_write`)."""
    if (compiled.columns is None and not for_write) or not compiled.stale_for(table):
        return compiled
    if recompile is None:
        raise TableError(
            f"A column of table '{table.name}' that this search uses has changed since the search was made: "
            "search again"
        )
    return recompile()


Lookup = Callable[[str], Column]


def _missing_sort(table: TableInfo, name: Any, v2: bool) -> str:
    if v2:
        return f'Cannot sort by nonexistent column "{name}"'  # tables/v2/search.clj:58-60
    return f"No such column '{name}' in table '{table.name}'"  # tables/rpc.clj:612-617


def compile_search(
    table: TableInfo,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    lookup: Lookup,
    v2: bool = True,
    d: Dialect = SQLITE,
) -> Compiled:
    """SQL for search(*args, **kwargs) on `table`; `lookup` maps a column name to its Column.

    `v2` picks Accelerated Tables' wording where the two implementations' errors differ; `d` is
    the backend's SQL dialect.
    """
    out = Compiled()
    parts: list[str] = []
    orders: list[str] = []
    referred: dict[str, Column] = {}

    def look_up(name: str) -> Column:
        col = lookup(name)
        referred[col.name] = col
        return col

    for a in args:
        if isinstance(a, OfQuery):
            parts.append(_of_expr(a, look_up, out, d))
        elif isinstance(a, order_by):
            col = table.columns.get(str(a.column_name))
            if col is None:
                try:
                    col = lookup(str(a.column_name))
                except NoSuchColumnError:
                    raise TableError(_missing_sort(table, a.column_name, v2)) from None
            qc = quote(col.sql_name)
            # None first ascending, last descending, ties by row id (tables/v2/query.clj:314-316).
            orders.append(f"{qc} ASC NULLS FIRST" if a.ascending else f"{qc} DESC NULLS LAST")
            out.used.add(col.sql_name)
        elif isinstance(a, page_size):
            if not isinstance(a.rows, int) or a.rows < 1:
                raise ValueError(f"page_size must be a positive integer, not {a.rows!r}")
            out.page_size = a.rows
        elif isinstance(a, fetch_only):
            out.fetch = dict(a.spec)
        elif isinstance(a, only_cols):
            out.only = tuple(a.cols)
        else:
            raise TypeError(
                f"search() takes query operators (q.any_of(...), q.all_of(...), ...) and "
                f"order_by(...) as positional arguments, not {a!r:.80}; give column values "
                "as keyword arguments"
            )
    for name, value in kwargs.items():
        parts.append(_column_expr(look_up(name), value, out, d))
    out.where = " AND ".join(f"({p})" for p in parts) if parts else "TRUE"
    orders.append(f"{quote(ROW_ID)} ASC")
    out.order = ", ".join(orders)
    out.columns = tuple(referred.values())
    return out


def _of_expr(query: OfQuery, lookup: Lookup, out: Compiled, d: Dialect) -> str:
    parts = []
    for a in query.args:
        if not isinstance(a, OfQuery):
            raise TypeError(
                f"q.{type(query).__name__}() takes query operators or column=value keyword "
                f"arguments here, not {a!r:.80}"
            )
        parts.append(_of_expr(a, lookup, out, d))
    for name, value in query.kwargs.items():
        parts.append(_column_expr(lookup(name), value, out, d))
    return _combine(query, parts)


def _combine(query: OfQuery, parts: list[str]) -> str:
    if isinstance(query, all_of):
        return " AND ".join(f"({p})" for p in parts) if parts else "TRUE"
    joined = " OR ".join(f"({p})" for p in parts) if parts else "FALSE"
    if isinstance(query, none_of):
        # A missing value (NULL) is "none of" anything, so such rows match.
        return f"NOT coalesce({joined}, FALSE)"
    return joined


def _column_expr(col: Column, value: Any, out: Compiled, d: Dialect) -> str:
    qc = quote(col.sql_name)
    params = out.params
    if isinstance(value, OfQuery):
        if value.kwargs:
            raise TableError(
                f"q.{type(value).__name__}() for column '{col.name}' takes values or query "
                "operators, not keyword arguments"
            )
        return _combine(value, [_column_expr(col, a, out, d) for a in value.args])
    if isinstance(value, _PatternQuery):
        if not isinstance(value.pattern, str):
            raise TableError(f"q.{type(value).__name__}() needs a string pattern, not {value.pattern!r:.80}")
        if isinstance(value, like):
            return d.like(col, qc, value.pattern, params)
        return d.ilike(col, qc, value.pattern, params)
    if isinstance(value, _ValueQuery):
        out.used.add(col.sql_name)
        param = d.param(col, query_value(col, value.value))
        if param is NO_MATCH:
            return "FALSE"
        params.append(param)
        return f"{qc} {value._op} ?"
    if isinstance(value, full_text_match):
        out.used_fts.add(col.sql_name)
        return d.full_text(col, qc, str(value.query), bool(value.raw), params)
    if isinstance(value, (order_by, page_size, fetch_only, only_cols)):
        raise TypeError(f"{type(value).__name__}() is not a value for column '{col.name}'")
    return _equality(col, value, out, d)


def _equality(col: Column, value: Any, out: Compiled, d: Dialect) -> str:
    qc = quote(col.sql_name)
    if value is None:
        out.used.add(col.sql_name)
        return f"{qc} IS NULL"
    if col.type == "media":
        raise TableError(f"Cannot search on media column '{col.name}'")
    if col.type == "simpleObject":
        # Anvil's rule: an object matches every value that contains it (keys, list items).
        try:
            wanted = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise TableError(f"Cannot search simple object column '{col.name}' for {value!r:.80}: {e}") from None
        return d.json_contains(qc, wanted, out.params)
    if col.type == "link_multiple":
        items = value if isinstance(value, (list, tuple)) else [value]
        parts = []
        for item in items:
            ref = row_ref(item)
            if ref is None:
                raise TableError(f"Column '{col.name}' links to rows: search it with a list of rows, not {item!r:.80}")
            parts.append(d.links_to(qc, ref.row_id if col.target in (None, ref.table_id) else -1, out.params))
        return " AND ".join(parts) if parts else "TRUE"
    out.used.add(col.sql_name)
    param = d.param(col, query_value(col, value))
    if param is NO_MATCH:
        return "FALSE"
    out.params.append(param)
    return f"{qc} = ?"
