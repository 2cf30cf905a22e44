"""`anvil.server.session` and `anvil.server.context`: the caller's session and who made the call."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from anvil import _context


class _Session(MutableMapping[str, Any]):
    """anvil.server.session: the caller's session, loaded when first touched, saved after the call."""

    def _data(self) -> dict[str, Any]:
        from anvil import _sessions

        return _sessions.current_data()

    def __getitem__(self, key: str) -> Any:
        return self._data()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        from anvil import _sessions

        _sessions.check_storable(value)
        self._data()[key] = value
        _sessions.mark_dirty()

    def __delitem__(self, key: str) -> None:
        from anvil import _sessions

        del self._data()[key]
        _sessions.mark_dirty()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data()))

    def __len__(self) -> int:
        return len(self._data())

    def __repr__(self) -> str:
        return repr(self._data())


session = _Session()


class StackFrame:
    def __init__(self, frame: dict[str, Any]) -> None:
        self.type = frame.get("type")
        self.is_trusted = self.type in ("server_module", "uplink", "background_task")
        self.protocol_version = frame.get("protocol-version", 8)

    def __repr__(self) -> str:
        return f"<StackFrame {self.type}>"


class ClientInfo:
    def __init__(self, type: str | None, ip: str | None) -> None:  # Anvil's name
        self.type = type
        self.ip = ip
        self.location = None

    def __repr__(self) -> str:
        return f"<ClientInfo type={self.type!r} ip={self.ip!r}>"


class _Context:
    """anvil.server.context: who called the running function."""

    @property
    def type(self) -> str:
        return "server_module"

    @property
    def client(self) -> ClientInfo:
        s = _context.current()
        return ClientInfo(s.client_type, s.client_ip)

    @property
    def call_stack(self) -> list[StackFrame]:
        return [StackFrame(f) for f in _context.current().call_stack]

    @property
    def remote_caller(self) -> StackFrame | None:
        stack = _context.current().call_stack
        return StackFrame(stack[-1]) if stack else None

    @property
    def background_task_id(self) -> str | None:
        return _context.current().background_task_id

    def __repr__(self) -> str:
        return f"<anvil.server.context client={self.client!r}>"


context = _Context()


def get_session_id() -> str | None:
    return _context.current().session_id


def get_app_origin(environment_type: str | None = None, **kwargs: Any) -> str:
    from anvil_dev import services

    return services.current().settings.origin


def get_api_origin(environment_type: str | None = None, **kwargs: Any) -> str:
    return get_app_origin() + "/_/api"
