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

__all__ = [
    "HttpError",
    "HttpErrorStatus",
    "HttpRequestFailed",
    "UrlEncodingError",
    "request",
    "url_decode",
    "url_encode",
]

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


# Anvil decodes with ring-codec's percent-decode (server/core/src/anvil/dispatcher/native_rpc_handlers/
# http.clj lines 151-155, ring-codec 1.2.0 codec.clj lines 41-58): each run of "%" and two letters
# or digits becomes UTF-8 text; anything else (a lone "%", "+") is kept as it is.
_ESCAPES = re.compile(r"(?:%[A-Za-z0-9]{2})+")
_NOT_URL_ENCODED = "This is not a valid URL-encoded string"


def _decode_run(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        data = bytes(int(run[i + 1 : i + 3], 16) for i in range(0, len(run), 3))
    except ValueError:
        raise UrlEncodingError(_NOT_URL_ENCODED) from None
    return data.decode("utf-8", errors="replace")


def url_decode(string_to_decode: str) -> str:
    """Undo url_encode(); UrlEncodingError("This is not a valid URL-encoded string") for an escape
    that is not hex ("%zz") or a value that is not a string, as Anvil's (http.clj line 155)."""
    if not isinstance(string_to_decode, str):
        raise UrlEncodingError(_NOT_URL_ENCODED)
    return _ESCAPES.sub(_decode_run, string_to_decode)


def _form_value(value: Any) -> str:
    """A value as Anvil's server writes it in a form body: Clojure's str (true, false, nothing for None)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _form_encode(data: dict[Any, Any]) -> str:
    """Anvil's form encoding (http.clj lines 86-89): ring's url-encode of each key and value, so a
    space is %20."""
    return "&".join(
        f"{urllib.parse.quote(str(k), safe='')}={urllib.parse.quote(_form_value(v), safe='')}" for k, v in data.items()
    )


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
    if isinstance(data, dict):
        # A dict with a Content-Type given is sent as JSON (http.clj lines 84-85).
        return _json.dumps(data, default=_json_default).encode("utf-8")
    raise _unsendable(data)


def _unsendable(data: Any) -> AnvilWrappedError:
    """Anvil's untyped errors for a body it cannot send (http.clj lines 92-94)."""
    if isinstance(data, (list, tuple)):
        return AnvilWrappedError("Cannot use a list as the body of an HTTP request")
    return AnvilWrappedError(f"Cannot use '{type(data).__name__}' as the body of an HTTP request")


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


def request(
    url: str,
    method: str = "GET",
    data: Any = None,
    headers: dict[str, str] | None = None,
    username: str | None = None,
    password: str | None = None,
    json: bool = False,
    timeout: float | None = None,
) -> Any:
    """Make an HTTP request; returns the body as Media, or parsed JSON when json=True.

    Parameters in Anvil's order (downlink/python/anvil/http.py line 42). A status outside 200-299
    raises HttpError with `.status` and `.content`; a request that got no response at all (no
    network, refused, timed out) raises HttpRequestFailed.
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
        raise TypeError("timeout must be a number")
    method = str(method).upper()
    has_content = method not in ("GET", "HEAD")
    if isinstance(data, (list, tuple)) and not (json and has_content):
        raise _unsendable(data)  # json=True bodies are JSON already (http.py line 52); GET's never are
    if isinstance(data, dict) and not (json and has_content) and not _has_header(headers or {}, "Content-Type"):
        # A dict without json=True is form-encoded (http.clj lines 86-90)...
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        data = _form_encode(data)
    if not has_content:
        # ...and GET's data becomes the query string, unless the URL has one (http.clj lines 41-49, 96).
        if isinstance(data, str) and data and isinstance(url, str) and not urllib.parse.urlsplit(url).query:
            base, hash_mark, fragment = url.partition("#")
            url = f"{base.rstrip('?')}?{data}{hash_mark}{fragment}"
        data = None
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
            raise HttpError(
                status,
                _media(content, resp_headers),
                f"The response from {url} was not valid JSON (json=True was given): {content[:100]!r}",
            ) from None
    return _media(content, resp_headers)


def _no_response_message(url: str, exc: BaseException, timeout: float) -> str:
    """Say plainly why there was no response, and what to check."""
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = urllib.parse.urlsplit(url).netloc
    if isinstance(reason, socket.gaierror):
        return (
            f"Cannot reach {url}: the host name {host!r} could not be looked up - this machine may "
            f"have no network access, or the host name is wrong"
        )
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"Cannot reach {url}: no response within {timeout:g} seconds (timeout)"
    err = getattr(reason, "errno", None)
    if err in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN):
        return f"Cannot reach {url}: no network access from this machine ({reason.strerror})"
    if err == errno.ECONNREFUSED:
        return f"Cannot reach {url}: connection refused by {host} (is a server listening there?)"
    return f"Cannot reach {url}: {reason}"
