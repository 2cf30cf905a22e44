"""`Connection`: a session with one server, calling its functions over HTTP (`connect(url).call(...)`)."""

from __future__ import annotations

import json
from typing import Any

from anvil_dev import wire
from anvil_dev.client.errors import ServerError, _error_class, check_url, failure
from anvil_dev.client.media import Media, _MultipartBody
from anvil_dev.client.portable import PortableObject
from anvil_dev.client.tables import AppTables, Row, SearchIterator, Table, _OrderBy
from anvil_dev.client.transport import Dropped, Response, Transport, Unreachable

DEFAULT_URL = "http://127.0.0.1:3030"


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
    """A session with one server; keeps its cookie (and so its session and login) between calls.
    `http` is its `Transport`: `http.cookies` the server's cookies, `http.request` a request of its own."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        as_user: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        client_tag: str = "python",
    ) -> None:
        self.http = Transport(check_url(url), timeout)
        # Only for the dev console's log: server code sees these calls as Anvil sees any client's.
        self.http.headers["X-Anvil-Dev-Client"] = client_tag
        self.registry = _ClientRegistry(self)
        self._uploads: list[tuple[str, Media]] = []
        if as_user is not None:
            self.http.headers["X-Anvil-Dev-As"] = as_user
            self.http.headers["X-Anvil-Dev-Token"] = token or ""
        self.last_output = ""
        self.app_tables = AppTables(self)

    @property
    def url(self) -> str:
        return self.http.base

    @url.setter
    def url(self, url: str) -> None:
        """Another server, on the same host: the cookies (the session) go with the connection."""
        self.http.point_at(check_url(url))

    @property
    def timeout(self) -> float | None:
        """Seconds a request may wait for the server's answer (None: as long as it takes)."""
        return self.http.timeout

    @timeout.setter
    def timeout(self, seconds: float | None) -> None:
        self.http.timeout = seconds

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
                resp = self.http.request("POST", "/_/call", body, {"Content-Type": body.content_type})
            else:
                resp = self.http.request("POST", "/_/call", json.dumps(msg), {"Content-Type": "application/json"})
        except (Unreachable, Dropped) as e:
            raise failure(self.url, e) from None
        finally:
            self._uploads = []
        return self._read_reply(resp)

    def replay(self, call_id: int | None = None, last: str | None = None, *, token: str) -> tuple[Any, dict[str, Any]]:
        """Run one of the server's recent calls again as its original caller (by id, or the newest call
        of `last`): returns (the result, {"id", "of", "command", "notes"}). `token` is the app's CLI token."""
        body = {"id": call_id} if call_id is not None else {"last": last}
        try:
            headers = {"Content-Type": "application/json", "X-Anvil-Dev-Token": token}
            resp = self.http.request("POST", "/_/dev/replay", json.dumps(body), headers)
        except (Unreachable, Dropped) as e:
            raise failure(self.url, e) from None
        about = json.loads(resp.headers.get("X-Anvil-Dev-Replay") or "{}")
        try:
            return self._read_reply(resp).get("response"), about
        except ServerError as e:
            e.replay = about  # the replayed call raised: which replay it was, and its notes, still matter
            raise

    def _read_reply(self, resp: Response) -> dict[str, Any]:
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
            exc = _error_class(type_name)(type_name, err.get("message", ""), err.get("trace"), self.last_output)
            call_id = resp.headers.get("X-Anvil-Dev-Call", "")
            exc.call_id = int(call_id) if call_id.isdigit() else None
            raise exc
        wire.decode(reply, self.registry, trusted=True)
        return reply

    def failure(self, call_id: int, *, token: str) -> dict[str, Any] | None:
        """How recent call `call_id` failed: {"error", "frames"}, the frames of its traceback with
        function names and source lines (anvil_dev.tracebacks); None if the server cannot say.
        `token` is the app's CLI token."""
        try:
            resp = self.http.request("GET", f"/_/dev/calls/{call_id}", headers={"X-Anvil-Dev-Token": token})
            data = resp.json() if resp.ok else None
        except (Unreachable, Dropped, TimeoutError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def login(self, email: str, password: str, remember: bool = False) -> Any:
        """Log this connection in (Anvil's anvil.users.login_with_email); returns the user row."""
        return self.call("anvil.private.users.login_with_email", email, password, remember=remember)

    def signup(self, email: str, password: str, remember: bool = False) -> Any:
        return self.call("anvil.private.users.signup_with_email", email, password, remember=remember)

    def logout(self) -> None:
        self.call("anvil.private.users.logout")

    def get_user(self) -> Any:
        return self.call("anvil.private.users.get_current_user")

    def _download(self, url: str | None, stream: bool = False) -> Response:
        if not url:
            raise ValueError("this media has no download URL")
        try:
            resp = self.http.request("GET", url, stream=stream)
        except (Unreachable, Dropped) as e:
            raise failure(self.url, e) from None
        resp.raise_for_status()
        return resp


def connect(url: str = DEFAULT_URL, **kwargs: Any) -> Connection:
    return Connection(url, **kwargs)
