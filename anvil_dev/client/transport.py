"""The client's HTTP: kept-alive connections to one server on http.client, and the server's cookies.

The client went through `requests`, whose own Python cost each call ~0.8 ms of CPU here (the
server's side of a persistent call is ~0.45 ms) and `anvil-dev call` ~70 ms to import. What the
client needs of HTTP is small, and the standard library has it: requests to one server, a body of
bytes or one streamed from files, responses read whole or streamed, and the cookies the server
sets (its session, and with it a login) sent back on each request. Redirects are not followed
(nothing the client asks of anvil-dev redirects), and no proxy is used.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import select
import ssl  # http.client imports it anyway
import threading
import time
import urllib.parse
from typing import Any

# What a streamed body is sent in: http.client's default of 8 KiB would make a 100 MB upload
# 12,800 writes.
_SEND_BLOCK = 1 << 16
_TIMEOUT_OF_TRANSPORT: Any = object()

_Origin = tuple[str, str, int]  # scheme, host, port


class ConnectionFailed(Exception):
    """No anvil-dev server answered at the URL."""


class ConnectionLost(ConnectionFailed):
    """The server took the call, then closed the connection before it answered (it stopped, or was killed)."""


class Unreachable(ConnectionFailed):
    """No connection to the server could be made (nothing listening, no such host): nothing was sent."""


class Untrusted(Unreachable):
    """A TLS connection was refused: the server's certificate did not check out (nothing was sent)."""


class Dropped(ConnectionLost):
    """The connection closed or broke once the request was on its way, before the whole response came."""


class HTTPStatusError(Exception):
    """A response whose status says the request failed (`Response.raise_for_status`)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status_code = status


class Response:
    """A response: read whole, or (`stream=True`) left to read from `raw`, a binary file."""

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
            if self.raw is not None:
                self.raw.close()
            raise HTTPStatusError(self.status_code, self.url)


class _Stream(io.RawIOBase):
    """A streamed response's body; closing it closes the connection it came on (one of its own)."""

    def __init__(self, resp: http.client.HTTPResponse, conn: http.client.HTTPConnection, server: str) -> None:
        super().__init__()
        self._resp = resp
        self._conn = conn
        self._server = server

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            got = self._resp.readinto(buffer)
        except TimeoutError:
            raise TimeoutError(f"{self._server} stopped sending the response") from None
        except (OSError, http.client.HTTPException) as e:
            raise _dropped(self._server) from e
        if not got and len(buffer) and self._resp.length:
            # The connection ended short of the Content-Length, which http.client's readinto lets
            # pass as the end of the body.
            raise _dropped(self._server)
        return got

    def close(self) -> None:
        if not self.closed:
            self._resp.close()
            self._conn.close()
        super().close()


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
        self._idle: list[tuple[_Origin, http.client.HTTPConnection]] = []
        self._lock = threading.Lock()
        self.point_at(url)

    def point_at(self, url: str) -> None:
        """Talk to the server at `url` from now on."""
        with self._lock:
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
        origin = _origin(parts)
        ours = origin == self._origin
        our_host = origin[1] == self._origin[1]
        server = f"{parts.scheme}://{parts.netloc}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            path += ("&" if parts.query else "?") + urllib.parse.urlencode(params)
        sent: dict[str, str] = {}
        if ours:
            sent.update(self.headers)
        if our_host and self.cookies:
            # list() takes the items at once: another thread may be keeping a cookie meanwhile.
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in list(self.cookies.items()))
        sent.update(headers or {})
        if isinstance(body, str):
            body = body.encode("utf-8")  # http.client would encode text as Latin-1
        elif body is not None and not isinstance(body, bytes):
            sent["Content-Length"] = str(len(body))
        conn = self._idle_connection(origin, timeout) if ours and not stream else None
        if conn is None:
            conn = _connect(origin, server, timeout)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            content = None if stream else resp.read()
        except TimeoutError:
            conn.close()
            raise TimeoutError(f"no response from {url}{_within(timeout)}") from None
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise _dropped(server) from e
        except BaseException:  # a streamed body's own failure, say: the connection is half used
            conn.close()
            raise
        if our_host:
            self._keep_cookies(resp.headers)
        if stream:
            return Response(url, resp.status, resp.headers, None, io.BufferedReader(_Stream(resp, conn, server)))
        self._put_back(origin, conn, keep=ours and not resp.will_close)
        return Response(url, resp.status, resp.headers, content, None)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            conn.close()

    def _idle_connection(self, origin: _Origin, timeout: float | None) -> http.client.HTTPConnection | None:
        """A kept connection to `origin` that its server has not closed meanwhile (it closes idle
        ones after a while), set to `timeout`; None when there is none."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                kept_for, conn = self._idle.pop()
            if kept_for == origin and conn.sock is not None and not _closed_by_peer(conn.sock):
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
                return conn
            conn.close()

    def _put_back(self, origin: _Origin, conn: http.client.HTTPConnection, keep: bool) -> None:
        with self._lock:
            if keep and origin == self._origin:  # not pointed elsewhere meanwhile
                self._idle.append((origin, conn))
                return
        conn.close()

    def _keep_cookies(self, headers: http.client.HTTPMessage) -> None:
        for line in headers.get_all("Set-Cookie") or []:
            cookie = _parse_set_cookie(line)
            if cookie is None:
                continue
            name, value, expired = cookie
            if expired:
                self.cookies.pop(name, None)  # the server deleting it
            else:
                self.cookies[name] = value


def _parse_set_cookie(line: str) -> tuple[str, str, bool] | None:
    """A Set-Cookie header's name, value (as written, to be sent back so) and whether it is set to
    go at once (Max-Age 0, or an Expires past), as a server deletes one; None if it names none.
    Other attributes (Path, HttpOnly, SameSite, Partitioned, ...) are the browser's business."""
    pair, *attributes = line.split(";")
    name, eq, value = pair.partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    expired = False
    for attribute in attributes:
        key, _, setting = attribute.partition("=")
        key, setting = key.strip().lower(), setting.strip()
        if key == "max-age":
            try:
                return name, value.strip(), int(setting) <= 0  # Max-Age wins over Expires
            except ValueError:
                continue
        if key == "expires":
            try:
                expired = email.utils.parsedate_to_datetime(setting).timestamp() <= time.time()
            except (TypeError, ValueError):
                pass
    return name, value.strip(), expired


