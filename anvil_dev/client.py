"""A Python client for a running anvil-dev server: `connect(url).call(name, *args, **kwargs)`.

Values cross the wire with the same portable types as in server code. Portable classes the client
has no class for come back as `PortableObject`s that keep their type name and data (and go back
to the server unchanged), data table rows as `Row`s, media as `Media` downloaded on demand.
"""

from __future__ import annotations

import io
import json
import os
import urllib.parse
import uuid
from typing import Any

import requests
import urllib3

from anvil_dev import wire

DEFAULT_URL = "http://127.0.0.1:3030"


class ServerError(Exception):
    """An error raised by (or on the way to) a server function; `.type` is Anvil's type name."""

    type: str = "Error"

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


class ConnectionFailed(Exception):
    """No anvil-dev server answered at the URL."""


class ConnectionLost(ConnectionFailed):
    """The server took the call, then closed the connection before it answered (it stopped, or was killed)."""


def check_url(url: str) -> str:
    """`url` without a trailing slash, or ValueError saying what is wrong with it and what to give instead."""
    parts = urllib.parse.urlsplit(url)
    if "://" not in url:
        raise ValueError(f"{url!r} is not a URL - give the scheme too: http://{url.lstrip('/')}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http:// or https:// URL - anvil-dev serves http, "
                         "for example http://127.0.0.1:3030")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{url!r} has no valid port (give 1-65535), for example http://127.0.0.1:3030")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host, for example http://127.0.0.1:3030")
    return url.rstrip("/")


