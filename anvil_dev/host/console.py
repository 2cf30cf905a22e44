"""The dev console: a page at /_/console, its live event stream and its JSON API.

Only loopback clients get it (it can see every user, session and outbox message), and only
under a loopback Host name, so a web page that rebinds its DNS to 127.0.0.1 cannot read it.
Panels for services (tables, users, sessions, tasks, outbox) read the app's services the way
workers do, `services.current().<service>`; the users panel appears when the app has the service.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as _dt
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, abort, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException

from anvil_dev.host.security import is_foreign_origin, is_loopback_request
from anvil_dev.host.state import HostState, current

if TYPE_CHECKING:
    from anvil_dev.services import AppContext
    from anvil_dev.services.tables import TablesStore

log = logging.getLogger("anvil_dev")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}

bp = Blueprint("anvil_dev_console", __name__)


def init_app(app: Flask) -> None:
    """Register the console's routes on the host's Flask app."""
    app.register_blueprint(bp)


def _state() -> HostState:
    return current()


# ---- who may see it (the checks are host/security.py's) ----------------------------------------


def _refusal() -> Response:
    port = request.host.rsplit(":", 1)[1] if request.host.rsplit(":", 1)[-1].isdigit() else "PORT"
    return Response(
        f"The anvil-dev console is only served to this machine: open http://127.0.0.1:{port}/_/console there.\n",
        status=403,
        mimetype="text/plain",
    )


@bp.before_request
def _only_loopback() -> Response | None:
    if not is_loopback_request():
        return _refusal()
    if request.method == "POST":
        # No other site may drive the console's actions with this browser (CSRF): a same-origin
        # JSON request is something a cross-site form cannot send.
        if is_foreign_origin():
            return _error(403, "cross-origin requests to the console are refused")
        if not request.is_json:
            return _error(415, "console actions take a JSON body")
    return None


def _error(status: int, message: str) -> Response:
    resp = jsonify({"error": message})
    resp.status_code = status
    return resp


# ---- the page ---------------------------------------------------------------------------------


def console_page() -> Response:
    """The console's HTML (also what the host serves at / when the app has no index page)."""
    if not is_loopback_request():
        return _refusal()
    resp = send_from_directory(STATIC_DIR, "console.html", mimetype="text/html", max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/_/console")
@bp.get("/_/console/")
def page() -> Response:
    return console_page()


@bp.get("/_/console/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    resp = send_from_directory(STATIC_DIR, name, mimetype=ASSETS[name], max_age=0)
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/_/console/events")
def events() -> Response:
    bus = _state().bus
    after = bus.parse_last_id(request.headers.get("Last-Event-ID") or request.args.get("after"))
    return Response(
        bus.sse(after), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


# ---- status and functions -----------------------------------------------------------------


@bp.get("/_/console/api/status")
def status() -> Response:
    state = _state()
    try:
        described = state.describe() or {}
    except Exception as e:  # the console must still load to show what is wrong
        log.exception("console: describe() failed")
        described = {"functions": [], "import_error": {"type": type(e).__name__, "message": str(e), "trace": []}}
    functions = [
        dict(f, params=parse_signature(f.get("signature") or ""))
        for f in described.get("functions") or []
        if _client_callable(str(f.get("name", "")))
    ]
    functions.sort(key=lambda f: (str(f.get("module") or ""), str(f.get("name"))))
    app_dir = state.app_dir
    return jsonify(
        {
            "app": {"name": _app_name(app_dir), "path": str(app_dir.path)},
            "functions": functions,
            "import_error": described.get("import_error"),
            "syntax_error": getattr(state, "syntax_error", None),
            "services": {name: _service_in_use(name) for name in SERVICES},
        }
    )


def _client_callable(name: str) -> bool:
    """App functions a browser may call: not built-ins, tasks, endpoints or routes."""
    return bool(name) and ":" not in name and not name.startswith("anvil.")


def _app_name(app_dir: Any) -> str:
    try:
        return str(app_dir.config.get("name") or app_dir.path.name)
    except Exception:  # noqa: BLE001 - a broken anvil.yaml must not take the console down
        return str(app_dir.path.name)


def parse_signature(signature: str) -> list[dict[str, Any]] | None:
    """The parameters of a Python signature string like "(a, b=1, *args, c, **kw)", or None.

    Each is {"name", "kind": positional|keyword|varargs|varkw, "default": source text or None,
    "required": bool}; the console draws one input per parameter from this.
    """
    text = signature.strip()
    start = text.find("(")
    if start < 0:
        return None
    text = text[start:]
    try:
        tree = ast.parse(f"def _f{text}:\n    pass\n")
        fn = tree.body[0]
    except SyntaxError:
        return None
    if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    a = fn.args
    params: list[dict[str, Any]] = []
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for arg, default in zip(positional, defaults, strict=True):
        params.append(_param(arg.arg, "positional", default))
    if a.vararg:
        params.append(_param(a.vararg.arg, "varargs", None, required=False))
    for arg, kw_default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(_param(arg.arg, "keyword", kw_default))
    if a.kwarg:
        params.append(_param(a.kwarg.arg, "varkw", None, required=False))
    return params


def _param(name: str, kind: str, default: ast.expr | None, required: bool | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "default": ast.unparse(default) if default is not None else None,
        "required": (default is None) if required is None else required,
    }


# ---- recent calls and their replay (host/replay.py) ---------------------------------------------


@bp.get("/_/console/api/calls")
def calls_list() -> Response:
    """The recent calls, newest first, with the ids the log shows."""
    from anvil_dev.host.routes.replay import summaries

    return jsonify({"calls": summaries(_state().dispatcher.recent.recent(_limit(200, 200)))})


@bp.post("/_/console/api/calls/<int:call_id>/replay")
def calls_replay(call_id: int) -> Response:
    """Run a logged call again as its caller; answers with the replay's reply and the original's beside it."""
    from anvil_dev.host.errors import Refusal
    from anvil_dev.host.routes.replay import replay

    state = _state()
    try:
        done = replay(state, call_id)
    except Refusal as e:
        return _error(e.code or 400, e.message)
    original = done.original
    return jsonify(
        {
            "id": done.id,
            "of": original.id,
            "command": original.command,
            "notes": done.notes,
            "reply": _with_urls(state, done.reply.message()),
            "original": {
                "ok": original.ok,
                "user": original.user,
                "result_size": original.result_size,
                "reply": _with_urls(state, json.loads(original.result)) if original.result else None,
            },
        }
    )


def _with_urls(state: HostState, message: dict[str, Any]) -> dict[str, Any]:
    """A reply message with download URLs for its media, as /_/call gives them."""
    if any(isinstance(e, dict) and e.get("type") == ["DataMedia"] for e in message.get("objects") or ()):
        state.media.add_urls(message)
    return message


# ---- service panels -------------------------------------------------------------------------

SERVICES = ("tables", "users", "sessions", "tasks", "outbox")


def _services() -> AppContext:
    """The app's services, opened by the host at start (or here, for a console app made alone)."""
    from anvil_dev import services

    if not services.is_open():
        services.open(_state().app_dir)
    return services.current()


def _service_in_use(name: str) -> bool:
    """Whether to show the service's panel: for users, when the app has it on."""
    if name != "users":
        return True
    try:
        return _services().users.options() is not None
    except Exception:  # noqa: BLE001 - show the panel: it will say what is wrong
        return True  # show the panel: it will say what is wrong


@bp.errorhandler(Exception)
def _api_failure(e: Exception) -> Any:
    """A service that fails answers with its error as JSON, for the panel to show."""
    if isinstance(e, HTTPException):
        return e
    log.exception("console: %s failed", request.path)
    return _error(500, f"{type(e).__name__}: {e}")


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


def _limit(default: int = 50, most: int = 500) -> int:
    try:
        return max(1, min(most, int(request.args.get("limit", default))))
    except ValueError:
        return default


def _offset() -> int:
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
            users = _services().users.list_users(limit=100_000)
            email = next((u.get("email") for u in users if u.get("id") == user_id), None)
        except Exception:
            log.debug("console: cannot look up user %s", user_id, exc_info=True)
    return jsonify({"user_id": user_id, "email": email})


def _session_user_id() -> str | None:
    from anvil_dev.host.security import COOKIE_NAME

    cookies = getattr(_state(), "cookies", None)
    if cookies is None:
        return None
    session_id = cookies.session_id(request.cookies.get(COOKIE_NAME))
    record = _services().sessions.load(session_id) if session_id else None
    user_id = (record or {}).get("user_id")
    return str(user_id) if user_id else None


@bp.get("/_/console/api/tables")
def tables_list() -> Response:
    return jsonify({"tables": plain(_services().tables.describe())})


@bp.get("/_/console/api/tables/<name>/rows")
def tables_rows(name: str) -> Response:
    search = request.args.get("search") or None
    return jsonify(plain(_browse_rows(_services().tables, name, search, _offset(), _limit())))


def _browse_rows(st: TablesStore, name: str, search: str | None, offset: int, limit: int) -> dict[str, Any]:
    """A page of a table's rows, matching `search` (case-insensitive) in any text column."""
    from anvil_dev.services.tables import query as q

    info = st.table(name)
    if info is None:
        abort(_error(404, f"no table {name!r} in this app"))
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
    users = _services().users.list_users(limit=_limit(200, 1000))
    return jsonify({"users": plain([{k: _cell(v) for k, v in u.items()} for u in users])})


@bp.get("/_/console/api/sessions")
def sessions_list() -> Response:
    sessions = _services().sessions.list_sessions(limit=_limit(200, 1000))
    return jsonify({"sessions": plain(sessions)})


@bp.get("/_/console/api/tasks")
def tasks_list() -> Response:
    tasks = _services().tasks.list_tasks(limit=_limit(200, 1000))
    # The wire-encoded copies are for decoding in server code, not for people.
    tasks = [{k: v for k, v in t.items() if not k.endswith("_wire")} for t in tasks]
    return jsonify({"tasks": plain(tasks)})


@bp.post("/_/console/api/tasks/<task_id>/kill")
def tasks_kill(task_id: str) -> Response:
    try:
        result = _services().tasks.kill_task(task_id)
    except LookupError as e:
        return _error(404, str(e))
    if isinstance(result, dict):
        if result.get("was_running", True):
            _state().bus.publish("task_killed", {"id": result.get("id", task_id), "name": result.get("name")})
        result = {k: v for k, v in result.items() if not k.endswith("_wire")}
    return jsonify({"ok": True, "result": plain(result)})


@bp.get("/_/console/api/outbox")
def outbox_list() -> Response:
    return jsonify({"messages": plain(_services().outbox.list_messages(limit=_limit(100, 1000)))})


@bp.get("/_/console/api/outbox/<message_id>")
def outbox_message(message_id: str) -> Response:
    if not message_id.isdigit():
        return _error(404, f"no message {message_id!r} in the outbox")
    message = _services().outbox.get_message(int(message_id))
    if message is None:
        return _error(404, f"no message {message_id!r} in the outbox")
    message = dict(message)
    for key in ("attachments", "inline_attachments"):
        message[key] = [_attachment(a) for a in message.get(key) or []]
    return jsonify({"message": plain(message)})


@bp.get("/_/console/api/outbox/<int:message_id>.eml")
def outbox_eml(message_id: int) -> Response:
    data = _services().outbox.message_eml(message_id)
    if data is None:
        return _error(404, f"no message {message_id} in the outbox")
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
