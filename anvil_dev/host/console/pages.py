"""The console's page, its assets, its live event stream, the app's functions and the replay of recent calls."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, send_from_directory

from anvil_dev.host.console.access import error, protect, refusal
from anvil_dev.host.console.panels import SERVICES, limit, service_in_use
from anvil_dev.host.security import is_loopback_request
from anvil_dev.host.state import HostState, current

log = logging.getLogger("anvil_dev")

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}

bp = protect(Blueprint("anvil_dev_console", __name__))


# ---- the page ---------------------------------------------------------------------------------


def console_page() -> Response:
    """The console's HTML (also what the host serves at / when the app has no index page)."""
    if not is_loopback_request():
        return refusal()
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
    bus = current().bus
    after = bus.parse_last_id(request.headers.get("Last-Event-ID") or request.args.get("after"))
    return Response(
        bus.sse(after), mimetype="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


# ---- status and functions -----------------------------------------------------------------


@bp.get("/_/console/api/status")
def status() -> Response:
    state = current()
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
            "services": {name: service_in_use(name) for name in SERVICES},
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

    return jsonify({"calls": summaries(current().dispatcher.recent.recent(limit(200, 200)))})


@bp.get("/_/console/api/calls/<int:call_id>")
def calls_failure(call_id: int) -> Response:
    """A logged call's error with its traceback's frames (names and source lines), for its result panel."""
    entry = current().dispatcher.recent.get(call_id)
    if entry is None:
        return error(404, f"no call #{call_id} in the recent calls")
    return jsonify(entry.failure())


@bp.post("/_/console/api/calls/<int:call_id>/replay")
def calls_replay(call_id: int) -> Response:
    """Run a logged call again as its caller; answers with the replay's reply and the original's beside it."""
    from anvil_dev.host.errors import Refusal
    from anvil_dev.host.routes.replay import replay

    state = current()
    try:
        done = replay(state, call_id)
    except Refusal as e:
        return error(e.code or 400, e.message)
    original = done.original
    return jsonify(
        {
            "id": done.id,
            "of": original.id,
            "command": original.command,
            "notes": done.notes,
            "reply": _with_urls(state, done.reply.message()),
            "frames": done.reply.frames,
            "original": {
                "ok": original.ok,
                "frames": original.frames,
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
