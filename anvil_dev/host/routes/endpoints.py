"""@anvil.server.http_endpoint (/_/api/...) and @anvil.server.route (any other path not under /_/).

A request becomes a call of `http:<path>` or `route:<path>` with the request as keyword arguments;
the worker matches the registered patterns and shapes `{"status", "body", "headers"}`.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, request, send_file

from anvil_dev.host.state import HostState, current
from anvil_dev.protocol import HTTP_STATUS, Caller

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

bp = Blueprint("endpoints", __name__)


@bp.route("/_/api", methods=METHODS, defaults={"subpath": ""})
@bp.route("/_/api/<path:subpath>", methods=METHODS)
def http_endpoint(subpath: str) -> Response:
    return _endpoint_call(current(), "http:", "/" + subpath)


@bp.route("/<path:subpath>", methods=METHODS)
def app_route(subpath: str) -> Response:
    if subpath.startswith("_/"):
        abort(404)
    return _endpoint_call(current(), "route:", "/" + subpath)


def _endpoint_call(state: HostState, prefix: str, path: str) -> Response:
    """An HTTP request to an @http_endpoint (/_/api/...) or @route: run its function, shape the reply."""
    command = prefix + path
    # Most apps have no routes: answer a stray /favicon.ico without spending a worker on it.
    if not any(f["name"].startswith(prefix) for f in state.describe().get("functions", [])) and not (
        state.uplink is not None and state.uplink.match(command)
    ):
        return Response(f"Not found: {path}\n", status=404, mimetype="text/plain")
    body = request.get_data(cache=True)
    objects: list[dict[str, Any]] = []
    if body:
        media_id = state.media.store.put_bytes(body)
        objects.append(
            {
                "path": ["kwargs", "body"],
                "type": ["DataMedia"],
                "id": media_id,
                "mime-type": request.mimetype or "application/octet-stream",
                "name": None,
            }
        )
    form = request.form.to_dict() if request.mimetype == "application/x-www-form-urlencoded" else {}
    kwargs = {
        "method": request.method,
        "path": path,
        "query_params": request.args.to_dict(),
        "form_params": form,
        "headers": {k.lower(): v for k, v in request.headers.items()},
        "remote_address": request.remote_addr,
        "origin": request.host_url.rstrip("/"),
        "body": None,
    }
    msg = {"command": command, "args": [], "kwargs": kwargs, "objects": objects}
    caller = Caller(
        client_type="http", ip=request.remote_addr, session_id=None, trusted=False, call_stack=[{"type": "http"}]
    )
    answer = state.dispatcher.call(msg, caller, scoped=True)
    if answer.error is not None:
        err = answer.error
        if err.get("type") == "anvil.server.NoServerFunctionError":
            return Response(f"No {prefix.rstrip(':')} endpoint matches {path}\n", status=404, mimetype="text/plain")
        text = f"{err.get('type')}: {err.get('message')}\n"
        # Unlike /_/call, an anvil.users error from an endpoint stays a 500 (http_status would make it 400).
        return Response(text, status=HTTP_STATUS.get(str(err.get("type")), 500), mimetype="text/plain")
    reply = answer.message()
    resp = reply.get("response") or {}
    headers = resp.get("headers") or {}
    status = int(resp.get("status") or 200)
    media_entry = next(
        (
            e
            for e in reply.get("objects", [])
            if e.get("path") == ["response", "body"] and e.get("type") == ["DataMedia"]
        ),
        None,
    )
    if media_entry is not None:
        out = send_file(
            state.media.store.path(media_entry["id"]),
            mimetype=media_entry.get("mime-type") or "application/octet-stream",
            max_age=0,
            download_name=media_entry.get("name") or "download",
        )
        out.status_code = status
    else:
        out = Response(resp.get("body") or "", status=status, mimetype="text/plain")
    # A header the function added more than once (Set-Cookie, say) comes as "header_list", in order.
    pairs = resp.get("header_list") or list(headers.items())
    for k in {k for k, _ in pairs}:
        del out.headers[k]
    for k, v in pairs:
        out.headers.add(k, v)
    return out
