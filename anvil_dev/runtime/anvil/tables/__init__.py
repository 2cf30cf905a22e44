"""`anvil.tables`: the app's Data Tables, stored in its SQLite database (anvil_dev.services.tables)."""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any

from anvil.tables import query
from anvil.tables._row import Row
from anvil.tables._search import SearchIterator
from anvil.tables._table import AppTableIterator, AppTables, Table, get_table_by_id
from anvil_dev import services
from anvil_dev.services.tables import (
    NoSuchColumnError,
    QuotaExceededError,
    RowDeleted,
    TableError,
    TransactionConflict,
)
from anvil_dev.services.tables.query import order_by

from .query import fetch_only

__all__ = [
    "AppTableIterator",
    "AppTables",
    "NoSuchColumnError",
    "QuotaExceededError",
    "Row",
    "RowDeleted",
    "SearchIterator",
    "Table",
    "TableError",
    "Transaction",
    "TransactionConflict",
    "app_tables",
    "batch",
    "batch_delete",
    "batch_update",
    "fetch_only",
    "get_connection_string",
    "get_table_by_id",
    "in_transaction",
    "order_by",
]

order_by.__module__ = "anvil.tables"
app_tables = AppTables()
_MAX_ATTEMPTS = 18


class Transaction:
    """`with anvil.tables.Transaction():` - everything inside commits together, or not at all.

    It reads one snapshot; a write after another transaction changed the data raises
    TransactionConflict (see anvil_dev.services.tables.store). An exception inside the block, or
    abort(), rolls it back. `relaxed=True` is Anvil's REPEATABLE READ on PostgreSQL; SQLite's
    snapshots make it behave as the default SERIALIZABLE, which conflicts at least as often.
    """

    def __init__(self, relaxed: bool = False) -> None:
        self._aborting = False
        self._isolation = "relaxed" if relaxed else None

    def __enter__(self) -> Transaction:
        services.current().tables.begin(relaxed=self._isolation == "relaxed")
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        st = services.current().tables
        if self._aborting or exc is not None:
            st.rollback()
        else:
            st.commit()

    def abort(self) -> None:
        """Roll back everything this transaction wrote, when it ends."""
        self._aborting = True


def in_transaction(maybe_f: Callable[..., Any] | None = None, relaxed: bool | None = None) -> Any:
    """Run the decorated function in a transaction, retrying it (18 attempts) on TransactionConflict.

    As on Anvil (services/anvil/tables/__init__.py:201-240): no joining an open transaction (that
    raises "You already have a transaction open here"), back-off random() * 1.5**n * 0.05 s.
    """

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def new_f(*args: Any, **kwargs: Any) -> Any:
            n = 0
            while True:
                try:
                    with Transaction(relaxed=bool(relaxed)):
                        return f(*args, **kwargs)
                except TransactionConflict:
                    n += 1
                    if n >= _MAX_ATTEMPTS:
                        raise
                    time.sleep(random.random() * (1.5**n) * 0.05)

        reregister = getattr(f, "_anvil_reregister", None)
        if reregister is not None:
            reregister(new_f)
        return new_f

    return wrap if maybe_f is None else wrap(maybe_f)


class _Batch:
    """`batch_update`/`batch_delete`/`batch` (Accelerated Tables): writes here are immediate, so a no-op."""

    def __enter__(self) -> _Batch:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


batch_update = _Batch()
batch_delete = _Batch()
batch = _Batch()


def get_connection_string(via_host: str | None = None, via_port: int | None = None) -> str:
    db = services.current().tables.db
    raise TableError(
        "get_connection_string() is for Anvil's hosted Postgres; anvil-dev keeps the tables in "
        + ("SQLite at " if db.dialect == "sqlite" else "")
        + db.name
    )


def portable_types() -> dict[str, type]:
    """The classes that cross the wire, by their Anvil names."""
    types: dict[str, type] = {
        "anvil.tables.Row": Row,
        "anvil.tables.SearchIterator": SearchIterator,
        "anvil.tables.Table": Table,
        "anvil.tables.order_by": order_by,
    }
    types.update({name: cls for cls, name in query.PORTABLE_NAMES.items()})
    return types


def _register() -> None:
    try:
        from anvil import server
        from anvil._errors import register_exception_type
    except ImportError:  # the runtime without anvil.server (unit tests of this package alone)
        return
    for name, cls in portable_types().items():
        server.portable_class(cls, name)
    from anvil._errors import AnvilWrappedError

    if TableError.__bases__ != (AnvilWrappedError,):
        # Anvil's TableError derives from AnvilWrappedError (services/anvil/tables/_errors.py:6); the
        # service defines it without importing `anvil`, so it is re-based here, once per process.
        TableError.__bases__ = (AnvilWrappedError,)
    for exc in (TableError, RowDeleted, NoSuchColumnError, TransactionConflict, QuotaExceededError):
        register_exception_type(f"anvil.tables.{exc.__name__}", exc)
    from anvil.tables import _client  # noqa: F401 - registers anvil.private.tables.client.*


_register()
