"""HTTP/1.1 keep-alive for the host's werkzeug server.

werkzeug's development server closes every connection after its response ("Connection: close"):
http.server cannot tell where a request body that the app did not read ends, so the next request
could not be found. Every call then paid for a new TCP connection and a new thread, and each
response's thread waited 10 ms for stray body bytes before the response was closed (and so before
the spare's replacement was forked). Measured A/B on 2 cores: keeping the connection open took a
persistent call back to back 2.78 -> 2.01 ms, paced 4.39 -> 3.55 ms, a fresh call -4 to -9%.

`KeepAliveRequestHandler` keeps a connection open when the request's body was read to its end (or
it had none) and the response's length is known; otherwise (a body left unread, a chunked request,
a websocket upgrade, an error midway) it closes it as werkzeug does. It also lets a call's
response be written by the process that ran the call (`offer_response`, `anvil_dev.engine.direct`).
`run_wsgi` is adapted from werkzeug 3.1's `WSGIRequestHandler.run_wsgi` (BSD-3-Clause): the
changes are the Connection header, draining what is left of the request only when the connection
is to close, and writing nothing for a response sent elsewhere. `parse_request` is http.server's
(PSF licence), its header block read by `read_headers`, which parses plain header lines itself
rather than through the email package.
"""

from __future__ import annotations

import email.parser
import email.utils
import http.client
import logging
import re
import selectors
import socket
import time
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import InternalServerError
from werkzeug.serving import WSGIRequestHandler, connection_dropped_errors

from anvil_dev import timeline
from anvil_dev.engine.direct import DirectResponse

# How long a kept-alive connection may sit idle between two requests before it is closed (its
# thread ends then). Browsers keep an idle connection for about 5 minutes; an idle one here costs
# only a sleeping thread, and a client that finds it closed opens another.
IDLE_TIMEOUT_S = 60.0
# A first body up to this size goes out in one write with the headers (larger ones are not copied for it).
_COALESCED_BODY = 64 * 1024
_WERKZEUG_LOG = logging.getLogger("werkzeug")
# In a request's environ: its handler, and (set by the app) that its response went out another way.
_HANDLER_KEY = "anvil_dev.request_handler"
_SENT_KEY = "anvil_dev.response_sent"


def offer_response(environ: dict[str, Any]) -> DirectResponse | None:
    """An offer of this request's response (a 200 of JSON) to the process that runs its call, or
    None when the host must write it: not our server (gunicorn, a test client), not HTTP/1.1, or a
    body not read to its end (the connection is not kept then)."""
    handler = environ.get(_HANDLER_KEY)
    if handler is None or handler.request_version != "HTTP/1.1" or not handler._may_keep(environ):
        return None
    at, head = _head(handler)
    return DirectResponse.offer(handler.connection, head, at)


_last_head: tuple[int, str] = (0, "")


def _head(handler: KeepAliveRequestHandler) -> tuple[int, str]:
    """This second, and a 200's status line, Server and Date headers as `send_response` writes them:
    made once a second, not for each call (the server's version is the same for every handler)."""
    global _last_head
    now = int(time.time())
    if _last_head[0] != now:
        date = email.utils.formatdate(now, usegmt=True)  # as http.server's date_time_string
        head = f"{handler.protocol_version} 200 OK\r\nServer: {handler.version_string()}\r\nDate: {date}\r\n"
        _last_head = (now, head)
    return _last_head


# A header line that the email package takes as one header, name and value as written here: a name
# of printable ASCII but ":", then ":", then a value without "\r" or "\n" (the package breaks a
# line there, and takes what follows as the body), then the line's end. Values with the other
# characters `str.splitlines` breaks at go to the package too, in case a version breaks at them.
# So does anything else: a folded line, an empty name, a line without ":". The value's leading
# blanks are stripped after the match: matched by `[ \t]*` before the value, a long run of them on a
# line that then fails would be split every way in turn (seconds for a 16 kB line, the GIL held).
_PLAIN_HEADER = re.compile(r"([!-9;-~]+):([^\r\n\x0b\x0c\x1c-\x1e\x85]*)\r?\n?\Z")


