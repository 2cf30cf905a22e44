"""The console's service panels: tables, users, sessions, tasks and the outbox, read as workers read them.

Panels read the app's services the way workers do, `services.current().<service>`; the users panel
appears when the app has the service.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, jsonify, request

from anvil_dev.host.console.access import error, protect
from anvil_dev.host.state import current

if TYPE_CHECKING:
    from anvil_dev.services import AppContext
    from anvil_dev.services.tables import TablesStore

log = logging.getLogger("anvil_dev")

bp = protect(Blueprint("anvil_dev_console_panels", __name__))

SERVICES = ("tables", "users", "sessions", "tasks", "outbox")


def app_services() -> AppContext:
    """The app's services, opened by the host at start (or here, for a console app made alone)."""
    from anvil_dev import services

    if not services.is_open():
        services.open(current().app_dir)
    return services.current()


def service_in_use(name: str) -> bool:
    """Whether to show the service's panel: for users, when the app has it on."""
    if name != "users":
        return True
    try:
        return app_services().users.options() is not None
    except Exception:  # noqa: BLE001 - show the panel: it will say what is wrong
        return True  # show the panel: it will say what is wrong


def plain(value: Any, depth: int = 0) -> Any:
    """A JSON-able rendering of a service value for display (dates as ISO text, bytes as a size)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, _dt.datetime) else value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if depth > 6:
        return "..."
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value)}
    return repr(value)


def limit(default: int = 50, most: int = 500) -> int:
    try:
        return max(1, min(most, int(request.args.get("limit", default))))
    except ValueError:
        return default


def offset() -> int:
    try:
        return max(0, int(request.args.get("offset", 0)))
    except ValueError:
        return 0


@bp.get("/_/console/api/me")
def me() -> Response:
    """Who this browser's session is logged in as: the console can then call require_user functions."""
    user_id = _session_user_id()
    email = None
    if user_id is not None:
        try:
            users = app_services().users.list_users(limit=100_000)
            email = next((u.get("email") for u in users if u.get("id") == user_id), None)
        except Exception:
            log.debug("console: cannot look up user %s", user_id, exc_info=True)
    return jsonify({"user_id": user_id, "email": email})


def _session_user_id() -> str | None:
    from anvil_dev.host.security import COOKIE_NAME

    cookies = getattr(current(), "cookies", None)
    if cookies is None:
        return None
    session_id = cookies.session_id(request.cookies.get(COOKIE_NAME))
    record = app_services().sessions.load(session_id) if session_id else None
    user_id = (record or {}).get("user_id")
    return str(user_id) if user_id else None


@bp.get("/_/console/api/tables")
def tables_list() -> Response:
    return jsonify({"tables": plain(app_services().tables.describe())})


@bp.get("/_/console/api/tables/<name>/rows")
def tables_rows(name: str) -> Response:
    search = request.args.get("search") or None
    return jsonify(plain(_browse_rows(app_services().tables, name, search, offset(), limit())))


def _browse_rows(st: TablesStore, name: str, search: str | None, offset: int, limit: int) -> dict[str, Any]:
    """A page of a table's rows, matching `search` (case-insensitive) in any text column."""
    from anvil_dev.services.tables import query as q

    info = st.table(name)
    if info is None:
        abort(error(404, f"no table {name!r} in this app"))
    columns = list(info.columns.values())
    args: tuple[Any, ...] = ()
    if search:
        pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        text_cols = [c.name for c in columns if c.type == "string"]
        args = (q.any_of(**{c: q.ilike(pattern) for c in text_cols}),)
    compiled = st.compile(info.id, args, {})
    rows = st.select(info.id, compiled, limit=limit, offset=offset)
    return {
        "columns": [{"name": c.name, "type": c.type} for c in columns],
        "rows": [{"id": f"[{info.id},{rid}]", "data": {k: _cell(v) for k, v in data.items()}} for rid, data in rows],
        "total": st.count(info.id, compiled),
    }


def _cell(value: Any) -> Any:
    """A stored value as the console shows it: links and media by reference."""
    if hasattr(value, "table_id") and hasattr(value, "row_id"):
        return {"link": f"[{value.table_id},{value.row_id}]"}
    if hasattr(value, "media_id"):
        return {"media": value.media_id}
    if isinstance(value, list):
        return [_cell(v) for v in value]
    return value


@bp.get("/_/console/api/users")
def users_list() -> Response:
    users = app_services().users.list_users(limit=limit(200, 1000))
    return jsonify({"users": plain([{k: _cell(v) for k, v in u.items()} for u in users])})


@bp.get("/_/console/api/sessions")
def sessions_list() -> Response:
    sessions = app_services().sessions.list_sessions(limit=limit(200, 1000))
    return jsonify({"sessions": plain(sessions)})


@bp.get("/_/console/api/tasks")
def tasks_list() -> Response:
    tasks = app_services().tasks.list_tasks(limit=limit(200, 1000))
    # The wire-encoded copies are for decoding in server code, not for people.
    tasks = [{k: v for k, v in t.items() if not k.endswith("_wire")} for t in tasks]
    return jsonify({"tasks": plain(tasks)})


@bp.post("/_/console/api/tasks/<task_id>/kill")
def tasks_kill(task_id: str) -> Response:
    try:
        result = app_services().tasks.kill_task(task_id)
    except LookupError as e:
        return error(404, str(e))
    if isinstance(result, dict):
        if result.get("was_running", True):
            current().bus.publish("task_killed", {"id": result.get("id", task_id), "name": result.get("name")})
        result = {k: v for k, v in result.items() if not k.endswith("_wire")}
    return jsonify({"ok": True, "result": plain(result)})


@bp.get("/_/console/api/outbox")
def outbox_list() -> Response:
    return jsonify({"messages": plain(app_services().outbox.list_messages(limit=limit(100, 1000)))})


@bp.get("/_/console/api/outbox/<message_id>")
def outbox_message(message_id: str) -> Response:
    if not message_id.isdigit():
        return error(404, f"no message {message_id!r} in the outbox")
    message = app_services().outbox.get_message(int(message_id))
    if message is None:
        return error(404, f"no message {message_id!r} in the outbox")
    message = dict(message)
    for key in ("attachments", "inline_attachments"):
        message[key] = [_attachment(a) for a in message.get(key) or []]
    return jsonify({"message": plain(message)})


@bp.get("/_/console/api/outbox/<int:message_id>.eml")
def outbox_eml(message_id: int) -> Response:
    data = app_services().outbox.message_eml(message_id)
    if data is None:
        return error(404, f"no message {message_id} in the outbox")
    return Response(
        data,
        mimetype="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="message-{message_id}.eml"'},
    )


def _attachment(a: Any) -> dict[str, Any]:
    """An attachment's description without its bytes."""
    get = a.get if isinstance(a, dict) else lambda k, d=None: getattr(a, k, d)
    content = get("content")
    return {
        "name": get("name"),
        "content_type": get("content_type"),
        "length": len(content) if isinstance(content, (bytes, bytearray, str)) else get("length"),
    }
