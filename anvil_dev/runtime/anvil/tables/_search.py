"""`anvil.tables.SearchIterator`: the rows a search matched, read a page at a time, portable to clients as a cursor."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import anvil
from anvil.tables._row import AbstractTableClass, Row, _permission_denied
from anvil_dev import services
from anvil_dev.services.tables import Compiled
from anvil_dev.services.tables.values import Column

DEFAULT_PAGE_SIZE = 100


class SearchIterator(AbstractTableClass):
    """The rows a search matched, loaded a page at a time as they are used."""

    def __init__(
        self,
        table_id: int,
        compiled: Compiled,
        ids: list[int] | None = None,
        recompile: Callable[[], Compiled] | None = None,
    ) -> None:
        """`recompile` compiles the search again from its arguments, should a column change under it."""
        self._table_id = table_id
        self._compiled = compiled
        self._recompile = recompile
        self._page = compiled.page_size or DEFAULT_PAGE_SIZE
        self._fixed = ids is not None
        self._ids = ids
        self._first_rows: list[tuple[int, dict[str, Any]]] | None = None
        self._prefetched: dict[int, dict[str, Any]] = {}

    def _again(self) -> Callable[[], Compiled] | None:
        """For the store: compile this search again from its arguments, and keep it, should a column
        it filters by have changed since it was made (None for a client's cursor, which has none)."""
        if self._recompile is None:
            return None

        def again() -> Compiled:
            assert self._recompile is not None
            self._compiled = self._recompile()
            return self._compiled

        return again

    @property
    def _cols(self) -> list[str] | None:
        if self._compiled.only is not None:
            return list(self._compiled.only)
        return list(self._compiled.fetch) if self._compiled.fetch else None

    def _first(self) -> list[tuple[int, dict[str, Any]]]:
        """The first page of rows (one query); when that is all of them, the id list too."""
        if self._first_rows is None:
            rows = services.current().tables.select(
                self._table_id, self._compiled, limit=self._page + 1, cols=self._cols, recompile=self._again()
            )
            self._first_rows = rows[: self._page]
            self._prefetched.update(self._first_rows)
            if len(rows) <= self._page:
                self._ids = [rid for rid, _ in rows]
        return self._first_rows

    def _load_ids(self) -> list[int]:
        if self._ids is None:
            self._first()
        if self._ids is None:
            # Many rows: remember only their ids now, read their data a page at a time.
            self._ids = services.current().tables.select_ids(self._table_id, self._compiled, self._again())
        return self._ids

    def _rows(self, ids: list[int]) -> Iterator[Row]:
        st = services.current().tables
        for start in range(0, len(ids), self._page):
            chunk = ids[start : start + self._page]
            missing = [i for i in chunk if i not in self._prefetched]
            loaded = st.load_rows(self._table_id, missing, self._cols) if missing else {}
            for rid in chunk:
                data = self._prefetched.pop(rid, None) or loaded.get(rid)
                if data is not None:  # else deleted since the search: skip it
                    yield Row._make(self._table_id, rid, data, self._compiled.only)

    def __iter__(self) -> Iterator[Row]:
        return self._rows(list(self._load_ids()))

    def __len__(self) -> int:
        if self._ids is not None:
            return len(self._ids)
        return services.current().tables.count(self._table_id, self._compiled, self._again())

    def __bool__(self) -> bool:
        # Always True, as both of Anvil's (v2/_search.py:216-218; v1 has no __nonzero__,
        # _server.py LiveObjectProxy.__bool__): `if results:` never runs a query.
        return True

    def __eq__(self, other: object) -> bool:
        # Equal when they are the same search (v2 compares its capability, v1 its live object id).
        if not isinstance(other, SearchIterator):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self) -> tuple[Any, ...]:
        c = self._compiled
        return (
            self._table_id,
            c.where,
            json.dumps(c.params, default=str),
            c.order,
            tuple(self._ids) if self._fixed and self._ids is not None else None,
        )

    def __getitem__(self, index: Any) -> Any:
        v2 = services.current().tables.v2
        if isinstance(index, slice):
            return self._slice(index, v2)
        if not isinstance(index, int) and hasattr(index, "__index__"):
            index = index.__index__()
        if not isinstance(index, int):
            raise TypeError("search indices must be non-negative integers")
        if index < 0:
            if v2:
                raise ValueError("search indices must be non-negative integers")  # v2/_search.py:252-263
            raise IndexError("list index cannot be negative")  # _server.py LiveObjectProxy.__getitem__
        out_of_range = "search index out of range" if v2 else "list index out of range"
        if self._ids is None and 0 <= index < self._page:
            first = self._first()
            if index < len(first):
                rid, data = first[index]
                return Row._make(self._table_id, rid, data, self._compiled.only)
        try:
            rid = self._load_ids()[index]
        except IndexError:
            raise IndexError(out_of_range) from None
        for row in self._rows([rid]):
            return row
        return Row._make(self._table_id, rid)  # deleted since: using it raises RowDeleted

    def _slice(self, s: slice, v2: bool) -> Iterator[Row]:
        """A slice is a one-shot iterator with no len(), as on Anvil (v2/_search.py:21-72)."""
        for part in (s.start, s.stop, s.step):
            if part is None:
                continue
            if not isinstance(part, int) and not hasattr(part, "__index__"):
                raise TypeError("search slice indices must non-negative itegers (or None)")
            if part.__index__() < 0:
                if v2:
                    raise ValueError("search slice indices must non-negative itegers (or None)")
                raise Exception("list slice indices and step cannot be negative")  # _server.py
        return _OneShot(self._rows(self._load_ids()[s]))

    def refresh(self) -> None:
        if not self._fixed:
            self._ids = None
            self._first_rows = None
            self._prefetched = {}

    def delete_all_rows(self) -> None:
        st = services.current().tables
        if self._fixed:
            with_txn = not st.in_transaction()
            if with_txn:
                st.begin()
            try:
                for row in self:
                    row.delete()
            except BaseException:
                if with_txn:
                    st.rollback()
                raise
            if with_txn:
                st.commit()
        else:
            st.delete_where(self._table_id, self._compiled, self._again())
        self._ids = []

    def to_csv(self, escape_for_excel: bool = False) -> anvil.BlobMedia:
        import io

        buf = io.StringIO()
        st = services.current().tables
        st.write_csv(self._table_id, buf, list(self._load_ids()), escape_for_excel)
        name = st.table_by_id(self._table_id).name
        return anvil.BlobMedia("text/csv", buf.getvalue().encode("utf-8"), name=f"{name}.csv")

    def __repr__(self) -> str:
        return f"<anvil.tables.SearchIterator: {services.current().tables.table_by_id(self._table_id).name}>"

    def __serialize__(self, info: Any) -> Any:
        """All its rows, for trusted code; for client code, as Anvil sends a search: the first page,
        and when there are more a signed cursor the client reads further pages with (a search of
        one page or less stays a plain list of rows)."""
        if getattr(info, "remote_is_trusted", True) or self._fixed:
            return list(self)
        first = self._first()
        rows = [Row._make(self._table_id, rid, data, self._compiled.only) for rid, data in first]
        if self._ids is not None and len(self._ids) <= len(first):
            return rows
        return {"rows": rows, "more": self._cursor()}

    def _cursor(self) -> str:
        # Sealed (encrypted and authenticated): the query's values are server code's, not the client's.
        c = self._compiled
        cursor: dict[str, Any] = {
            "t": self._table_id,
            "w": c.where,
            "p": list(c.params),
            "o": c.order,
            "n": self._page,
            "cols": self._cols,
            "only": list(c.only) if c.only is not None else None,
        }
        if c.columns is not None:  # not known (a cursor of before): it stays so, left out
            cursor["c"] = [[x.name, x.type, x.sql_name, x.target] for x in c.columns]
        return services.current().tables.seal(cursor)

    @classmethod
    def from_cursor(cls, sealed: Any) -> SearchIterator:
        """The search a client's cursor names; PermissionDenied if it was altered."""
        cursor = services.current().tables.unseal(sealed)
        if not isinstance(cursor, dict):
            raise _permission_denied("Invalid search reference: its signature does not match (was it altered?)")
        only = tuple(cursor["only"]) if isinstance(cursor.get("only"), list) else None
        compiled = Compiled(
            where=str(cursor["w"]),
            params=list(cursor["p"]),
            order=str(cursor["o"]),
            page_size=int(cursor["n"]),
            only=only,
            # A cursor sealed before cursors carried their columns: not known, so a delete is refused.
            columns=tuple(Column(*c) for c in cursor["c"]) if isinstance(cursor.get("c"), list) else None,
        )
        if isinstance(cursor.get("cols"), list) and only is None:
            compiled.fetch = dict.fromkeys(cursor["cols"])
        return cls(int(cursor["t"]), compiled)

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> Any:
        if isinstance(data, dict) and "more" in data:
            return cls.from_cursor(data["more"])
        rows = [r for r in (data or []) if isinstance(r, Row)]
        if not rows or len({r._table_id for r in rows}) != 1:
            return rows
        return cls(rows[0]._table_id, Compiled(order='"_anvil_id" ASC'), [r._id for r in rows])


class _OneShot:
    """An iterator over a slice of a search: iterable once, with no len()."""

    def __init__(self, rows: Iterator[Row]) -> None:
        self._rows = rows

    def __iter__(self) -> _OneShot:
        return self

    def __next__(self) -> Row:
        return next(self._rows)
