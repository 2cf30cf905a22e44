"""`app_tables` for the real anvil-uplink client: Anvil's v1 LiveObject protocol over our tables.

anvil-uplink 0.7.0 reaches Data Tables through LiveObjects (backends "anvil.tables.Table",
"anvil.tables.SearchIterator", "anvil.tables.Row"): a method call on one arrives as a CALL with
`liveObjectCall: {id, backend, mac, method}` (anvil/_threaded_server.py do_call), and a search
comes back as a SearchIterator LiveObject whose `iterItems` hold the first page and a `nextPage`
cursor, fetched further with `__anvil_iter_page__` (anvil/_server.py LiveObjectProxy.Iter).

Each such call becomes a call of the runtime's `anvil.private.tables.client.*` functions, which
check permissions for the caller (a server-key uplink is trusted; a client-key one is held to
client permissions), and the reply is put back into LiveObjects. Uplinks are told the tables
service is v1 (`anvil.private.get_client_config`), so a v2 app's uplink scripts use this
protocol too, rather than Accelerated Tables' capabilities.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from anvil_dev.host.uplink.rows import ROW_TYPE, rows_to_live_objects
from anvil_dev.protocol import Message, error

TABLE_TYPE = "anvil.tables.Table"
SEARCH_TYPE = "anvil.tables.SearchIterator"
TABLE_METHODS = ["search", "get", "get_by_id", "add_row", "list_columns"]
SEARCH_METHODS = ["__anvil_iter_page__", "__len__"]
PREFIX = "anvil.private.tables.client."
_MAX_SEARCHES = 1000  # per connection; the oldest are forgotten (iterating them again fails cleanly)

Post = Callable[[Message], Message]


def _shift(objects: list[Any], args_at: int, kwargs_at: int | None) -> list[Any]:
    """The objects of an uplink call's args/kwargs, re-pathed to where the new call carries them."""
    out = []
    for e in objects:
        if not isinstance(e, dict) or not isinstance(e.get("path"), list) or not e["path"]:
            continue
        head, rest = e["path"][0], e["path"][1:]
        if head == "args":
            out.append({**e, "path": ["args", args_at, *rest]})
        elif head == "kwargs" and kwargs_at is not None:
            out.append({**e, "path": ["args", kwargs_at, *rest]})
    return out


def _move(objects: list[Any], old: list[Any], new: list[Any]) -> list[dict[str, Any]]:
    """The entries under `old`, re-pathed to sit under `new`."""
    return [{**e, "path": [*new, *e["path"][len(old) :]]} for e in _under(objects, old)]


def _under(objects: list[Any], prefix: list[Any]) -> list[dict[str, Any]]:
    n = len(prefix)
    return [e for e in objects if isinstance(e, dict) and e.get("path", [])[:n] == prefix]


def table_live_objects(msg: Message) -> Message:
    """Tables (and views) in a message to an uplink as LiveObject entries; their id is the
    reference our tables accept back (its MAC included)."""
    objects = msg.get("objects") or []
    if not any(e.get("typeName") == TABLE_TYPE for e in objects if isinstance(e, dict)):
        return msg
    out = dict(msg)
    entries = []
    for e in objects:
        if isinstance(e, dict) and e.get("typeName") == TABLE_TYPE:
            path = e["path"]
            ref = _get(msg, path)
            entries.append(
                {
                    "path": path,
                    "type": ["LiveObject"],
                    "backend": TABLE_TYPE,
                    "id": json.dumps(ref, sort_keys=True, default=str),
                    "mac": "",
                    "permissions": [],
                    "methods": TABLE_METHODS,
                    "itemCache": {},
                }
            )
            out = _replace(out, path, None)
        else:
            entries.append(e)
    out["objects"] = entries
    return out


def _get(root: Any, path: list[Any]) -> Any:
    for p in path:
        try:
            root = root[p]
        except (KeyError, IndexError, TypeError):
            return None
    return root


def _replace(root: Any, path: list[Any], value: Any) -> Any:
    """A copy of `root` with the value at `path` replaced (the containers along it are copied)."""
    if not path:
        return value
    head = path[0]
    if isinstance(root, dict):
        copy = dict(root)
        copy[head] = _replace(root.get(head), path[1:], value)
        return copy
    if isinstance(root, list) and isinstance(head, int) and 0 <= head < len(root):
        copy_l = list(root)
        copy_l[head] = _replace(root[head], path[1:], value)
        return copy_l
    return root


