"""Data table rows as the anvil-uplink client knows them: v1 LiveObjects with an item cache.

Inside anvil-dev a row travels as the portable class `anvil.tables.Row` (`{"id", "table", "mac",
"data"}`), which anvil-uplink 0.7.0 cannot decode. Rows sent to an uplink become LiveObject
entries (backend "anvil.tables.Row") whose `itemCache` holds the columns the row was sent with,
so `row["email"]` and `require_user=` predicates work in uplink code; rows an uplink sends back
become `anvil.tables.Row` references again. Columns that cannot live in an item cache (media,
lists of links, simple objects holding dates) are left out of it.
"""

from __future__ import annotations

from typing import Any

ROW_TYPE = "anvil.tables.Row"
ROW_METHODS = ["__getitem__", "__setitem__", "get_id", "update", "delete"]


def _get(root: Any, path: list[Any]) -> Any:
    for p in path:
        try:
            root = root[p]
        except (KeyError, IndexError, TypeError):
            return None
    return root


def _set(root: Any, path: list[Any], value: Any) -> None:
    parent = _get(root, path[:-1])
    try:
        parent[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        pass


def _is(entry: Any, kind: str) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("type"), list) and kind in entry["type"]


def rows_to_live_objects(msg: dict[str, Any]) -> dict[str, Any]:
    """A copy of an outgoing message with its Row entries turned into LiveObject entries."""
    objects = msg.get("objects") or []
    if not any(_is(e, "ValueType") and e.get("typeName") == ROW_TYPE for e in objects):
        return msg
    entries = [dict(e) for e in objects]
    rows = [e for e in entries if _is(e, "ValueType") and e.get("typeName") == ROW_TYPE]
    consumed: set[int] = set()
    # Deepest first: a linked row is already a LiveObject when the row holding it is built.
    for row in sorted(rows, key=lambda e: -len(e["path"])):
        path = list(row["path"])
        data = _get(msg, path)
        data = data if isinstance(data, dict) else {}
        inside = [
            (i, e)
            for i, e in enumerate(entries)
            if i not in consumed and e is not row and len(e["path"]) > len(path) and e["path"][: len(path)] == path
        ]
        cache: dict[str, Any] = {}
        columns: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
        for col, value in columns.items():
            col_path = [*path, "data", col]
            exact = [e for _, e in inside if e["path"] == col_path]
            deeper = [e for _, e in inside if len(e["path"]) > len(col_path) and e["path"][: len(col_path)] == col_path]
            if exact and not deeper and not _is(exact[0], "DataMedia"):
                cache[col] = {k: v for k, v in exact[0].items() if k != "path"}
            elif not exact and not deeper:
                cache[col] = {"type": ["Primitive"], "value": value}
        consumed.update(i for i, _ in inside)
        row.clear()
        row.update(
            {
                "type": ["LiveObject"],
                "path": path,
                "backend": ROW_TYPE,
                "id": data.get("id"),
                "mac": data.get("mac"),
                "permissions": ["read", "write"],
                "methods": ROW_METHODS,
                "itemCache": cache,
            }
        )
    out = _copy_tree(msg, [e["path"] for e in rows])
    for row in rows:
        _set(out, row["path"], None)
    out["objects"] = [e for i, e in enumerate(entries) if i not in consumed]
    return out


def live_objects_to_rows(msg: dict[str, Any]) -> None:
    """Turn the Row LiveObjects in an incoming message into `anvil.tables.Row` references, in place."""
    for entry in msg.get("objects") or []:
        if _is(entry, "LiveObject") and entry.get("backend") == ROW_TYPE and isinstance(entry.get("path"), list):
            _set(msg, entry["path"], {"id": entry.get("id"), "mac": entry.get("mac")})
            path = entry["path"]
            entry.clear()
            entry.update({"path": path, "type": ["ValueType"], "typeName": ROW_TYPE})


def _copy_tree(msg: dict[str, Any], paths: list[list[Any]]) -> dict[str, Any]:
    """Copy the containers along `paths`, so that setting values there leaves `msg` untouched."""
    out = dict(msg)
    for path in paths:
        node: Any = out
        for p in path[:-1]:
            try:
                child = node[p]
            except (KeyError, IndexError, TypeError):
                break
            if isinstance(child, dict):
                child = dict(child)
            elif isinstance(child, list):
                child = list(child)
            else:
                break
            node[p] = child
            node = child
    return out
