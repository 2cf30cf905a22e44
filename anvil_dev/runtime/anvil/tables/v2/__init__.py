"""`anvil.tables.v2`: the same tables as `anvil.tables` (which follows the app's enable_v2 setting)."""

from __future__ import annotations

from anvil.tables import Row, SearchIterator, Table, app_tables, get_table_by_id

__all__ = ["Row", "SearchIterator", "Table", "app_tables", "get_table_by_id"]
