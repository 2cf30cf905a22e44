"""`anvil.http`: HTTP requests from server code, and URL encoding, as Anvil offers them."""

from __future__ import annotations

import base64
import errno
import json as _json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message as _HeaderMessage
from typing import Any

from anvil import BlobMedia, Media
from anvil._errors import AnvilWrappedError, register_exception_type

__all__ = ["HttpError", "HttpErrorStatus", "HttpRequestFailed", "UrlEncodingError", "request", "url_decode",
           "url_encode"]

DEFAULT_TIMEOUT = 60.0


class HttpErrorStatus(Exception):
    """An HTTP error response: `.status` (404...) and `.content` (the body as Media).

    As Anvil's (downlink/python/anvil/http.py line 5): a plain Exception, "HTTP error 404" by default.
    """

    def __init__(self, status: Any, content: Any, message: str | None = None) -> None:
        if isinstance(status, dict):  # from the wire: {"type", "message", "status"}
            status, message = status.get("status", 0), status.get("message")
        self.status = status
        self.content = content
        if message is None:
            message = f"HTTP error {status}"
        Exception.__init__(self, message)


HttpError = HttpErrorStatus  # Anvil's older name, the same class


class HttpRequestFailed(AnvilWrappedError):
    """The request got no response at all (no network, refused, timed out)."""


class UrlEncodingError(AnvilWrappedError):
    """url_decode() was given text that is not valid URL-encoding."""


register_exception_type("anvil.http.HttpError", HttpError)
register_exception_type("anvil.http.HttpRequestFailed", HttpRequestFailed)
register_exception_type("anvil.http.UrlEncodingError", UrlEncodingError)


def url_encode(string_to_encode: str) -> str:
    """Percent-encode a string for use in a URL (like JavaScript's encodeURIComponent)."""
    if isinstance(string_to_encode, bytes):
        return urllib.parse.quote(string_to_encode, safe="!~*'()")
    if not isinstance(string_to_encode, str):
        raise TypeError(f"url_encode() needs a string, not {type(string_to_encode).__name__}")
    return urllib.parse.quote(string_to_encode, safe="!~*'()")


_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def url_decode(string_to_decode: str) -> str:
    """Undo url_encode(); raises UrlEncodingError on a malformed %-escape or bytes that are not UTF-8."""
    if not isinstance(string_to_decode, str):
        raise TypeError(f"url_decode() needs a string, not {type(string_to_decode).__name__}")
    if _BAD_ESCAPE.search(string_to_decode):
        raise UrlEncodingError(f"Invalid URL encoding: {string_to_decode!r:.200}")
    try:
        return urllib.parse.unquote(string_to_decode, errors="strict")
    except UnicodeDecodeError:
        raise UrlEncodingError(f"Invalid URL encoding (not UTF-8): {string_to_decode!r:.200}") from None


def _body(data: Any, json: bool, headers: dict[str, str]) -> bytes | None:
    """The request body as bytes, setting Content-Type where the data says what it is."""
    if data is None:
        return None
    if isinstance(data, Media):
        if not _has_header(headers, "Content-Type"):
            headers["Content-Type"] = data.content_type or "application/octet-stream"
        return data.get_bytes()
    if isinstance(data, str):
        # A string is sent as it is, even with json=True: it is taken to be JSON already.
        if not _has_header(headers, "Content-Type"):
            headers["Content-Type"] = "application/json" if json else "text/plain; charset=utf-8"
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if json:
        if not _has_header(headers, "Content-Type"):
            headers["Content-Type"] = "application/json"
        return _json.dumps(data, default=_json_default).encode("utf-8")
    raise TypeError(f"anvil.http.request() can send data as a string, bytes or a Media object, not "
                    f"{type(data).__name__} (pass json=True to send it as JSON)")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"Cannot send a {type(value).__name__} as JSON in anvil.http.request()")


