"""The client's errors: a server function's error by Anvil type name, and a server that did not answer."""

from __future__ import annotations

import urllib.parse
from typing import Any

from anvil_dev.client.transport import ConnectionFailed, ConnectionLost, Dropped, Unreachable, Untrusted

# ConnectionFailed and ConnectionLost are the transport's, and the client's errors.
__all__ = ["ConnectionFailed", "ConnectionLost", "ServerError", "check_url", "failure"]


class ServerError(Exception):
    """An error raised by (or on the way to) a server function; `.type` is Anvil's type name."""

    type: str = "Error"

    replay: dict[str, Any] | None = None  # set by Connection.replay: {"id", "of", "command", "notes"}
    call_id: int | None = None  # the call's id in the server's recent calls (Connection.failure reads it)

    def __init__(self, type_name: str, message: str, trace: list[Any] | None = None, output: str = "") -> None:
        super().__init__(message)
        self.type = type_name
        self.message = message
        self.trace = trace or []
        self.output = output

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


_error_classes: dict[str, type[ServerError]] = {}


def _error_class(type_name: str) -> type[ServerError]:
    """One ServerError subclass per type name, so `except client.errors["anvil.server.TimeoutError"]` works."""
    cls = _error_classes.get(type_name)
    if cls is None:
        cls = type(type_name.rsplit(".", 1)[-1], (ServerError,), {"type": type_name})
        _error_classes[type_name] = cls
    return cls


def check_url(url: str) -> str:
    """`url` without a trailing slash, or ValueError saying what is wrong with it and what to give instead."""
    parts = urllib.parse.urlsplit(url)
    if "://" not in url:
        raise ValueError(f"{url!r} is not a URL - give the scheme too: http://{url.lstrip('/')}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"{url!r} is not an http:// or https:// URL - anvil-dev serves http, for example http://127.0.0.1:3030"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{url!r} has no valid port (give 1-65535), for example http://127.0.0.1:3030")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host, for example http://127.0.0.1:3030")
    return url.rstrip("/")


def failure(url: str, exc: Unreachable | Dropped) -> ConnectionFailed:
    """What a failed request to `url` means for the user: nothing listening, or the server gone
    mid-call (the transport's errors are both already, worded for the URL they were sent to)."""
    if isinstance(exc, Untrusted):
        return exc  # it is a ConnectionFailed already, and says why: no server is missing
    if isinstance(exc, Dropped):
        return ConnectionLost(
            f"the server at {url} closed the connection before it answered (did `anvil-dev serve` "
            "stop?) - the call may have run in part; start the server again and retry"
        )
    return ConnectionFailed(f"no anvil-dev server at {url} - start one with `anvil-dev serve`")
