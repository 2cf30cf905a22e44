"""`anvil.history` on the server (downlink/python/anvil/history.py): `Location` is a portable class
server code can build and return; `history` and `hash_history` exist only in the browser."""

from __future__ import annotations

import random
import string
from typing import Any
from urllib.parse import parse_qs, urlparse

import anvil.server

__all__ = ["Location", "hash_history", "history"]


def _key() -> str:
    return "".join(random.choice(string.digits + string.ascii_letters) for _ in range(8))


def _part(value: Any, mark: str) -> str:
    value = str(value or "")
    return value if not value or value.startswith(mark) else mark + value


@anvil.server.portable_class
class Location(dict):  # type: ignore[type-arg]
    """A place in the app: path, search, hash, and the state and key a navigation carries."""

    def __init__(
        self,
        path: str = "",
        search: str = "",
        hash: str = "",  # Anvil's name
        state: Any = None,
        key: Any = None,
    ) -> None:
        super().__init__(
            path=str(path or ""), search=_part(search, "?"), hash=_part(hash, "#"), state=state, key=key or _key()
        )
        self.__dict__ = self

    @property
    def search_params(self) -> dict[str, Any]:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(self.get("search", "").lstrip("?")).items()}

    def __repr__(self) -> str:
        return f"<Location:{dict.__repr__(self)}>"

    def __str__(self) -> str:
        return self.get("path", "") + self.get("search", "") + self.get("hash", "")

    def get_url(self, full: bool = False) -> str:
        url = str(self)
        if full:
            url = anvil.server.get_app_origin() + "/" + url.lstrip("./")
        return url

    def __serialize__(self, info: Any) -> dict[str, Any]:
        return dict(self)

    @classmethod
    def from_url(cls, url: str, state: Any = None, key: Any = None) -> Location:
        parsed = urlparse(url)
        return cls(path=parsed.path, search=parsed.query, hash=parsed.fragment, key=key, state=state)


class History:
    """The browser's history: not there on the server."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("History is only available on the client")


history = History()
hash_history = History()
