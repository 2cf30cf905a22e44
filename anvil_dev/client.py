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

    replay: dict[str, Any] | None = None  # set by Connection.replay: {"id", "of", "command", "notes"}

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


def failure(url: str, exc: requests.ConnectionError) -> ConnectionFailed:
    """What a failed request to `url` means for the user: nothing listening, or the server gone mid-call."""
    cause = exc.args[0] if exc.args else None
    if isinstance(cause, urllib3.exceptions.MaxRetryError):
        cause = cause.reason
    if isinstance(cause, urllib3.exceptions.ProtocolError):
        return ConnectionLost(
            f"the server at {url} closed the connection before it answered (did `anvil-dev serve` "
            "stop?) - the call may have run in part; start the server again and retry"
        )
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
    """A data table row as a client sees it: its columns, its id, and a reference the server accepts back.

    A row linked from far away arrives as a reference only; its columns are loaded from the server
    the first time one is read. `update()` and `delete()` go through the table or view the row was
    found by (the server checks that permission).
    """

    type_name = "anvil.tables.Row"
    _conn: Connection | None = None
    _via: Any = None  # the Table (or view) this row was found through, if any

    def get_id(self) -> str:
        return self.data.get("id")

    def _columns(self) -> dict[str, Any]:
        if "data" not in self.data and self._conn is not None:
            fresh = self._conn.call(_TABLES + "get_row", self)
            self.data["data"] = fresh.data.get("data") or {}
        return self.data.get("data") or {}

    def __getitem__(self, key: str) -> Any:
        return self._linked(self._columns()[key])

    def get(self, key: str, default: Any = None) -> Any:
        return self._linked(self._columns().get(key, default))

    def _linked(self, value: Any) -> Any:
        # Rows linked from a row of a client_writable_cascade view are written through that view.
        via = self._via
        if via is not None and isinstance(via.data, dict) and via.data.get("perm") == "rwc":
            for r in value if isinstance(value, list) else [value]:
                if isinstance(r, Row) and r._via is None:
                    r._via = via
        return value

    def keys(self) -> Any:
        return self._columns().keys()

    def items(self) -> Any:
        return self._columns().items()

    def __iter__(self) -> Any:
        return iter(self._columns().items())

    def _need_conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("this row was not read through a connection")
        return self._conn

    def update(self, **values: Any) -> None:
        """Write columns (allowed through a client_writable view, or a table with client: full)."""
        fresh = self._need_conn().call(_TABLES + "update_row", self._via, self, values)
        self.data["data"] = fresh.data.get("data") or {}

    def __setitem__(self, key: str, value: Any) -> None:
        self.update(**{key: value})

    def delete(self) -> None:
        self._need_conn().call(_TABLES + "delete_row", self._via, self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Row) and other.get_id() == self.get_id()

    def __hash__(self) -> int:
        return hash(self.get_id())

    def __repr__(self) -> str:
        return f"<Row {self.get_id()} {self.data.get('data')!r}>"


class SearchIterator(PortableObject):
    """A data table search returned by a server function: its rows, iterable and indexable as a list.

    A search of more than one page arrives as its first page and a cursor (`{"rows", "more"}`);
    the further pages are fetched from the server as iteration or indexing reaches them.
    """

    type_name = "anvil.tables.SearchIterator"
    _conn: Connection | None = None

    def _paged(self) -> bool:
        return isinstance(self.data, dict) and "more" in self.data

    def _more(self) -> bool:
        """Fetch the next page into data["rows"]; False at the end."""
        if not self._paged() or self.data.get("done") or self._conn is None:
            return False
        page = self._conn.call(_TABLES + "next_page", self.data["more"], len(self.data["rows"]))
        self.data["rows"] += page["rows"]
        if not page["more"]:
            self.data["done"] = True
        return bool(page["rows"])

    def _rows(self) -> list[Any]:
        return self.data["rows"] if self._paged() else (self.data or [])

    def __iter__(self) -> Any:
        i = 0
        while True:
            rows = self._rows()
            while i >= len(rows):
                if not self._more():
                    return
            yield rows[i]
            i += 1

    def __len__(self) -> int:
        if self._paged() and not self.data.get("done") and self._conn is not None:
            return int(self._conn.call(_TABLES + "cursor_length", self.data["more"]))
        return len(self._rows())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and index >= 0:
            while index >= len(self._rows()) and self._more():
                pass
        elif self._paged():
            while self._more():
                pass
        return self._rows()[index]

    def __serialize__(self, info: Any) -> Any:
        if self._paged():
            return {"rows": self.data["rows"], "more": self.data["more"]}
        return self.data

    def __repr__(self) -> str:
        return f"<SearchIterator {self._rows()!r}{' ...' if self._paged() and not self.data.get('done') else ''}>"