def _has_header(headers: dict[str, str], name: str) -> bool:
    return any(k.lower() == name.lower() for k in headers)


def _media(status_body: bytes, headers: Any) -> BlobMedia:
    content_type = headers.get("Content-Type") or "application/octet-stream"
    name = None
    disposition = headers.get("Content-Disposition")
    if disposition:
        parsed = _HeaderMessage()
        parsed["Content-Disposition"] = disposition
        name = parsed.get_filename()
    return BlobMedia(content_type, status_body, name=name)


def request(url: str, method: str = "GET", data: Any = None, headers: dict[str, str] | None = None,
            username: str | None = None, password: str | None = None, json: bool = False,
            timeout: float | None = None) -> Any:
    """Make an HTTP request; returns the body as Media, or parsed JSON when json=True.

    Parameters in Anvil's order (downlink/python/anvil/http.py line 42). A status outside 200-299
    raises HttpError with `.status` and `.content`; a request that got no response at all (no
    network, refused, timed out) raises HttpRequestFailed.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError("timeout must be a number")
    method = str(method).upper()
    if isinstance(data, dict) and method in ("GET", "HEAD"):
        # GET data becomes the query string; a dict body without json=True is form-encoded.
        sep = "&" if "?" in url else "?"
        url, data = url + sep + urllib.parse.urlencode({k: str(v) for k, v in data.items()}), None
    elif isinstance(data, dict) and not json:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        data = urllib.parse.urlencode({k: str(v) for k, v in data.items()})
    if not isinstance(url, str):
        raise TypeError(f"anvil.http.request() needs the URL as a string, not {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"anvil.http.request() needs an absolute http:// or https:// URL, not {url!r}")
    hdrs = {str(k): str(v) for k, v in (headers or {}).items()}
    body = _body(data, json, hdrs)
    if username is not None or password is not None:
        token = base64.b64encode(f"{username or ''}:{password or ''}".encode()).decode("ascii")
        hdrs.setdefault("Authorization", f"Basic {token}")
    if json and not _has_header(hdrs, "Accept"):
        hdrs["Accept"] = "application/json"
    if body is not None and not _has_header(hdrs, "Content-Type"):
        # urllib would otherwise claim a form body; say nothing more than that it is bytes.
        hdrs["Content-Type"] = "application/octet-stream"
    req = urllib.request.Request(url, data=body, headers=hdrs, method=method)
    wait = DEFAULT_TIMEOUT if timeout is None else float(timeout)
    try:
        with urllib.request.urlopen(req, timeout=wait) as resp:
            status, content, resp_headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        content = e.read() if e.fp is not None else b""
        raise HttpError(e.code, _media(content, e.headers)) from None
    except (urllib.error.URLError, OSError) as e:
        raise HttpRequestFailed(_no_response_message(url, e, wait)) from None
    if not 200 <= status < 300:
        raise HttpError(status, _media(content, resp_headers))
    if json:
        try:
            return _json.loads(content.decode("utf-8")) if content.strip() else None
        except (UnicodeDecodeError, ValueError):
            raise HttpError(status, _media(content, resp_headers),
                            f"The response from {url} was not valid JSON (json=True was given): "
                            f"{content[:100]!r}") from None
    return _media(content, resp_headers)


def _no_response_message(url: str, exc: BaseException, timeout: float) -> str:
    """Say plainly why there was no response, and what to check."""
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(reason, socket.gaierror):
        return (f"Cannot reach {url}: the host name {host!r} could not be looked up - this machine may "
                f"have no network access, or the host name is wrong")
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"Cannot reach {url}: no response within {timeout:g} seconds (timeout)"
    err = getattr(reason, "errno", None)
    if err in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return f"Cannot reach {url}: no network access from this machine ({reason.strerror})"
    if err == errno.ECONNREFUSED:
        return f"Cannot reach {url}: connection refused by {host} (is a server listening there?)"
    return f"Cannot reach {url}: {reason}"
