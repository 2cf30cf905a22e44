"""Data tables over the app's SQLite database: the store (`store.py`), its schema, values,
queries, text matching and exceptions.

The store of an app is its context's `services.current().tables` (or `services.open(app).tables`);
these names are the package's public face, for the runtime's `anvil.tables`, the host and the CLI.
"""

from __future__ import annotations

from anvil_dev.services.tables.errors import (
    NoSuchColumnError,
    QuotaExceededError,
    RowDeleted,
    TableError,
    TransactionConflict,
)
from anvil_dev.services.tables.query import Compiled
from anvil_dev.services.tables.store import AUTO_INDEX_MIN_ROWS, TablesStore
from anvil_dev.services.tables.values import MediaRef, RowRef

__all__ = [
    "AUTO_INDEX_MIN_ROWS",
    "Compiled",
    "MediaRef",
    "NoSuchColumnError",
    "QuotaExceededError",
    "RowDeleted",
    "RowRef",
    "TableError",
    "TablesStore",
    "TransactionConflict",
]
