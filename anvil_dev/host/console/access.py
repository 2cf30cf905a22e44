"""Who may see the console (loopback clients, loopback Host names, same-origin JSON actions) and its JSON errors."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from anvil_dev.host.security import is_foreign_origin, is_loopback_request

log = logging.getLogger("anvil_dev")


def protect(bp: Blueprint) -> Blueprint:
    """Give a console blueprint the loopback check before each request and the JSON error handler."""
    bp.before_request(_only_loopback)
    bp.register_error_handler(Exception, _api_failure)
    return bp


def refusal() -> Response:
    """The answer to a client that is not on this machine (or that names a non-loopback host)."""
    port = request.host.rsplit(":", 1)[1] if request.host.rsplit(":", 1)[-1].isdigit() else "PORT"
    return Response(
        f"The anvil-dev console is only served to this machine: open http://127.0.0.1:{port}/_/console there.\n",
        status=403,
        mimetype="text/plain",
    )


def _only_loopback() -> Response | None:
    if not is_loopback_request():
        return refusal()
    if request.method == "POST":
        # No other site may drive the console's actions with this browser (CSRF): a same-origin
        # JSON request is something a cross-site form cannot send.
        if is_foreign_origin():
            return error(403, "cross-origin requests to the console are refused")
        if not request.is_json:
            return error(415, "console actions take a JSON body")
    return None


def error(status: int, message: str) -> Response:
    """A JSON error the console's page shows: {"error": message}."""
    resp = jsonify({"error": message})
    resp.status_code = status
    return resp


def _api_failure(e: Exception) -> Any:
    """A service that fails answers with its error as JSON, for the panel to show."""
    if isinstance(e, HTTPException):
        return e
    log.exception("console: %s failed", request.path)
    return error(500, f"{type(e).__name__}: {e}")