_TABLES = "anvil.private.tables.client."


class Table(PortableObject):
    """A data table (or a view of one) that client code may use, as Anvil's client `app_tables` gives.

    Searches load lazily, a page at a time; what is allowed (search or write, which rows, which
    columns) is decided by the server from the table's `client` permission or the view's kind.
    """

    type_name = "anvil.tables.Table"
    _conn: Connection | None = None

    def _call(self, op: str, *args: Any) -> Any:
        if self._conn is None:
            raise RuntimeError("this table was not read through a connection")
        return self._conn.call(_TABLES + op, *args)

    def _rows(self, rows: list[Any]) -> list[Any]:
        for r in rows:
            if isinstance(r, Row):
                r._via = self
        return rows

    def search(self, *args: Any, page_size: int | None = None, **kwargs: Any) -> ClientSearch:
        return ClientSearch(self, list(args), kwargs, page_size)

    def get(self, *args: Any, **kwargs: Any) -> Row | None:
        row = self._call("get", self, list(args), kwargs)
        return self._rows([row])[0] if row is not None else None

    def get_by_id(self, row_id: str) -> Row | None:
        row = self._call("get_by_id", self, row_id)
        return self._rows([row])[0] if row is not None else None

    def add_row(self, **values: Any) -> Row:
        return self._rows([self._call("add_row", self, values)])[0]

    def list_columns(self) -> list[dict[str, Any]]:
        return self._call("list_columns", self)

    def __repr__(self) -> str:
        return f"<Table {self.data.get('name')}{' view' if self.data.get('perm') else ''}>"


class _OrderBy(PortableObject):
    type_name = "anvil.tables.order_by"


def order_by(column_name: str, ascending: bool = True) -> PortableObject:
    """anvil.tables.order_by for a client search: `table.search(order_by("n"), owner="ann")`."""
    return _OrderBy({"column_name": column_name, "ascending": ascending})


class ClientSearch:
    """The rows of a client-side search, fetched a page at a time as they are iterated."""

    def __init__(self, table: Table, args: list[Any], kwargs: dict[str, Any], page_size: int | None) -> None:
        self._table = table
        self._args = args
        self._kwargs = kwargs
        self._page_size = page_size
        self._loaded: list[Row] = []
        self._more = True
        self.pages_loaded = 0

    def _next_page(self) -> bool:
        if not self._more:
            return False
        page = self._table._call("search", self._table, self._args, self._kwargs, len(self._loaded), self._page_size)
        self._loaded += self._table._rows(page["rows"])
        self._more = bool(page["more"])
        self.pages_loaded += 1
        return bool(page["rows"])

    def __iter__(self) -> Any:
        i = 0
        while True:
            while i >= len(self._loaded):
                if not self._next_page():
                    return
            yield self._loaded[i]
            i += 1

    def __getitem__(self, index: int) -> Row:
        if index < 0:
            raise ValueError("search indices must be non-negative integers")
        while index >= len(self._loaded) and self._next_page():
            pass
        if index >= len(self._loaded):
            raise IndexError("search index out of range")
        return self._loaded[index]

    def __len__(self) -> int:
        if not self._more:
            return len(self._loaded)
        return int(self._table._call("length", self._table, self._args, self._kwargs))

    def __repr__(self) -> str:
        return f"<ClientSearch of {self._table!r}: {len(self._loaded)} rows loaded>"


