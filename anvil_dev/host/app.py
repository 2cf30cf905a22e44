"""The Flask app of `anvil-dev serve`: /_/call, media, the browser client, theme assets, console."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_file, send_from_directory

from anvil_dev import wire
from anvil_dev.appdir import AppDir
from anvil_dev.host.dispatch import Dispatcher
from anvil_dev.host.media import MediaLinks
from anvil_dev.host.sessions import COOKIE_NAME, SessionCookies
from anvil_dev.protocol import Caller, Message, Reply, error, http_status
from anvil_dev.services.mediastore import MediaStore

log = logging.getLogger("anvil_dev")

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MAX_JSON_BODY = 16 << 20
MAX_REQUEST_BODY = 2 << 30
AS_HEADER = "X-Anvil-Dev-As"
TOKEN_HEADER = "X-Anvil-Dev-Token"
CLIENT_HEADER = "X-Anvil-Dev-Client"

_STATUS = {
    "anvil.server.NoServerFunctionError": 404,
    "anvil.server.PermissionDenied": 403,
    "anvil.users.AuthenticationFailed": 401,
    "anvil.server.SerializationError": 400,
    "anvil.server.TimeoutError": 504,
    "anvil.server.StackOverflow": 400,
    "anvil.server.UplinkDisconnectedError": 502,
    "anvil.server.RuntimeUnavailableError": 503,
}


@dataclass
class HostState:
    """What the routes need: reachable as current_app.config["ANVIL_DEV"]."""

    app_dir: AppDir
    engine: Any
    dispatcher: Dispatcher
    bus: Any
    cookies: SessionCookies
    media: MediaLinks
    cli_token: str
    syntax_error: dict[str, Any] | None = None
    uplink: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()


def _json_error(status: int, type_name: str, message: str) -> Response:
    return Response(json.dumps(error(type_name, message)), status=status, mimetype="application/json")


def create_app(state: HostState) -> Flask:
    app = Flask("anvil_dev", static_folder=None)
    app.config["ANVIL_DEV"] = state
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BODY

    @app.before_request
    def refuse_foreign_host_names() -> Response | None:
        # DNS rebinding: a site whose name is made to resolve to 127.0.0.1 would otherwise be
        # "same-origin" with this server and could call its functions from a visitor's browser.
        if _is_loopback_name(request.environ.get("SERVER_NAME", "")) and not _is_loopback_name(request.host):
            return _json_error(403, "anvil.server.PermissionDenied",
                               f"Host {request.host!r} refused: this server listens on loopback only, so open it "
                               "as http://127.0.0.1:PORT or http://localhost:PORT (or serve with --host)")
        return None

    @app.errorhandler(413)
    def too_large(_e: Any) -> Response:
        return _json_error(413, "anvil.server.SerializationError",
                           "Tried to pass too much data to a server function - please use Media objects "
                           "to transfer large amounts of data.")

    @app.post("/_/call")
    def call() -> Response:
        origin = request.headers.get("Origin")
        if origin is not None and origin != request.host_url.rstrip("/"):
            return _json_error(403, "anvil.server.PermissionDenied",
                               f"Cross-origin call from {origin} refused: calls must come from this app's own pages")
        mimetype = request.mimetype
        if mimetype == "application/json":
            if (request.content_length or 0) > MAX_JSON_BODY:
                return too_large(None)
            raw = request.get_data(cache=False)
            if len(raw) > MAX_JSON_BODY:
                return too_large(None)
            parsed = _parse_call(raw)
            if isinstance(parsed, Response):
                return parsed
            msg = parsed
            if _has_media(msg):
                return _json_error(400, "anvil.server.SerializationError",
                                   "Media in a JSON call must be sent as multipart/form-data parts")
        elif mimetype == "multipart/form-data":
            parsed = _parse_multipart(state.media.store)
            if isinstance(parsed, Response):
                return parsed
            msg = parsed
        else:
            return _json_error(415, "anvil.server.InternalError",
                               "Calls must be sent as application/json or multipart/form-data "
                               f"(got {mimetype or 'no content type'})")
        caller, new_session = _caller(state)
        if isinstance(caller, Response):
            return caller
        reply = state.dispatcher.call(msg, caller)
        return _reply_response(state, reply, new_session)

    @app.get("/_/media/<token>")
    def media(token: str) -> Response:
        found = state.media.resolve(token)
        if found is None:
            abort(404)
        media_id, mime, name = found
        mime = mime if isinstance(mime, str) else None  # a Media's content_type and name are server code's
        name = name if isinstance(name, str) else None
        try:
            path = state.media.store.path(media_id)
        except ValueError:
            abort(404)
        if not path.is_file():
            abort(404)
        return send_file(path, mimetype=mime or "application/octet-stream", download_name=name or media_id,
                         as_attachment=False, conditional=True, max_age=0)

    @app.post("/_/dev/email")
    def deliver_email() -> Response:
        """`anvil-dev email deliver`: only a process that can read .anvil-dev/ has the token."""
        if not _same_secret(request.headers.get(TOKEN_HEADER, ""), state.cli_token):
            return _json_error(403, "anvil.server.PermissionDenied", "Delivering email needs the app's CLI token")
        media_id = state.media.store.put_bytes(request.get_data())
        msg = {"command": "email:handle_message", "args": [None], "kwargs": {}, "objects": [
            {"path": ["args", 0], "type": ["DataMedia"], "id": media_id, "mime-type": "message/rfc822",
             "name": "message.eml"}]}
        caller = Caller(client_type="email", ip=request.remote_addr, trusted=True, call_stack=[{"type": "email"}])
        reply = state.dispatcher.call(msg, caller, scoped=True)
        return _reply_response(state, reply, None)

    @app.get("/_/health")
    def health() -> Response:
        return Response(json.dumps({"ok": True, "app": state.app_dir.path.name}), mimetype="application/json")

    @app.get("/_/anvil.js")
    def anvil_js() -> Response:
        return send_from_directory(STATIC_DIR, "anvil.js", mimetype="text/javascript", max_age=0)

    @app.get("/_/theme/<path:name>")
    def theme(name: str) -> Response:
        return _asset(state.app_dir, name)

    @app.get("/")
    def index() -> Response:
        if (state.app_dir.theme_assets / "index.html").is_file():
            return _asset(state.app_dir, "index.html")
        from anvil_dev.host import console

        return console.console_page()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.route("/_/api", methods=methods, defaults={"subpath": ""})
    @app.route("/_/api/<path:subpath>", methods=methods)
    def http_endpoint(subpath: str) -> Response:
        return _endpoint_call(state, "http:", "/" + subpath)

    @app.route("/<path:subpath>", methods=methods)
    def app_route(subpath: str) -> Response:
        if subpath.startswith("_/"):
            abort(404)
        return _endpoint_call(state, "route:", "/" + subpath)

    try:
        from anvil_dev.host import console

        console.init_app(app)
    except ImportError:  # pragma: no cover - the console is optional while it is being built
        pass
    return app


def _is_loopback_name(host: str) -> bool:
    """True for 127.x.x.x, ::1, localhost and *.localhost, with or without a port."""
    import ipaddress

    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host in ("localhost", "localhost.localdomain", "ip6-localhost") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _asset(app_dir: AppDir, name: str) -> Response:
    root = app_dir.theme_assets.resolve()
    # send_from_directory refuses '..' and absolute paths; resolve() also stops symlinks out of assets/.
    try:
        target = (root / name).resolve()
    except (OSError, ValueError):
        abort(404)
    if not target.is_relative_to(root) or not target.is_file():
        abort(404)
    return send_from_directory(root, str(target.relative_to(root)), max_age=0)


def _endpoint_call(state: HostState, prefix: str, path: str) -> Response:
    """An HTTP request to an @http_endpoint (/_/api/...) or @route: run its function, shape the reply."""
    command = prefix + path
    # Most apps have no routes: answer a stray /favicon.ico without spending a worker on it.
    if not any(f["name"].startswith(prefix) for f in state.describe().get("functions", [])) and not (
            state.uplink is not None and state.uplink.match(command)):
        return Response(f"Not found: {path}\n", status=404, mimetype="text/plain")
    body = request.get_data(cache=True)
    objects: list[dict[str, Any]] = []
    if body:
        media_id = state.media.store.put_bytes(body)
        objects.append({"path": ["kwargs", "body"], "type": ["DataMedia"], "id": media_id,
                        "mime-type": request.mimetype or "application/octet-stream", "name": None})
    form = request.form.to_dict() if request.mimetype == "application/x-www-form-urlencoded" else {}
    kwargs = {
        "method": request.method, "path": path, "query_params": request.args.to_dict(), "form_params": form,
        "headers": {k.lower(): v for k, v in request.headers.items()}, "remote_address": request.remote_addr,
        "origin": request.host_url.rstrip("/"), "body": None,
    }
    msg = {"command": command, "args": [], "kwargs": kwargs, "objects": objects}
    caller = Caller(client_type="http", ip=request.remote_addr, session_id=None, trusted=False,
                    call_stack=[{"type": "http"}])
    answer = state.dispatcher.call(msg, caller, scoped=True)
    if answer.error is not None:
        err = answer.error
        if err.get("type") == "anvil.server.NoServerFunctionError":
            return Response(f"No {prefix.rstrip(':')} endpoint matches {path}\n", status=404, mimetype="text/plain")
        text = f"{err.get('type')}: {err.get('message')}\n"
        return Response(text, status=_STATUS.get(str(err.get("type")), 500), mimetype="text/plain")
    reply = answer.message()
    resp = reply.get("response") or {}
    headers = resp.get("headers") or {}
    status = int(resp.get("status") or 200)
    media_entry = next((e for e in reply.get("objects", []) if e.get("path") == ["response", "body"]
                        and e.get("type") == ["DataMedia"]), None)
    if media_entry is not None:
        out = send_file(state.media.store.path(media_entry["id"]),
                        mimetype=media_entry.get("mime-type") or "application/octet-stream", max_age=0,
                        download_name=media_entry.get("name") or "download")
        out.status_code = status
    else:
        out = Response(resp.get("body") or "", status=status, mimetype="text/plain")
    for k, v in headers.items():
        out.headers[k] = v
    return out


def _parse_call(raw: bytes | str) -> Message | Response:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        return _json_error(400, "anvil.server.InternalError", f"Malformed JSON in call body: {e}")
    except RecursionError:
        msg = None
    # Deeper values could not reach server code anyway (RecursionError in some process on the way);
    # brackets are counted first so that ordinary calls skip the walk.
    opening = raw.count(b"[") + raw.count(b"{") if isinstance(raw, bytes) else raw.count("[") + raw.count("{")
    deep = wire.too_deep(msg) if msg is not None and opening > wire.MAX_DEPTH else None
    if msg is None or deep is not None:
        where = f" (at {wire.format_path(deep[:6])}...)" if deep else ""
        return _json_error(400, "anvil.server.SerializationError",
                           f"Call body nested more than {wire.MAX_DEPTH} levels deep{where}")
    if not isinstance(msg, dict):
        return _json_error(400, "anvil.server.InternalError", "A call body must be a JSON object")
    command = msg.get("command")
    if not isinstance(command, str) or not command:
        return _json_error(400, "anvil.server.InternalError", "A call body needs \"command\": the function's name")
    for key, kind in (("args", list), ("kwargs", dict), ("objects", list)):
        if key in msg and not isinstance(msg[key], kind):
            return _json_error(400, "anvil.server.InternalError",
                               f"\"{key}\" must be a JSON {'array' if kind is list else 'object'}, "
                               f"not {type(msg[key]).__name__}")
    for entry in msg.get("objects", []):
        path = entry.get("path") if isinstance(entry, dict) else None
        # Values are put back only inside the arguments: not over them, nor elsewhere in the call.
        if not isinstance(path, list) or len(path) < 2 or path[0] not in ("args", "kwargs"):
            return _json_error(400, "anvil.server.SerializationError",
                               f"Malformed entry in 'objects': its \"path\" must be a list that starts with "
                               f"\"args\" or \"kwargs\" and names an argument (got {entry!r:.200})")
    return {"command": command, "args": msg.get("args", []), "kwargs": msg.get("kwargs", {}),
            "objects": msg.get("objects", [])}


def _has_media(msg: Message) -> bool:
    return any(isinstance(e, dict) and e.get("type") == ["DataMedia"] for e in msg.get("objects", []))


def _parse_multipart(store: MediaStore) -> Message | Response:
    raw = request.form.get("json")
    if raw is None:
        return _json_error(400, "anvil.server.InternalError", "A multipart call needs a 'json' part holding the call")
    msg = _parse_call(raw)
    if isinstance(msg, Response):
        return msg
    stored: dict[str, str] = {}  # part name -> media id: a part named twice is one media, stored once
    for entry in msg["objects"]:
        if isinstance(entry, dict) and entry.get("type") == ["DataMedia"]:
            name = str(entry.get("id"))
            part = request.files.get(name)
            if part is None:
                return _json_error(400, "anvil.server.SerializationError",
                                   f"Media at {entry.get('path')} has no part named {entry.get('id')!r}")
            if name not in stored:
                stored[name], _length = store.put_stream(part.stream)  # type: ignore[arg-type]
            entry["id"] = stored[name]
            # Anything but a string (or a null name) would break the download URL made from them.
            if not isinstance(entry.get("mime-type"), str):
                entry["mime-type"] = part.mimetype or "application/octet-stream"
            if "name" not in entry or not isinstance(entry["name"], (str, type(None))):
                entry["name"] = part.filename
    return msg


def _caller(state: HostState) -> tuple[Caller | Response, str | None]:
    """The caller of this request: its session (new if the cookie is missing or bad) and `--as` user."""
    session_id = state.cookies.session_id(request.cookies.get(COOKIE_NAME))
    new_session = None
    if session_id is None:
        session_id = new_session = state.cookies.new_id()
    as_user = request.headers.get(AS_HEADER)
    if as_user is not None:
        token = request.headers.get(TOKEN_HEADER, "")
        if not _same_secret(token, state.cli_token):
            return _json_error(403, "anvil.server.PermissionDenied",
                               "Calling as another user needs the token from the app's .anvil-dev/ directory "
                               "(use `anvil-dev call --as EMAIL` on the machine that serves the app)"), None
    via = request.headers.get(CLIENT_HEADER)
    caller = Caller(client_type="browser", ip=request.remote_addr, session_id=session_id, trusted=False,
                    call_stack=[{"type": "browser"}], user_email_override=as_user,
                    via=via if via in ("cli", "python") else None)
    return caller, new_session


def _same_secret(a: str, b: str) -> bool:
    import hmac

    return bool(a) and hmac.compare_digest(a.encode(), b.encode())


def _reply_response(state: HostState, reply: Reply, new_session: str | None) -> Response:
    if reply.session_id:
        new_session = reply.session_id  # a login moved this caller to a new session (no fixation of the old id)
    if reply.ok and reply.has_media:
        message = reply.message()
        state.media.add_urls(message)
        reply.replace_message(message)
    elif reply.ok:
        state.media.maybe_sweep()
    resp = Response(reply.body, status=http_status(reply.error), mimetype="application/json")
    if new_session is not None:
        resp.set_cookie(COOKIE_NAME, state.cookies.cookie_for(new_session), httponly=True, samesite="Lax",
                        max_age=30 * 24 * 3600, path="/")
    return resp


def build_state(app_dir: AppDir, engine: Any, bus: Any, origin: str) -> HostState:
    secret = app_dir.secret_key()
    store = MediaStore(app_dir.media_dir)
    dispatcher = Dispatcher(engine, bus, origin)
    return HostState(app_dir=app_dir, engine=engine, dispatcher=dispatcher, bus=bus,
                     cookies=SessionCookies(secret), media=MediaLinks(store, secret), cli_token=app_dir.cli_token())