def read_headers(rfile: Any, message_class: type[http.client.HTTPMessage]) -> http.client.HTTPMessage:
    """The request's header block from `rfile`, as `http.client.parse_headers` reads it: the same
    limits, errors and message. That parses every block with the email package's FeedParser, which
    cost ~40 us of the host's CPU a call here (more with cold caches: a quarter of the host's
    samples under 8 callers). A block of plain "Name: value" lines, what every client sends, is
    split here instead (~10 us); any other line has the whole block parsed by the email package."""
    # http.client's limits, read where it keeps them: some apps raise them there.
    max_line, max_headers = getattr(http.client, "_MAXLINE", 65536), getattr(http.client, "_MAXHEADERS", 100)
    lines = []
    while True:
        line = rfile.readline(max_line + 1)
        if len(line) > max_line:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > max_headers:
            raise http.client.HTTPException(f"got more than {max_headers} headers")
        if line in (b"\r\n", b"\n", b""):
            break
    message = message_class()
    for line in lines[:-1]:
        header = _PLAIN_HEADER.match(line.decode("iso-8859-1"))
        if header is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=message_class).parsestr(text)
        message[header[1]] = header[2].lstrip(" \t")  # as the email package keeps a value
    return message


def response_sent(environ: dict[str, Any], broken: bool = False) -> None:
    """The response to this request has been written by another process: write nothing. `broken`:
    what it wrote is not known, so the connection is closed (for that process's copy too)."""
    environ[_SENT_KEY] = True
    handler = environ.get(_HANDLER_KEY)
    if handler is None:
        return
    if broken:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    else:
        handler.log_request(200)


