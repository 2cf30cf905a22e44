"""`anvil.tables.query` (imported as `q`): the query operators of search() and get()."""

from __future__ import annotations

from typing import Any

from anvil.server import portable_class
from anvil_dev.services.tables import query as _query
from anvil_dev.services.tables.query import (
    QUERY_CLASSES,
    all_of,
    any_of,
    fetch_only,
    full_text_match,
    greater_than,
    greater_than_or_equal_to,
    ilike,
    less_than,
    less_than_or_equal_to,
    like,
    none_of,
    not_,
    only_cols,
    page_size,
)

__all__ = [
    "all_of",
    "any_of",
    "between",
    "fetch_only",
    "full_text_match",
    "greater_than",
    "greater_than_or_equal_to",
    "ilike",
    "less_than",
    "less_than_or_equal_to",
    "like",
    "none_of",
    "not_",
    "only_cols",
    "page_size",
    "portable_class",
]


def between(min: Any, max: Any, min_inclusive: bool = True, max_inclusive: bool = False) -> all_of:  # Anvil's names
    """Values from `min` to `max` (anvil/tables/query.py: an all_of of two comparisons)."""
    return _query.between(min, max, min_inclusive, max_inclusive)


# Anvil's wire names for the operators (they are portable, so a client can send a query).
PORTABLE_NAMES: dict[type, str] = {
    cls: f"anvil.tables.query.{cls.__name__}" for cls in QUERY_CLASSES if cls is not fetch_only
}
PORTABLE_NAMES[fetch_only] = "anvil.tables.fetch_only"

for _cls in PORTABLE_NAMES:
    _cls.__module__ = "anvil.tables.query"
