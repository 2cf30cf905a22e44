"""/_/call: a browser's or client's call of a server function, as JSON or multipart (with media)."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, InternalServerError
from werkzeug.http import parse_cookie
from werkzeug.wrappers import Request

from anvil_dev import timeline, wire
from anvil_dev.host import security
from anvil_dev.host.errors import Refusal, too_much_data
from anvil_dev.host.keepalive import offer_response, response_sent
from anvil_dev.host.security import COOKIE_NAME
from anvil_dev.host.state import HostState, current
from anvil_dev.protocol import Caller, Message, Reply, http_status
from anvil_dev.services.mediastore import MediaStore

MAX_JSON_BODY = 16 << 20
READ_PIECE = 64 << 10  # as werkzeug's LimitedStream reads
AS_HEADER = "X-Anvil-Dev-As"
# On a failed call's response: its id in the recent calls, where `anvil-dev call` and the console find
# its traceback with names and source lines (/_/dev/calls/ID, /_/console/api/calls/ID).
CALL_ID_HEADER = "X-Anvil-Dev-Call"
CLIENT_HEADER = "X-Anvil-Dev-Client"

bp = Blueprint("call", __name__)
# The host's Flask app is named "anvil_dev": Flask logs a route's exception on this logger.
_flask_log = logging.getLogger("anvil_dev")


@bp.post("/_/call")
def call() -> Response | SentElsewhere:
    return handle_call(request, current())


def handle_call(req: Request, state: HostState, body_length: int | None = None) -> Response | SentElsewhere:
    """A call: the route's work, given the request (Flask's, or one `CallsWithoutFlask` made).
    `body_length`: a JSON body's Content-Length, known to be plain and within bounds, to read the
    body by without werkzeug's stream wrappers."""
    if timeline.ON:
        timeline.host_mark("request")
    security.refuse_foreign_origin(req)
    mimetype = req.mimetype
    raw: bytes | None = None
    if mimetype == "application/json":
        if body_length is not None:
            raw = _read_body(req.environ["wsgi.input"], body_length)
        else:
            if (req.content_length or 0) > MAX_JSON_BODY:
                raise too_much_data()
            raw = req.get_data(cache=False)
            if len(raw) > MAX_JSON_BODY:
                raise too_much_data()
        msg = _parse_call(raw)
        if _has_media(msg):
            raise Refusal(
                400, "anvil.server.SerializationError", "Media in a JSON call must be sent as multipart/form-data parts"
            )
    elif mimetype == "multipart/form-data":
        msg = _parse_multipart(state.media.store, req)
    else:
        raise Refusal(
            415,
            "anvil.server.InternalError",
            f"Calls must be sent as application/json or multipart/form-data (got {mimetype or 'no content type'})",
        )
    caller, new_session = _caller(state, req)
    # The body as the client sent it goes on to the child, which parses it once more: cheaper than
    # encoding the parsed call again (a multipart call's media ids are rewritten, so it is encoded).
    # A new session's cookie is the host's to set: then the child may not write the response.
    offer = offer_response(req.environ) if raw is not None and new_session is None else None
    release = state.engine.hold_replacements()
    try:
        reply, entry = state.dispatcher.call_recorded(msg, caller, raw=raw, offer=offer)
        if reply.written or reply.connection_broken:
            response_sent(req.environ, broken=reply.connection_broken)
            state.media.maybe_sweep()
            resp: Response | SentElsewhere = SentElsewhere()
        else:
            resp = reply_response(state, reply, new_session)
            if entry is not None and not reply.ok:
                resp.headers[CALL_ID_HEADER] = str(entry.id)
    except BaseException:
        if offer is not None and not offer.take_for_host():
            # The child has written (or is writing) the response: no error response after it.
            response_sent(req.environ, broken=True)
        release()
        raise
    finally:
        if offer is not None:
            offer.close()
    # werkzeug closes the response once it has written it: the spare's replacement is forked then,
    # when the caller has its answer.
    if timeline.ON:
        resp.call_on_close(timeline.host_done)  # before `release`, which forks the next spare
    resp.call_on_close(release)
    return resp