class _CountedBody:
    """The request's body stream as the app reads it, counting the bytes: a connection is kept only
    when they reach Content-Length. Reads it does not count (through `__getattr__`) leave the
    count short, which closes the connection: the safe side."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.read_bytes += len(data)
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self._raw.readline(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, buffer: Any) -> int | None:
        n = self._raw.readinto(buffer)
        self.read_bytes += n or 0
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class KeepAliveRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, keeping the connection for the next request when that is safe."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # The response's headers and body go out in separate writes: without this, Nagle's
        # algorithm holds the body back until the client acknowledges the headers, ~40 ms later.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._served = False
        self._body: _CountedBody | None = None

    def handle_one_request(self) -> None:
        if self._served:
            # Waiting for a further request on a kept connection: only for so long.
            self.connection.settimeout(IDLE_TIMEOUT_S)
            try:
                more = self.rfile.peek(1)  # type: ignore[attr-defined]  # a BufferedReader
            except (TimeoutError, OSError):
                more = b""
            if not more:
                self.close_connection = True
                return
            if timeline.ON:
                timeline.host_mark("arrived")
            self.connection.settimeout(None)
        self._served = True
        super().handle_one_request()

    def parse_request(self) -> bool:
        """http.server's `parse_request` (Python 3.12's, PSF licence), its headers read by
        `read_headers`: the request line, the header block, then the Connection and Expect headers.
        Earlier releases (3.10, and 3.11 before its later security fixes) took a version such as
        "HTTP/+1.1", which 3.12 refuses, as this does."""
        self.command = None  # type: ignore[assignment]  # as http.server: in case the line is bad
        self.request_version = version = self.default_request_version
        self.close_connection = True
        self.requestline = requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:  # enough to tell the protocol's version
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                major, minor = base_version_number.split(".")  # one ".", each side an integer
                # As Python 3.12's: digits alone, at most ten of them (int() takes "+1" and "1_0").
                if not (major.isdigit() and minor.isdigit()) or len(major) > 10 or len(minor) > 10:
                    raise ValueError
                version_number = int(major), int(minor)
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if version_number >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if version_number >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({base_version_number})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        if self.path.startswith("//"):  # as http.server: not read as a URL without its scheme
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = read_headers(self.rfile, self.MessageClass)
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (
            expect.lower() == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            return self.handle_expect_100()
        return True

    def make_environ(self) -> Any:
        environ = super().make_environ()
        environ[_HANDLER_KEY] = self
        self._body = None
        if not environ.get("wsgi.input_terminated"):  # chunked bodies are read by werkzeug's own reader
            environ["wsgi.input"] = self._body = _CountedBody(environ["wsgi.input"])
        return environ

    def _may_keep(self, environ: dict[str, Any]) -> bool:
        """The next request on this connection can be found: this one's body has been read to its end."""
        if self.close_connection or "HTTP_UPGRADE" in environ or self._body is None:
            return False
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return False
        return self._body.read_bytes == length

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug builds each request's line (the path decoded, the date formatted) before its
        # logger drops it, and serve sets that logger to WARNING. Left unset, werkzeug sets it to
        # INFO on first use: then requests are logged as before.
        if _WERKZEUG_LOG.level == logging.NOTSET or _WERKZEUG_LOG.isEnabledFor(logging.INFO):
            super().log_request(code, size)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        self.environ = environ = self.make_environ()
        status_set: str | None = None
        headers_set: list[tuple[str, str]] | None = None
        status_sent: str | None = None
        headers_sent: list[tuple[str, str]] | None = None
        chunk_response = False

        def write(data: bytes) -> None:
            nonlocal status_sent, headers_sent, chunk_response
            assert status_set is not None, "write() before start_response"
            assert headers_set is not None, "write() before start_response"
            if environ.get(_SENT_KEY):
                status_sent, headers_sent = status_set, headers_set  # written elsewhere: nothing to send
                return
            if status_sent is None:
                status_sent = status_set
                headers_sent = headers_set
                try:
                    code_str, msg = status_sent.split(None, 1)
                except ValueError:
                    code_str, msg = status_sent, ""
                code = int(code_str)
                self.send_response(code, msg)
                header_keys = set()
                for key, value in headers_sent:
                    self.send_header(key, value)
                    header_keys.add(key.lower())
                if (
                    not (
                        "content-length" in header_keys
                        or environ["REQUEST_METHOD"] == "HEAD"
                        or (100 <= code < 200)
                        or code in {204, 304}
                    )
                    and self.protocol_version >= "HTTP/1.1"
                ):
                    chunk_response = True
                    self.send_header("Transfer-Encoding", "chunked")
                if not self._may_keep(environ):
                    self.send_header("Connection", "close")  # sets self.close_connection
                if self.request_version != "HTTP/0.9":
                    # `end_headers`, with a small first body in the same write: apart, they cost a
                    # send more, and the client a second wake-up for its body.
                    self._headers_buffer.append(b"\r\n")
                    if data and not chunk_response and len(data) <= _COALESCED_BODY:
                        self._headers_buffer.append(data)
                        data = b""
                    self.flush_headers()

            assert isinstance(data, bytes), "applications must write bytes"
            if data:
                if chunk_response:
                    self.wfile.write(hex(len(data))[2:].encode())
                    self.wfile.write(b"\r\n")
                self.wfile.write(data)
                if chunk_response:
                    self.wfile.write(b"\r\n")
            self.wfile.flush()

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status_set, headers_set
            if exc_info:
                try:
                    if headers_sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif headers_set:
                raise AssertionError("Headers already set")
            status_set = status
            headers_set = headers
            return write

        def execute(app: Any) -> None:
            application_iter = app(environ, start_response)
            try:
                for data in application_iter:
                    write(data)
                if not headers_sent:
                    write(b"")
                if chunk_response:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                if self.close_connection:
                    self._drain()
                if hasattr(application_iter, "close"):
                    application_iter.close()

        try:
            execute(self.server.app)
        except connection_dropped_errors as e:
            self.connection_dropped(e, environ)
        except Exception as e:
            if self.server.passthrough_errors:
                raise
            self.close_connection = True  # where this request's bytes end is no longer known
            try:
                if status_sent is None:
                    status_set = None
                    headers_set = None
                execute(InternalServerError())
            except Exception:  # noqa: BLE001 - as werkzeug: the client may be gone
                pass
            from werkzeug.debug.tbtools import DebugTraceback

            self.server.log("error", f"Error on request:\n{DebugTraceback(e).render_traceback_text()}")

    def _drain(self) -> None:
        """Discard what the client is still sending, so that it sees the response (a 413, say) rather
        than a reset connection; only ever before closing, as it would eat a next request."""
        selector = selectors.DefaultSelector()
        selector.register(self.connection, selectors.EVENT_READ)
        total_size = total_reads = 0
        try:
            while selector.select(timeout=0.01):
                data = self.rfile.read(10_000_000)
                total_size += len(data)
                total_reads += 1
                if not data or total_size >= 10_000_000_000 or total_reads > 1000:
                    break
        finally:
            selector.close()