def _within(timeout: float | None) -> str:
    return "" if timeout is None else f" within {timeout:g} s"


def _dropped(server: str) -> Dropped:
    return Dropped(
        f"the server at {server} closed the connection before it answered (did `anvil-dev serve` "
        "stop?) - the call may have run in part; start the server again and retry"
    )


def _origin(parts: urllib.parse.SplitResult) -> _Origin:
    scheme = parts.scheme or "http"
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)


def _connect(origin: _Origin, server: str, timeout: float | None) -> http.client.HTTPConnection:
    scheme, host, port = origin
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    conn = cls(host, port, timeout=timeout, blocksize=_SEND_BLOCK)
    try:
        conn.connect()
    except ssl.SSLError as e:
        conn.close()
        reason = getattr(e, "verify_message", None) or getattr(e, "reason", None) or str(e)
        raise Untrusted(
            f"the server at {server} could not be trusted: {reason} - a certificate of its own or of a "
            "private authority can be given with SSL_CERT_FILE"
        ) from e
    except OSError as e:  # refused, timed out, no such host
        conn.close()
        raise Unreachable(f"no anvil-dev server at {server} - start one with `anvil-dev serve` ({e})") from e
    return conn  # with TCP_NODELAY, which http.client sets


def _closed_by_peer(sock: Any) -> bool:
    """Whether an idle connection can no longer be used: its other end closed it (or broke it), or
    sent bytes no request asked for. Either makes it readable at once."""
    if getattr(sock, "pending", None) is not None and sock.pending():  # TLS bytes already decrypted
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
