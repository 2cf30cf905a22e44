"""The Users service's settings and its users table, and whether a client made the call."""

from __future__ import annotations

import datetime
from typing import Any

from anvil import _context, server
from anvil_dev import services


def _settings() -> dict[str, Any]:
    opts = services.current().users.options()
    if opts is None:
        raise server.ServiceNotAdded("Add the Users service to your app before calling this function")
    return opts


def _table() -> Any:
    """The users data table named by the service's server_config user_table."""
    from anvil.tables import TableError, app_tables
    from anvil.tables._table import table_by_id

    name = _settings()["user_table"]
    try:
        return table_by_id(name) if isinstance(name, int) else app_tables[str(name)]
    except (KeyError, TableError):
        raise TableError(
            f"The users table '{name}' does not exist: add it to db_schema in anvil.yaml, or "
            "point the Users service's server_config user_table at your table"
        ) from None


def _find_by_email(table: Any, email: Any) -> Any:
    """The user with this email: lower-cased first (how signups store it), then exactly as given."""
    if not isinstance(email, str) or not email.strip():
        return None
    _ensure_columns(table._id, ["email"])
    for candidate in dict.fromkeys([email.strip().lower(), email.strip()]):
        user = table.get(email=candidate)
        if user is not None:
            return user
    return None


def _ensure_columns(table_id: int, names: Any) -> None:
    """Create the service's columns among `names` that the users table lacks, as Anvil's Users
    service does (users/v2/util.clj lines 241-306), whatever auto_create_missing_columns says."""
    services.current().users.ensure_columns(table_id, names)


def _write(user: Any, **values: Any) -> None:
    """Update the service's columns of a user's row, creating those the table lacks."""
    _ensure_columns(user._table_id, values)
    user.update(**values)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _from_client() -> bool:
    return not _context.current().remote_trusted
