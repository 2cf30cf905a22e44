"""`anvil.server.cookies`: cookies kept server-side with the caller's session."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

from anvil import _context
from anvil._registry import REGISTRY
from anvil._server_errors import CookieError


class AnvilCookie(MutableMapping[str, Any]):
    """`anvil.server.cookies.local` / `.shared`: [k], [k]=v, del, get, set(timeout_days=30, **values), clear().

    anvil-dev keeps them server-side with the caller's session (anvil_dev.services.cookies), not
    in the browser: they last as long as the session does.
    """

    def __init__(self, scope: str) -> None:
        self._scope = scope

    def _session(self) -> str:
        sid = _context.current().session_id
        if not sid or not _context.in_call():
            raise CookieError("Cookies are only available in server calls made from a client session")
        return sid

    def _stored(self) -> dict[str, str]:
        from anvil_dev import services

        return services.current().cookies.load(self._session(), self._scope)

    def __getitem__(self, key: str) -> Any:
        import json

        from anvil_dev import wire

        text = self._stored()[key]
        return wire.decode(json.loads(text), REGISTRY)["v"]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set(**{key: value})

    def set(self, timeout_days: float = 30, **values: Any) -> None:
        """Set cookies that expire after `timeout_days`."""
        import json

        from anvil import Media
        from anvil_dev import wire
        from anvil_dev.services import current

        encoded = {}
        for key, value in values.items():
            if isinstance(value, Media):
                raise CookieError("Cannot store Media objects in cookies")
            encoded[key] = json.dumps(
                wire.encode({"v": value}, REGISTRY, error_prefix="Cannot store this value in a cookie. ")
            )
        current().cookies.store(self._session(), self._scope, encoded, float(timeout_days))

    def __delitem__(self, key: str) -> None:
        from anvil_dev import services

        if key not in self._stored():
            raise KeyError(key)
        services.current().cookies.delete(self._session(), self._scope, key)

    def clear(self) -> None:
        from anvil_dev import services

        services.current().cookies.delete(self._session(), self._scope)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._stored()))

    def __len__(self) -> int:
        return len(self._stored())

    def __repr__(self) -> str:
        return f"<anvil.server.cookies.{self._scope}>"


class _Cookies:
    local = AnvilCookie("local")
    shared = AnvilCookie("shared")


cookies = _Cookies()