class SentElsewhere:
    """The WSGI response to a call whose response another process wrote (or broke off): nothing is
    written for it (`keepalive.response_sent`); werkzeug's Response cost ~14 us to build and run
    for that, a call. As a Response, it runs its `call_on_close` functions when the server closes
    it; under Flask (a chunked JSON call) Flask wraps it in one."""

    def __init__(self) -> None:
        self._on_close: list[Callable[[], Any]] = []

    def call_on_close(self, func: Callable[[], Any]) -> Callable[[], Any]:
        self._on_close.append(func)
        return func

    def __call__(self, environ: dict[str, Any], start_response: Any) -> SentElsewhere:
        start_response("200 OK", [("Content-Length", "0")])
        return self

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def close(self) -> None:
        for func in self._on_close:
            func()


class CallsWithoutFlask:
    """WSGI middleware (the Flask app's `wsgi_app`) that serves a JSON call with a Content-Length
    itself, and hands every other request to Flask: Flask's request context, URL matching and hooks
    cost ~90 us a request on a 2-core machine, about half of it before the route runs, for the one
    request that every click makes. It does what Flask would around `handle_call`: the app's Host
    check first, a refusal answered as its own response, any other exception logged as Flask logs
    it and answered with a 500. Multipart and chunked calls, which Flask's MAX_CONTENT_LENGTH
    bounds, go to Flask."""

    def __init__(self, flask_wsgi: Any, state: HostState) -> None:
        self.flask_wsgi = flask_wsgi
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if (
            environ.get("PATH_INFO") != "/_/call"
            or environ.get("REQUEST_METHOD") != "POST"
            or not environ.get("CONTENT_LENGTH")
            # Chunked: werkzeug then reads past any Content-Length, which only Flask's limit bounds.
            or "HTTP_TRANSFER_ENCODING" in environ
            or not environ.get("CONTENT_TYPE", "").startswith("application/json")
        ):
            return self.flask_wsgi(environ, start_response)
        req = Request(environ)
        # A plain length within bounds is read by directly; any other goes werkzeug's way (a 413, or
        # no body), as under Flask. Short enough for int() before it is parsed.
        length = environ["CONTENT_LENGTH"]
        body_length = int(length) if len(length) <= 9 and length.isascii() and length.isdigit() else None
        if body_length is not None and body_length > MAX_JSON_BODY:
            body_length = None
        try:
            security.refuse_foreign_host(req)
            resp = handle_call(req, self.state, body_length)
        except HTTPException as e:  # a Refusal renders itself, as under Flask
            return e.get_response(environ)(environ, start_response)
        except Exception:  # noqa: BLE001 - as Flask answers it: logged, a 500, the connection kept
            _flask_log.exception("Exception on /_/call [POST]")
            return InternalServerError()(environ, start_response)
        return resp(environ, start_response)


def _read_body(stream: Any, length: int) -> bytes:
    """Exactly `length` bytes of the request's body (werkzeug's LimitedStream, which get_data reads
    through, cost ~6 us a call); a body that ends short is a disconnected client's, as werkzeug
    answers it (400). Past `READ_PIECE` it is read a piece at a time, as werkzeug reads: a buffered
    reader's read(n) allocates n bytes at once, so each connection that declared 16 MB and sent
    little would hold a 16 MB allocation (address space: its pages are touched only as bytes come)."""
    pieces: list[bytes] = []
    got = 0
    try:
        while got < length:
            piece = stream.read(min(READ_PIECE, length - got))
            if not piece:
                raise ClientDisconnected()
            pieces.append(piece)
            got += len(piece)
    except (OSError, ValueError):
        raise ClientDisconnected() from None
    return b"".join(pieces)  # one piece, a call's usual body, is returned as it is: no copy