def failure(url: str, exc: requests.ConnectionError) -> ConnectionFailed:
    """What a failed request to `url` means for the user: nothing listening, or the server gone mid-call."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return ConnectionLost(f"the server at {url} closed the connection before it answered (did `anvil-dev serve` "
                              "stop?) - the call may have run in part; start the server again and retry")
    return ConnectionFailed(f"no anvil-dev server at {url} - start one with `anvil-dev serve`")


class PortableObject:
    """An instance of a portable class this client has no class for."""

    type_name = ""

    def __init__(self, data: Any) -> None:
        self.data = data

    @classmethod
    def __new_deserialized__(cls, data: Any, info: Any) -> PortableObject:
        return cls(data)

    def __serialize__(self, info: Any) -> Any:
        return self.data

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data")
        if isinstance(data, dict) and name in data:
            return data[name]
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.data == self.data

    def __hash__(self) -> int:
        return hash((self.type_name, json.dumps(self.data, sort_keys=True, default=str)))

    def __repr__(self) -> str:
        return f"<{self.type_name} {self.data!r}>"


class Row(PortableObject):
    """A data table row as a client sees it: its columns, its id, and a reference the server accepts back."""

    type_name = "anvil.tables.Row"

    def get_id(self) -> str:
        return self.data.get("id")

    def __getitem__(self, key: str) -> Any:
        return (self.data.get("data") or {})[key]

    def get(self, key: str, default: Any = None) -> Any:
        return (self.data.get("data") or {}).get(key, default)

    def keys(self) -> Any:
        return (self.data.get("data") or {}).keys()

    def items(self) -> Any:
        return (self.data.get("data") or {}).items()

    def __iter__(self) -> Any:
        return iter((self.data.get("data") or {}).items())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and other.get_id() == self.get_id()

    def __hash__(self) -> int:
        return hash(self.get_id())

    def __repr__(self) -> str:
        return f"<Row {self.get_id()} {self.data.get('data')!r}>"


class SearchIterator(PortableObject):
    """A data table search returned by a server function: its rows, iterable and indexable as a list."""

    type_name = "anvil.tables.SearchIterator"

    def __iter__(self) -> Any:
        return iter(self.data or [])

    def __len__(self) -> int:
        return len(self.data or [])

    def __getitem__(self, index: Any) -> Any:
        return (self.data or [])[index]

    def __repr__(self) -> str:
        return f"<SearchIterator {list(self)!r}>"


class Media:
    """Media from or for the server: bytes, content type and name."""

    def __init__(self, content_type: str = "application/octet-stream", content: bytes | None = None,
                 name: str | None = None, *, url: str | None = None, length: int | None = None,
                 connection: Connection | None = None, path: str | None = None) -> None:
        self.content_type = content_type
        self.name = name
        self._content = content
        self.url = url
        self.path = path
        self._length = length
        self._connection = connection

    @classmethod
    def from_file(cls, path: str, content_type: str | None = None, name: str | None = None) -> Media:
        import mimetypes

        return cls(content_type or mimetypes.guess_type(path)[0] or "application/octet-stream", None,
                   name or os.path.basename(path), path=path)

    @property
    def length(self) -> int:
        if self._content is not None:
            return len(self._content)
        if self.path is not None:
            return os.path.getsize(self.path)
        return self._length if self._length is not None else len(self.get_bytes())

    def get_bytes(self) -> bytes:
        if self._content is None:
            if self.path is not None:
                with open(self.path, "rb") as f:
                    return f.read()
            self._content = self._connection._download(self.url).content if self._connection else b""
        return self._content

    def open(self) -> Any:
        """A binary stream of the content (a file or a streamed download: no copy in memory)."""
        if self.path is not None:
            return open(self.path, "rb")
        if self._content is not None:
            return io.BytesIO(self._content)
        assert self._connection is not None and self.url is not None
        resp = self._connection._download(self.url, stream=True)
        resp.raw.decode_content = True
        return resp.raw

    def write_to_file(self, filename: str) -> int:
        """Save the content to a file, streaming; returns the number of bytes written."""
        import shutil

        with self.open() as src, open(filename, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            return out.tell()

    def __repr__(self) -> str:
        return f"<Media {self.content_type!r} name={self.name!r}>"


BlobMedia = Media


class _MultipartBody:
    """A multipart/form-data body read piece by piece, so media stream from their files.

    (requests' own `files=` builds the whole body in memory: several copies of a 100 MB media.)
    """

    def __init__(self, parts: list[tuple[str, str | None, str, bytes | Media]]) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._pieces: list[bytes | Media] = []
        for name, filename, content_type, content in parts:
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
            if filename is not None:
                safe = filename.replace('"', "%22").replace("\r", "").replace("\n", "")
                head += f'; filename="{safe}"'
            self._pieces += [f"{head}\r\nContent-Type: {content_type}\r\n\r\n".encode(), content, b"\r\n"]
        self._pieces.append(f"--{boundary}--\r\n".encode())
        self._length = sum(len(p) if isinstance(p, bytes) else p.length for p in self._pieces)
        self._stream: Any = None

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            if self._stream is None:
                if not self._pieces:
                    break
                piece = self._pieces.pop(0)
                self._stream = io.BytesIO(piece) if isinstance(piece, bytes) else piece.open()
            chunk = self._stream.read(-1 if size < 0 else size - len(out))
            if not chunk:
                self._stream.close()
                self._stream = None
                continue
            out += chunk
        return bytes(out)


class _ClientRegistry(wire.TypeRegistry):
    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.connection = connection
        self.register(Row, Row.type_name)
        self.register(SearchIterator, SearchIterator.type_name)

    def lookup(self, name: str, may_import: bool = True) -> type | None:
        cls = self.classes.get(name)
        if cls is None:
            cls = type(name.rsplit(".", 1)[-1], (PortableObject,), {"type_name": name})
            self.register(cls, name)
        return cls

    def encode_other(self, obj: Any, path: list[Any]) -> dict[str, Any] | None:
        if not isinstance(obj, Media):
            return None
        part = f"media{len(self.connection._uploads)}"
        self.connection._uploads.append((part, obj))
        return {"type": ["DataMedia"], "id": part, "mime-type": obj.content_type, "name": obj.name}

    def decode_other(self, entry: dict[str, Any], path: list[Any]) -> Any:
        if entry.get("type") == ["DataMedia"]:
            return Media(entry.get("mime-type") or "application/octet-stream", None, entry.get("name"),
                         url=entry.get("url"), length=entry.get("length"), connection=self.connection)
        return super().decode_other(entry, path)


class Connection:
    """A session with one server; keeps its cookie (and so its session and login) between calls."""

    def __init__(self, url: str = DEFAULT_URL, *, as_user: str | None = None, token: str | None = None,
                 timeout: float | None = None, client_tag: str = "python") -> None:
        self.url = check_url(url)
        self.http = requests.Session()
        # Only for the dev console's log: server code sees these calls as Anvil sees any client's.
        self.http.headers["X-Anvil-Dev-Client"] = client_tag
        self.timeout = timeout
        self.registry = _ClientRegistry(self)
        self._uploads: list[tuple[str, Media]] = []
        if as_user is not None:
            self.http.headers["X-Anvil-Dev-As"] = as_user
            self.http.headers["X-Anvil-Dev-Token"] = token or ""
        self.last_output = ""

    def call(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call a server function; returns its result or raises ServerError (a subclass named for its type)."""
        reply = self.call_raw(name, list(args), kwargs)
        return reply.get("response")

    def call_raw(self, name: str, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        self._uploads = []
        msg = wire.encode({"args": args, "kwargs": kwargs}, self.registry)
        msg["command"] = name
        try:
            if self._uploads:
                body = _MultipartBody([("json", None, "application/json", json.dumps(msg).encode("utf-8"))] + [
                    (part, media.name or part, media.content_type, media) for part, media in self._uploads])
                resp = self.http.post(self.url + "/_/call", data=body, timeout=self.timeout,
                                      headers={"Content-Type": body.content_type})
            else:
                resp = self.http.post(self.url + "/_/call", data=json.dumps(msg),
                                      headers={"Content-Type": "application/json"}, timeout=self.timeout)
        except requests.ConnectionError as e:
            raise failure(self.url, e) from None
        finally:
            self._uploads = []
        try:
            reply = resp.json()
        except ValueError:
            raise _error_class("anvil.server.InternalError")(
                "anvil.server.InternalError", f"HTTP {resp.status_code} from {self.url}: {resp.text[:200]}") from None
        self.last_output = reply.get("output") or ""
        if "error" in reply:
            err = reply["error"] or {}
            type_name = err.get("type") or "Error"
            raise _error_class(type_name)(type_name, err.get("message", ""), err.get("trace"), self.last_output)
        wire.decode(reply, self.registry, trusted=True)
        return reply

    def login(self, email: str, password: str, remember: bool = False) -> Any:
        """Log this connection in (Anvil's anvil.users.login_with_email); returns the user row."""
        return self.call("anvil.private.users.login_with_email", email, password, remember=remember)

    def signup(self, email: str, password: str, remember: bool = False) -> Any:
        return self.call("anvil.private.users.signup_with_email", email, password, remember=remember)

    def logout(self) -> None:
        self.call("anvil.private.users.logout")

    def get_user(self) -> Any:
        return self.call("anvil.private.users.get_current_user")

    def _download(self, url: str | None, stream: bool = False) -> requests.Response:
        if not url:
            raise ValueError("this media has no download URL")
        resp = self.http.get(self.url + url if url.startswith("/") else url, stream=stream, timeout=self.timeout)
        resp.raise_for_status()
        return resp


def connect(url: str = DEFAULT_URL, **kwargs: Any) -> Connection:
    return Connection(url, **kwargs)
