"""The app's own page at /, its client code as Python modules (/_/py/...), Brython, client logs."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, abort, request, send_from_directory

from anvil_dev.clientcode import ClientCode, ClientCodeError, brython_dir, plotly_js
from anvil_dev.host import security
from anvil_dev.host.state import current

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
MAX_LOG_BODY = 256 << 10

bp = Blueprint("client", __name__)


def _client_code() -> ClientCode:
    state = current()
    return ClientCode(state.app_dir, state.deps)


def has_app_page() -> bool:
    """Whether / opens the app (its startup Form or module) rather than the dev console."""
    return _client_code().has_client_code()


@functools.lru_cache(maxsize=32)
def _gzipped(data: bytes) -> bytes:
    # Level 6 is gzip's default: brython.js (1.4 MB) in ~60 ms once per process, to ~300 kB.
    return gzip.compress(data, compresslevel=6, mtime=0)


def send_bytes(data: bytes, mimetype: str, cache_control: str = "no-cache", etag: str | None = None) -> Response:
    """A response with an ETag (a repeat request gets 304 Not Modified) and gzip when the browser
    takes it: the page's scripts are megabytes of text and compress about five to one."""
    resp = Response(mimetype=mimetype)
    resp.headers["Cache-Control"] = cache_control
    resp.set_etag(etag or hashlib.sha1(data).hexdigest()[:16])
    resp.vary.add("Accept-Encoding")
    if request.if_none_match.contains(resp.get_etag()[0] or ""):
        resp.status_code = 304
        return resp
    if len(data) > 1024 and "gzip" in request.accept_encodings:
        data = _gzipped(data)
        resp.headers["Content-Encoding"] = "gzip"
    resp.set_data(data)
    return resp


def app_page() -> Response:
    bus = current().bus
    events = bus.history()
    page = _client_code().page(last_event=f"{bus.boot}-{events[-1].seq if events else 0}").encode()
    return send_bytes(page, "text/html")


@bp.get("/_/client/modules.js")
def modules_script() -> Response:
    """Every module the page imports, as Brython's VFS; the page names it by its hash (?v=)."""
    bundle = _client_code().bundle()
    if bundle is None:
        return Response("// brython is not installed\n", mimetype="text/javascript")
    cache = "public, max-age=31536000, immutable" if request.args.get("v") == bundle.etag else "no-cache"
    return send_bytes(bundle.script, "text/javascript", cache, bundle.etag)


@bp.get("/_/py/<path:name>")
# Brython looks for what a bundled (VFS) module imports, and is not in the bundle, under its own
# site-packages rather than on the page's pythonpath: answer there the same.
@bp.get("/_/client/Lib/site-packages/<path:name>")
def module(name: str) -> Response:
    try:
        found = _client_code().module(name)
    except ClientCodeError as e:
        # A broken template still imports, so the page shows the error where the Form would be.
        found_src = f"raise SyntaxError({str(e)!r})\n".encode()
        return Response(found_src, mimetype="text/x-python", headers={"Cache-Control": "no-cache"})
    if found is None:
        abort(404)
    return send_bytes(found.source, "text/x-python")


@bp.get("/_/client/<name>")
def runtime_file(name: str) -> Response:
    if name == "anvil.css":
        return send_from_directory(STATIC_DIR, "anvil.css", mimetype="text/css", max_age=0)
    if name == "spinner.html":
        # The loading spinner's frame (sandboxed, so Chromium gives it a process of its own).
        return send_from_directory(STATIC_DIR, "spinner.html", mimetype="text/html", max_age=0)
    if name == "plotly.min.js":
        return _plotly_script()
    if name not in ("brython.js", "brython_stdlib.js"):
        abort(404)
    data = brython_dir()
    if data is None:
        return Response(
            "// brython is not installed: pip install brython (anvil-dev depends on it)\n"
            "document.title = 'anvil-dev: brython is missing (pip install brython)';\n",
            mimetype="text/javascript",
        )
    # The files change only with the installed brython, so a day's caching makes warm loads cheap.
    return send_bytes(_read(data / name), "text/javascript", "public, max-age=86400")


def _plotly_script() -> Response:
    """plotly.js from the installed plotly package, for the page's Plots (never from a CDN)."""
    path = plotly_js()
    if path is None:
        # A 404 makes the script's error event fire: the Plot says what is missing.
        return Response(
            "// plotly is not installed: pip install plotly (anvil-dev depends on it)\n",
            status=404,
            mimetype="text/javascript",
        )
    return send_bytes(_read(path), "text/javascript", "public, max-age=86400")


@functools.lru_cache(maxsize=4)
def _read(path: Path) -> bytes:
    return path.read_bytes()


@bp.post("/_/client/log")
def client_log() -> Response:
    """What client code print()ed, and the errors it did not catch, for the console's live log."""
    security.refuse_foreign_origin()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_LOG_BODY:
        abort(413)
    try:
        data = json.loads(raw)
    except ValueError:
        abort(400)
    if not isinstance(data, dict):
        abort(400)
    kind = data.get("kind")
    if kind == "print":
        current().bus.publish("client_output", {"text": str(data.get("text", ""))[:65536]})
    elif kind == "error":
        trace = list(data["trace"]) if isinstance(data.get("trace"), list) else []
        server_trace = list(data["server_trace"]) if isinstance(data.get("server_trace"), list) else []
        current().bus.publish(
            "client_error",
            {
                "type": str(data.get("type", "Error"))[:200],
                "message": str(data.get("message", ""))[:4000],
                "trace": trace[:50],
                "server_trace": server_trace[:50],
            },
        )
    else:
        abort(400)
    return Response("{}", mimetype="application/json")