class AppTables:
    """`connection.app_tables`: the tables client code may use, by name (fetched once)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._tables: dict[str, Table] | None = None

    def _all(self) -> dict[str, Table]:
        if self._tables is None:
            self._tables = self._conn.call(_TABLES + "get_app_tables")
        return self._tables or {}

    def __getattr__(self, name: str) -> Table:
        if name.startswith("_"):
            raise AttributeError(name)
        table = self._all().get(name)
        if table is None:
            raise AttributeError(f"No such app table: '{name}'")
        return table

    def __getitem__(self, name: str) -> Table:
        return self.__getattr__(name)

    def __iter__(self) -> Any:
        return iter(self._all())


class Media:
    """Media from or for the server: bytes, content type and name."""

    def __init__(
        self,
        content_type: str = "application/octet-stream",
        content: bytes | None = None,
        name: str | None = None,
        *,
        url: str | None = None,
        length: int | None = None,
        connection: Connection | None = None,
        path: str | None = None,
    ) -> None:
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

        return cls(
            content_type or mimetypes.guess_type(path)[0] or "application/octet-stream",
            None,
            name or os.path.basename(path),
            path=path,
        )

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


class _NamesByClass(dict[type, str]):
    """Portable names by class, where a subclass (another connection's Row) takes its base's name."""

    def get(self, cls: Any, default: Any = None) -> Any:
        for klass in getattr(cls, "__mro__", (cls,)):
            if dict.__contains__(self, klass):
                return dict.__getitem__(self, klass)
        return default


class _ClientRegistry(wire.TypeRegistry):
    def __init__(self, connection: Connection) -> None:
        super().__init__()
        self.names = _NamesByClass()
        self.connection = connection
        # Rows and tables that know their connection, so they can load and write lazily.
        self.register(type("Row", (Row,), {"_conn": connection}), Row.type_name)
        self.register(type("Table", (Table,), {"_conn": connection}), Table.type_name)
        self.register(type("SearchIterator", (SearchIterator,), {"_conn": connection}), SearchIterator.type_name)
        self.names[Row] = Row.type_name
        self.names[SearchIterator] = SearchIterator.type_name
        self.names[_OrderBy] = _OrderBy.type_name
        self.names[Table] = Table.type_name

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
            return Media(
                entry.get("mime-type") or "application/octet-stream",
                None,
                entry.get("name"),
                url=entry.get("url"),
                length=entry.get("length"),
                connection=self.connection,
            )
        return super().decode_other(entry, path)


class Connection:
    """A session with one server; keeps its cookie (and so its session and login) between calls."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        as_user: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        client_tag: str = "python",
    ) -> None:
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
        self.app_tables = AppTables(self)

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
                body = _MultipartBody(
                    [("json", None, "application/json", json.dumps(msg).encode("utf-8"))]
                    + [(part, media.name or part, media.content_type, media) for part, media in self._uploads]
                )
                resp = self.http.post(
                    self.url + "/_/call", data=body, timeout=self.timeout, headers={"Content-Type": body.content_type}
                )
            else:
                resp = self.http.post(
                    self.url + "/_/call",
                    data=json.dumps(msg),
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout,
                )
        except requests.ConnectionError as e:
            raise failure(self.url, e) from None
        finally:
            self._uploads = []
        return self._read_reply(resp)

    def replay(self, call_id: int | None = None, last: str | None = None, *, token: str) -> tuple[Any, dict[str, Any]]:
        """Run one of the server's recent calls again as its original caller (by id, or the newest call
        of `last`): returns (the result, {"id", "of", "command", "notes"}). `token` is the app's CLI token."""
        body = {"id": call_id} if call_id is not None else {"last": last}
        try:
            resp = self.http.post(
                self.url + "/_/dev/replay",
                data=json.dumps(body),
                timeout=self.timeout,
                headers={"Content-Type": "application/json", "X-Anvil-Dev-Token": token},
            )
        except requests.ConnectionError:
            raise ConnectionFailed(f"no anvil-dev server at {self.url} - start one with `anvil-dev serve`") from None
        about = json.loads(resp.headers.get("X-Anvil-Dev-Replay") or "{}")
        try:
            return self._read_reply(resp).get("response"), about
        except ServerError as e:
            e.replay = about  # the replayed call raised: which replay it was, and its notes, still matter
            raise

    def _read_reply(self, resp: requests.Response) -> dict[str, Any]:
        try:
            reply = resp.json()
        except ValueError:
            raise _error_class("anvil.server.InternalError")(
                "anvil.server.InternalError", f"HTTP {resp.status_code} from {self.url}: {resp.text[:200]}"
            ) from None
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
