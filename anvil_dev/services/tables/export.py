"""A store's tables as the host and the CLI show them: descriptions, and rows as CSV."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any, TextIO

from anvil_dev.services.tables.query import Compiled
from anvil_dev.services.tables.schema import ROW_ID, quote
from anvil_dev.services.tables.values import RowRef, csv_cell

if TYPE_CHECKING:
    from anvil_dev.services.tables.store import TablesStore

_CHUNK = 500  # rows read per query


def write_csv(
    store: TablesStore, table_id: int, out: TextIO, ids: list[int] | None = None, escape_for_excel: bool = False
) -> None:
    """Rows (these ids in this order, else all) as CSV: an ID column, then the table's columns."""
    info = store.table_by_id(table_id)
    cols = list(info.columns.values())
    writer = csv.writer(out)
    writer.writerow(["ID", *[c.name for c in cols]])
    if ids is None:
        ids = store.select_ids(table_id, Compiled(order=f"{quote(ROW_ID)} ASC"))
    for i in range(0, len(ids), _CHUNK):
        rows = store.load_rows(table_id, ids[i : i + _CHUNK])
        for rid in ids[i : i + _CHUNK]:
            data = rows.get(rid)
            if data is None:
                continue
            cells = [f"[{table_id},{rid}]"] + [csv_cell(c, data[c.name], _ref_text) for c in cols]
            if escape_for_excel:
                cells = ["'" + x if x[:1] in ("=", "+", "-", "@") else x for x in cells]
            writer.writerow(cells)


def describe(store: TablesStore) -> list[dict[str, Any]]:
    """Each table: name, title, id, client/server access, columns (name, type, target), rows."""
    s = store.schema()
    out = []
    for info in s.by_name.values():
        out.append(
            {
                "name": info.name,
                "title": info.title,
                "id": info.id,
                "client": info.client,
                "server": info.server,
                "rows": store.count(info.id),
                "columns": [
                    {
                        "name": c.name,
                        "type": c.type,
                        **({"target": s.by_id[c.target].name} if c.target in s.by_id else {}),
                    }
                    for c in info.columns.values()
                ],
            }
        )
    return out


def _ref_text(ref: RowRef) -> str:
    return f"[{ref.table_id},{ref.row_id}]"