def _parse_call(raw: bytes | str) -> Message:
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise Refusal(400, "anvil.server.InternalError", f"Malformed JSON in call body: {e}") from None
    except RecursionError:
        msg = None
    # Deeper values could not reach server code anyway (RecursionError in some process on the way);
    # brackets are counted first so that ordinary calls skip the walk.
    opening = raw.count(b"[") + raw.count(b"{") if isinstance(raw, bytes) else raw.count("[") + raw.count("{")
    deep = wire.too_deep(msg) if msg is not None and opening > wire.MAX_DEPTH else None
    if msg is None or deep is not None:
        where = f" (at {wire.format_path(deep[:6])}...)" if deep else ""
        raise Refusal(
            400, "anvil.server.SerializationError", f"Call body nested more than {wire.MAX_DEPTH} levels deep{where}"
        )
    if not isinstance(msg, dict):
        raise Refusal(400, "anvil.server.InternalError", "A call body must be a JSON object")
    command = msg.get("command")
    if not isinstance(command, str) or not command:
        raise Refusal(400, "anvil.server.InternalError", 'A call body needs "command": the function\'s name')
    for key, kind in (("args", list), ("kwargs", dict), ("objects", list)):
        if key in msg and not isinstance(msg[key], kind):
            raise Refusal(
                400,
                "anvil.server.InternalError",
                f'"{key}" must be a JSON {"array" if kind is list else "object"}, not {type(msg[key]).__name__}',
            )
    for entry in msg.get("objects", []):
        path = entry.get("path") if isinstance(entry, dict) else None
        # Values are put back only inside the arguments: not over them, nor elsewhere in the call.
        if not isinstance(path, list) or len(path) < 2 or path[0] not in ("args", "kwargs"):
            raise Refusal(
                400,
                "anvil.server.SerializationError",
                f"Malformed entry in 'objects': its \"path\" must be a list that starts with "
                f'"args" or "kwargs" and names an argument (got {entry!r:.200})',
            )
    return {
        "command": command,
        "args": msg.get("args", []),
        "kwargs": msg.get("kwargs", {}),
        "objects": msg.get("objects", []),
    }


def _has_media(msg: Message) -> bool:
    return any(isinstance(e, dict) and e.get("type") == ["DataMedia"] for e in msg.get("objects", []))


def _parse_multipart(store: MediaStore, req: Request) -> Message:
    raw = req.form.get("json")
    if raw is None:
        raise Refusal(400, "anvil.server.InternalError", "A multipart call needs a 'json' part holding the call")
    msg = _parse_call(raw)
    stored: dict[str, str] = {}  # part name -> media id: a part named twice is one media, stored once
    for entry in msg["objects"]:
        if isinstance(entry, dict) and entry.get("type") == ["DataMedia"]:
            name = str(entry.get("id"))
            part = req.files.get(name)
            if part is None:
                raise Refusal(
                    400,
                    "anvil.server.SerializationError",
                    f"Media at {entry.get('path')} has no part named {entry.get('id')!r}",
                )
            if name not in stored:
                stored[name], _length = store.put_stream(part.stream)  # type: ignore[arg-type]
            entry["id"] = stored[name]
            # Anything but a string (or a null name) would break the download URL made from them.
            if not isinstance(entry.get("mime-type"), str):
                entry["mime-type"] = part.mimetype or "application/octet-stream"
            if "name" not in entry or not isinstance(entry["name"], (str, type(None))):
                entry["name"] = part.filename
    return msg


def _caller(state: HostState, req: Request) -> tuple[Caller, str | None]:
    """The caller of this request: its session (new if the cookie is missing or bad) and `--as` user."""
    session_id = state.cookies.session_id(_session_cookie(req.headers.get("Cookie")))
    new_session = None
    if session_id is None:
        session_id = new_session = state.cookies.new_id()
    as_user = req.headers.get(AS_HEADER)
    if as_user is not None:
        security.require_cli_token(
            state.cli_token,
            "Calling as another user needs the token from the app's .anvil-dev/ directory "
            "(use `anvil-dev call --as EMAIL` on the machine that serves the app)",
            req,
        )
    via = req.headers.get(CLIENT_HEADER)
    caller = Caller(
        client_type="browser",
        ip=req.remote_addr,
        session_id=session_id,
        trusted=False,
        call_stack=[{"type": "browser"}],
        user_email_override=as_user,
        via=via if via in ("cli", "python") else None,
    )
    return caller, new_session


@functools.lru_cache(maxsize=1024)
def _session_cookie(header: str | None) -> str | None:
    """Our cookie in a Cookie header: a client sends the same header on each call, so it is parsed once."""
    return parse_cookie(header).get(COOKIE_NAME) if header else None


def reply_response(state: HostState, reply: Reply, new_session: str | None) -> Response:
    """The HTTP response for a call's reply: its body as the child encoded it, its status, media URLs
    (the one case where the body is parsed here), and the session cookie when it is new."""
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
        resp.set_cookie(
            COOKIE_NAME,
            state.cookies.cookie_for(new_session),
            httponly=True,
            samesite="Lax",
            max_age=30 * 24 * 3600,
            path="/",
        )
    return resp