class UplinkTables:
    """One uplink connection's searches in progress (by the id of their SearchIterator)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._searches: OrderedDict[str, Message] = OrderedDict()

    def _remember(self, search: Message) -> str:
        token = "search-" + secrets.token_urlsafe(12)
        with self._lock:
            self._searches[token] = search
            while len(self._searches) > _MAX_SEARCHES:
                self._searches.popitem(last=False)
        return token

    def _search(self, token: Any) -> Message | None:
        with self._lock:
            return self._searches.get(token) if isinstance(token, str) else None

    def translate(self, data: Message) -> tuple[Message, Post] | Message | None:
        """For a LiveObject call on a table, search or row: the call to run and how to turn its
        reply back into what the uplink expects; an error reply; or None (not ours)."""
        spec = data.get("liveObjectCall")
        if not isinstance(spec, dict) or spec.get("backend") not in (TABLE_TYPE, SEARCH_TYPE, ROW_TYPE):
            return None
        method = spec.get("method")
        args = data.get("args") or []
        kwargs = data.get("kwargs") or {}
        objects = data.get("objects") or []
        if spec["backend"] == TABLE_TYPE:
            return self._table_call(spec, str(method), args, kwargs, objects)
        if spec["backend"] == SEARCH_TYPE:
            return self._search_call(spec, str(method), args)
        return self._row_call(spec, str(method), args, kwargs, objects)

    # ---- tables ---------------------------------------------------------------------------

    def _table_call(
        self, spec: Message, method: str, args: list[Any], kwargs: dict[str, Any], objects: list[Any]
    ) -> tuple[Message, Post] | Message:
        try:
            ref = json.loads(spec.get("id") or "")
        except (TypeError, ValueError):
            return error("anvil.server.InternalError", "Invalid table reference from the uplink")
        table_entry: Message = {"path": ["args", 0], "type": ["ValueType"], "typeName": TABLE_TYPE}
        msg: Message | None
        if method == "search":
            shifted = _shift(objects, 1, 2)
            search = {"args": [ref, args, kwargs], "objects": [*shifted, table_entry]}
            msg = {
                "command": PREFIX + "search",
                "args": [ref, args, kwargs, 0, None],
                "objects": [*shifted, table_entry],
            }
            return msg, lambda reply: self._first_page(search, reply)
        if method == "get":
            msg = {
                "command": PREFIX + "get",
                "args": [ref, args, kwargs],
                "objects": [*_shift(objects, 1, 2), table_entry],
            }
        elif method == "get_by_id":
            msg = {
                "command": PREFIX + "get_by_id",
                "args": [ref, args[0] if args else None],
                "objects": [*_move(objects, ["args", 0], ["args", 1]), table_entry],
            }
        elif method == "add_row":
            msg = {
                "command": PREFIX + "add_row",
                "args": [ref, kwargs],
                "objects": [*_move(objects, ["kwargs"], ["args", 1]), table_entry],
            }
        elif method == "list_columns":
            msg = {"command": PREFIX + "list_columns", "args": [ref], "objects": [table_entry]}
        else:
            msg = None
        if msg is not None:
            return msg, lambda reply: reply
        return error(
            "anvil.server.InternalError",
            f"anvil-dev does not run Table.{method} for uplink code (it runs {', '.join(TABLE_METHODS)})",
        )

    def _first_page(self, search: Message, reply: Message) -> Message:
        """A search's reply as a SearchIterator LiveObject holding its first page."""
        if "error" in reply:
            return reply
        token = self._remember(search)
        return self._page_reply(reply, token, first=True)

    def _page_reply(self, reply: Message, token: str, first: bool) -> Message:
        page = reply.get("response") or {}
        rows = page.get("rows") or []
        next_page = len(rows) + int(page.get("offset", 0)) if page.get("more") else None
        converted = rows_to_live_objects(reply)
        objects = converted.get("objects") or []
        items_entries = {tuple(e["path"]): e for e in _under(objects, ["response", "rows"]) if len(e["path"]) == 3}
        items = []
        for i in range(len(rows)):
            entry = items_entries.get(("response", "rows", i))
            items.append(
                {k: v for k, v in entry.items() if k != "path"} if entry else {"type": ["Primitive"], "value": None}
            )
        if first:
            live = {
                "path": ["response"],
                "type": ["LiveObject"],
                "backend": SEARCH_TYPE,
                "id": token,
                "mac": "",
                "permissions": [],
                "methods": SEARCH_METHODS,
                "itemCache": {},
                "iterItems": {"items": items, "nextPage": next_page},
            }
            return {"response": None, "objects": [live], "output": reply.get("output", "")}
        # An __anvil_iter_page__ reply: {"items": [...], "nextPage": offset or None}.
        moved = [{**e, "path": ["response", "items", *e["path"][2:]]} for e in _under(objects, ["response", "rows"])]
        return {
            "response": {"items": [None] * len(rows), "nextPage": next_page},
            "objects": moved,
            "output": reply.get("output", ""),
        }

    def _search_call(self, spec: Message, method: str, args: list[Any]) -> tuple[Message, Post] | Message:
        token = spec.get("id")
        search = self._search(token)
        if search is None:
            return error("anvil.server.InternalError", "This search is no longer available to the uplink; run it again")
        if method == "__len__":
            return {
                "command": PREFIX + "length",
                "args": search["args"],
                "objects": search["objects"],
            }, lambda reply: reply
        if method == "__anvil_iter_page__":
            offset = args[0] if args and isinstance(args[0], int) else 0
            msg = {"command": PREFIX + "search", "args": [*search["args"], offset, None], "objects": search["objects"]}

            def post(reply: Message) -> Message:
                if "error" in reply:
                    return reply
                (reply.get("response") or {})["offset"] = offset
                return self._page_reply(reply, str(token), first=False)

            return msg, post
        return error("anvil.server.InternalError", f"anvil-dev does not run SearchIterator.{method} for uplinks")

    # ---- rows -----------------------------------------------------------------------------

    def _row_call(
        self, spec: Message, method: str, args: list[Any], kwargs: dict[str, Any], objects: list[Any]
    ) -> tuple[Message, Post] | Message | None:
        row = {"id": spec.get("id"), "mac": spec.get("mac")}
        if method == "get_id":
            return None  # answered by frames.local_answer
        if method == "__getitem__":
            col = args[0] if args else None
            read: Message = {
                "command": PREFIX + "get_row",
                "args": [row],
                "objects": [{"path": ["args", 0], "type": ["ValueType"], "typeName": ROW_TYPE}],
            }
            return read, lambda reply: _column(reply, col)
        entry: Message = {"path": ["args", 1], "type": ["ValueType"], "typeName": ROW_TYPE}
        values: dict[Any, Any]
        if method in ("__setitem__", "update"):
            if method == "__setitem__":
                key = args[0] if args else None
                values = {key: args[1] if len(args) > 1 else None}
                moved = _move(objects, ["args", 1], ["args", 2, key])
            else:
                values = dict(kwargs)
                moved = _move(objects, ["kwargs"], ["args", 2])
            write: Message = {"command": PREFIX + "update_row", "args": [None, row, values], "objects": [*moved, entry]}
            return write, lambda reply: _stale(reply, row["id"])
        if method == "delete":
            return {"command": PREFIX + "delete_row", "args": [None, row], "objects": [entry]}, _none
        return error("anvil.server.InternalError", f"anvil-dev does not run Row.{method} for uplink code")


def _stale(reply: Message, row_id: Any) -> Message:
    """After a write: the row's item cache in the uplink is emptied (Anvil's `cacheUpdates`,
    anvil/_server.py apply_cache_updates), so its next read comes from the server."""
    out = _none(reply)
    if "error" not in out:
        out["cacheUpdates"] = {ROW_TYPE: {row_id: {}}}
    return out


def _none(reply: Message) -> Message:
    if "error" in reply:
        return reply
    return {"response": None, "objects": [], "output": reply.get("output", "")}


def _column(reply: Message, col: Any) -> Message:
    """One column of a get_row reply (the row's data), with the objects under it."""
    if "error" in reply:
        return reply
    data = (reply.get("response") or {}).get("data") or {}
    if col not in data:
        return error("anvil.tables.NoSuchColumnError", f"No such column '{col}'")
    prefix = ["response", "data", col]
    moved = [{**e, "path": ["response", *e["path"][3:]]} for e in _under(reply.get("objects") or [], prefix)]
    return {"response": data[col], "objects": moved, "output": reply.get("output", "")}
