"""The data tables' exceptions, shared by the service and the runtime's `anvil.tables`.

They are defined here (not in the runtime) because the service raises them; `anvil.tables`
re-exports these very classes and registers them under Anvil's names ("anvil.tables.TableError").
"""

from __future__ import annotations


class TableError(Exception):
    """Superclass of all table exceptions."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class RowDeleted(TableError):
    """A row that has been deleted was read, written, or followed through a link."""


class NoSuchColumnError(TableError):
    """A column that the table does not have was named."""


class TransactionConflict(TableError):
    """The transaction could not get the database (another one held it too long); retry it."""


class QuotaExceededError(TableError):
    pass


for _cls in (TableError, RowDeleted, NoSuchColumnError, TransactionConflict, QuotaExceededError):
    _cls.__module__ = "anvil.tables"
