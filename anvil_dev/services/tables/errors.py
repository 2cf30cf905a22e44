"""The data tables' exceptions, shared by the service and the runtime's `anvil.tables`.

They are defined here (not in the runtime) because the service raises them; `anvil.tables`
re-exports these very classes and registers them under Anvil's names ("anvil.tables.TableError").
On Anvil `TableError` derives from `anvil.server.AnvilWrappedError`
(services/anvil/tables/_errors.py:6); the service cannot import `anvil` (the host never does), so
the runtime re-bases `TableError` onto its `AnvilWrappedError` when `anvil.tables` is imported.
"""

from __future__ import annotations


class _ServiceError(Exception):
    """TableError's base until the runtime re-bases it (it gives the instance layout a Python
    subclass of Exception has, which `__bases__` assignment needs)."""


class TableError(_ServiceError):
    """Superclass of all table exceptions."""

    def __init__(self, message: object = "") -> None:  # Anvil's signature
        super().__init__(message)
        if "message" not in self.__dict__:  # else set by AnvilWrappedError (a wire error dict)
            self.message = str(message)

    def __str__(self) -> str:
        return self.message


class RowDeleted(TableError):
    """A row that has been deleted was read, written, or followed through a link."""


class NoSuchColumnError(TableError):
    """A column that the table does not have was named."""


def column_not_created(name: str) -> NoSuchColumnError:
    """Anvil's error for a write that names a missing column where none may be created: v1's,
    and client code's in both implementations (tables/rpc.clj:362-366)."""
    return NoSuchColumnError(
        f"Row update failed: Column '{name}' does not exist and automatic column creation is disabled."
    )


class TransactionConflict(TableError):
    """Another transaction changed data this one read; it was aborted (in_transaction retries it)."""


class QuotaExceededError(TableError):
    pass


CONFLICT_MESSAGE = "Another transaction has changed this data; aborting"  # tables/util.clj:82
NESTED_MESSAGE = "You already have a transaction open here"  # tables/util.clj:485


for _cls in (TableError, RowDeleted, NoSuchColumnError, TransactionConflict, QuotaExceededError):
    _cls.__module__ = "anvil.tables"
