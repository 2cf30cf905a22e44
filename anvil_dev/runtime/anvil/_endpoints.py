"""HTTP endpoints and routes in the worker: match, authenticate, call, and shape the response."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs

from anvil import BlobMedia, Media, _context

BASIC_REALM = 'Basic realm="Anvil App API"'


class HttpRequest:
    """anvil.server.request inside an endpoint call."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.path: str = data.get("path", "")
        self.method: str = data.get("method", "GET")
        self.query_params: dict[str, str] = data.get("query_params") or {}
        self.form_params: dict[str, str] = data.get("form_params") or {}
        self.headers: dict[str, str] = data.get("headers") or {}
        self.remote_address: str | None = data.get("remote_address")
        self.origin: str | None = data.get("origin")
        self.body: Media | None = data.get("body")
        self.username: str | None = None
        self.password: str | None = None
        self.user: Any = None
        auth = self.headers.get("authorization") or self.headers.get("Authorization") or ""
        if auth.lower().startswith("basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                self.username, self.password = user, pw
            except (ValueError, UnicodeDecodeError):
                pass

    @property
    def body_json(self) -> Any:
        if self.body is None:
            return None
        try:
            return json.loads(self.body.get_bytes() or b"null")
        except ValueError:
            return None

    def __repr__(self) -> str:
        return f"<HttpRequest {self.method} {self.path}>"


def _response(status: int, body: Any = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "body": body, "headers": headers or {}}


def run(reg: Any, command: str, data: dict[str, Any]) -> dict[str, Any]:
    """Call an endpoint's function for one request; returns {"status","body","headers"} (body str or Media)."""
    from anvil import server

    spec = reg.endpoint
    cors = (
        {
            "Access-Control-Allow-Origin": data.get("headers", {}).get("origin") or "*",
            "Access-Control-Allow-Methods": ", ".join(spec["methods"]),
            "Access-Control-Allow-Headers": "Content-Type, Authorization",
            "Access-Control-Allow-Credentials": "true",
        }
        if spec["enable_cors"]
        else {}
    )
    method = str(data.get("method", "GET")).upper()
    if method == "OPTIONS" and spec["enable_cors"]:
        return _response(200, "", cors)
    if method not in spec["methods"] and not (method == "HEAD" and "GET" in spec["methods"]):
        # Anvil's body (downlink/python/anvil/_server.py line 1595).
        return _response(405, "Method not supported", {"Allow": ", ".join(spec["methods"])})
    req = HttpRequest(data)
    _context.current().http_request = req
    # As Anvil (_server.py lines 1553-1569): the session's user, else the Basic credentials; any
    # failure answers 401 "Unauthorized".
    unauthorized = _response(401, "Unauthorized", {"WWW-Authenticate": BASIC_REALM, **cors})
    if spec["authenticate_users"]:
        import anvil.users

        try:
            req.user = anvil.users.get_user() or anvil.users.login_with_email(req.username or "", req.password or "")
        except Exception:  # noqa: BLE001 - Anvil answers 401 whatever the failure
            return unauthorized
    elif spec["require_credentials"] and (req.username is None or req.password is None):
        return unauthorized
    prefix = command.split(":", 1)[0] + ":"
    match = reg.pattern.fullmatch(command) if hasattr(reg, "pattern") else None
    kwargs: dict[str, Any] = {}
    kwargs.update(req.form_params)
    kwargs.update(req.query_params)
    if match is not None:
        kwargs.update(zip(spec["params"], match.groups(), strict=False))
    del prefix
    result = reg.fn(**kwargs)
    if isinstance(result, server.HttpResponse):
        pairs = [(str(k), str(v)) for k, v in result.headers.items()]
        headers = {**cors}
        for k, v in pairs:
            # One value per name for the host's dict; a header added more than once (Set-Cookie...)
            # also travels in full, in order, as "header_list".
            headers[_canonical(k)] = v
        body = _body(result.body, headers)
        out = _response(int(result.status), body, headers)
        if len({k for k, _ in pairs}) < len(pairs):
            out["header_list"] = [[k, v] for k, v in cors.items()] + [[_canonical(k), v] for k, v in pairs]
        return out
    headers = dict(cors)
    return _response(200, _body(result, headers), headers)


def _canonical(name: str) -> str:
    """content-type -> Content-Type: HttpHeaders keeps names lower-case; HTTP does not care, readers do."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _body(value: Any, headers: dict[str, str]) -> Any:
    if isinstance(value, Media):
        headers.setdefault("Content-Type", value.content_type or "application/octet-stream")
        return value
    if isinstance(value, (bytes, bytearray)):
        headers.setdefault("Content-Type", "application/octet-stream")
        return BlobMedia("application/octet-stream", bytes(value))
    if isinstance(value, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return value
    if value is None:
        return ""
    headers.setdefault("Content-Type", "application/json")
    from anvil._registry import REGISTRY
    from anvil_dev import wire

    encoded = wire.encode({"body": value}, REGISTRY, error_prefix="Cannot serialize endpoint response. ")
    if encoded["objects"]:
        # Dates and the like become strings, as JSON has no other way to say them.
        return json.dumps(_plain(value))
    return json.dumps(encoded["body"])


def _plain(value: Any) -> Any:
    import datetime

    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_form(body: bytes, content_type: str) -> dict[str, str]:
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    return {}
