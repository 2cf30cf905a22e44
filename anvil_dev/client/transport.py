"""The client's HTTP: kept-alive connections to one server on http.client, and the server's cookies.

The client went through `requests`, whose own Python cost each call ~0.8 ms of CPU here (the
server's side of a persistent call is ~0.45 ms) and `anvil-dev call` ~70 ms to import. What the
client needs of HTTP is small, and the standard library has it: requests to one server, a body of
bytes or one streamed from files, responses read whole or streamed, and the cookies the server
sets (its session, and with it a login) sent back on each request.
"""

from __future__ import annotations

import email.utils
import http.client
import http.cookies
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

# What a streamed body is sent in: http.client's default of 8 KiB would make a 100 MB upload
# 12,800 writes.
_SEND_BLOCK = 1 << 16
_TIMEOUT_OF_TRANSPORT: Any = object()


class Unreachable(Exception):
    """No connection to the server could be made (nothing listening, no such host): nothing was sent."""


class Dropped(Exception):
    """The connection closed or broke once the request was on its way, before the whole response came."""


class HTTPStatusError(Exception):
    """A response whose status says the request failed (`Response.raise_for_status`)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status_code = status


class Response:
    """A response: read whole, or (`stream=True`) left to read from `raw`, which `close` ends."""

    def __init__(
        self, url: str, status: int, headers: http.client.HTTPMessage, content: bytes | None, raw: Any
    ) -> None:
        self.url = url
        self.status_code = status
        self.headers = headers
        self._content = content
        self.raw = raw

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def content(self) -> bytes:
        if self._content is None:
            with self.raw:
                self._content = self.raw.read()
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if not self.ok:
            raise HTTPStatusError(self.status_code, self.url)


class _Stream:
    """A streamed response's body; closing it closes the connection it came on (one of its own)."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection) -> None:
        self._resp = resp
        self._conn = conn

    def read(self, size: int = -1) -> bytes:
        try:
            return self._resp.read(None if size < 0 else size)
        except (OSError, http.client.HTTPException) as e:
            raise Dropped(str(e) or type(e).__name__) from e

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._resp.close()
        self._conn.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """HTTP/1.1 to the server at `url`, its connections kept alive between requests (one at a time
    each: a thread that finds none idle opens another), with the cookies it sets.

    `headers` go on every request to the server, and not to a full URL on another host or port;
    the cookies go to every port of the server's host, as a browser's do (`point_at` another
    server on it keeps them).
    """

    def __init__(self, url: str, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.headers: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self.point_at(url)

    def point_at(self, url: str) -> None:
        """Talk to the server at `url` from now on."""
        self.base = url.rstrip("/")
        self._origin = _origin(urllib.parse.urlsplit(self.base))
        self.close()

    def request(
        self,
        method: str,
        target: str,
        body: bytes | str | Any = None,
        headers: dict[str, str] | None = None,
        *,
        params: dict[str, str] | None = None,
        timeout: float | None = _TIMEOUT_OF_TRANSPORT,
        stream: bool = False,
    ) -> Response:
        """`method` `target` (a path on the server, or a full URL); `body` bytes, text, or an object
        with read() and len() to stream. Raises Unreachable, Dropped, or TimeoutError."""
        if timeout is _TIMEOUT_OF_TRANSPORT:
            timeout = self.timeout
        url = target if "://" in target else self.base + target
        parts = urllib.parse.urlsplit(url)
        ours = _origin(parts) == self._origin
        our_host = _origin(parts)[1] == self._origin[1]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            path += ("&" if parts.query else "?") + urllib.parse.urlencode(params)
        sent: dict[str, str] = {}
        if ours:
            sent.update(self.headers)
        if our_host and self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        sent.update(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")  # http.client would encode text as Latin-1
        elif body is not None and not isinstance(body, bytes):
            sent["Content-Length"] = str(len(body))
        conn = self._idle_connection(timeout) if ours and not stream else None
        if conn is None:
            conn = _connect(parts, timeout)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            content = None if stream else resp.read()
        except TimeoutError:
            conn.close()
            raise TimeoutError(f"no response from {url}{_within(timeout)}") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise Dropped(str(e) or type(e).__name__) from e
        if our_host:
            self._keep_cookies(resp.headers)
        if stream:
            return Response(url, resp.status, resp.headers, None, _Stream(resp, conn))
        if resp.will_close or not ours:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return Response(url, resp.status, resp.headers, content, None)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _idle_connection(self, timeout: float | None) -> http.client.HTTPConnection | None:
        """A kept connection the server has not closed meanwhile (it closes idle ones after a
        while), set to `timeout`; None when there is none."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                conn = self._idle.pop()
            if conn.sock is not None and not _closed_by_peer(conn.sock):
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
                return conn
            conn.close()

    def _keep_cookies(self, headers: http.client.HTTPMessage) -> None:
        for line in headers.get_all("Set-Cookie") or []:
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            try:
                jar.load(line)
            except http.cookies.CookieError:
                continue
            for name, morsel in jar.items():
                if _expired(morsel):
                    self.cookies.pop(name, None)  # the server deleting it
                else:
                    self.cookies[name] = morsel.coded_value  # sent back as it came


def _expired(morsel: http.cookies.Morsel[str]) -> bool:
    """A cookie set to go at once (Max-Age 0, or an Expires past), as a server deletes one."""
    if morsel["max-age"]:
        try:
            return int(morsel["max-age"]) <= 0
        except ValueError:
            return False
    if morsel["expires"]:
        try:
            return email.utils.parsedate_to_datetime(morsel["expires"]).timestamp() <= time.time()
        except (TypeError, ValueError):
            return False
    return False


def _within(timeout: float | None) -> str:
    return "" if timeout is None else f" within {timeout:g} s"


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, str, int]:
    scheme = parts.scheme or "http"
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)


def _connect(parts: urllib.parse.SplitResult, timeout: float | None) -> http.client.HTTPConnection:
    scheme, host, port = _origin(parts)
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = cls(host, port, timeout=timeout, blocksize=_SEND_BLOCK)
    try:
        conn.connect()
    except OSError as e:  # refused, timed out, no such host
        conn.close()
        raise Unreachable(str(e)) from e
    return conn  # with TCP_NODELAY, which http.client sets


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed (or broken) an idle connection: it is then readable at
    once, with nothing or with bytes no request asked for."""
    try:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) is not None
        finally:
            sock.setblocking(True)
    except BlockingIOError:
        return False
    except OSError:
        return True
