"""The `anvil` package as server modules see it under anvil-dev."""

from __future__ import annotations

import mimetypes
import os
from typing import Any

__all__ = [
    "BlobMedia",
    "DataMedia",
    "LazyMedia",
    "LiveObject",
    "Media",
    "URLMedia",
    "app",
    "create_lazy_media",
    "is_server_side",
    "plot_image",
]


def is_server_side() -> bool:
    return True


class Media:
    """Anvil's Media interface: content_type, name, length, url and get_bytes()."""

    content_type: str | None = None
    name: str | None = None

    def get_bytes(self) -> bytes:
        raise NotImplementedError

    @property
    def length(self) -> int:
        return len(self.get_bytes())

    @property
    def url(self) -> str | None:
        return None

    def get_content_type(self) -> str | None:
        return self.content_type

    def get_name(self) -> str | None:
        return self.name

    def get_length(self) -> int:
        return self.length

    def get_url(self, download: bool = True) -> str | None:
        return self.url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.content_type!r} name={self.name!r}>"


class BlobMedia(Media):
    """Media made from bytes. As on Anvil's server (downlink/python/anvil/__init__.py line 81), both
    arguments are required and a str is refused: encode it first."""

    def __init__(self, content_type: str | None, content: bytes, name: str | None = None) -> None:
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError("BlobMedia content must be a byte string.")
        self.content_type = content_type
        self._content = bytes(content)
        self.name = name

    def get_bytes(self) -> bytes:
        return self._content

    @property
    def length(self) -> int:
        return len(self._content)

    def __repr__(self) -> str:
        name = f",name={self.name}" if self.name is not None else ""
        return f"BlobMedia[{self.content_type},{len(self._content)} bytes{name}]"


DataMedia = BlobMedia


class FileMedia(Media):
    """Media whose bytes are in a file (the media store); read only when asked for."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        content_type: str | None = None,
        name: str | None = None,
        media_id: str | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.content_type = content_type or mimetypes.guess_type(self.path)[0] or "application/octet-stream"
        self.name = name
        self.media_id = media_id

    def get_bytes(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    @property
    def length(self) -> int:
        return os.path.getsize(self.path)


StreamingMedia = FileMedia


class URLMedia(Media):
    """Media fetched from a URL when its bytes or content type are asked for.

    As Anvil's (downlink/python/anvil/__init__.py line 97): no name, and the content type is the
    one the server sends, so reading it fetches the URL.
    """

    name = None

    def __init__(self, url: str) -> None:
        self._url = url
        self._fetched: Media | None = None

    def _fetch(self) -> Media:
        if self._fetched is None:
            from anvil import http

            resp: Any = http.request(self._url)
            self._fetched = resp if isinstance(resp, Media) else BlobMedia(None, str(resp).encode("utf-8"))
        return self._fetched

    @property
    def url(self) -> str:
        return self._url

    @property
    def content_type(self) -> str | None:  # type: ignore[override]
        return self._fetch().content_type

    def get_bytes(self) -> bytes:
        return self._fetch().get_bytes()

    def __repr__(self) -> str:
        return f"<anvil.URLMedia object at {self._url}>"


class LazyMedia(Media):
    """Media that a server function makes when its bytes are asked for (anvil.create_lazy_media).

    As Anvil's `anvil.server.LazyMedia` (downlink/python/anvil/_server.py line 489), built from a spec;
    here the spec names the server function and its arguments, and the first read calls it.
    """

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, LazyMedia):
            spec = spec._spec
        self._spec: dict[str, Any] = dict(spec)
        self._fetched: Media | None = None

    def _fetch(self) -> Media:
        if self._fetched is None:
            import anvil.server

            fn = self._spec.get("server_function")
            if not isinstance(fn, str):
                raise ValueError("This LazyMedia names no server function to fetch it from")
            media = anvil.server.call(fn, *self._spec.get("args", []), **self._spec.get("kwargs", {}))
            if not isinstance(media, Media):
                raise TypeError(
                    f"The server function {fn!r} behind a LazyMedia returned {type(media).__name__}, not Media"
                )
            self._fetched = media
        return self._fetched

    @property
    def content_type(self) -> str | None:  # type: ignore[override]
        return self._spec.get("mime-type") or self._fetch().content_type

    @property
    def name(self) -> str | None:  # type: ignore[override]
        return self._spec["name"] if "name" in self._spec else self._fetch().name

    def get_bytes(self) -> bytes:
        return self._fetch().get_bytes()


def create_lazy_media(mime_type: str, server_function_name: str, *args: Any, **kwargs: Any) -> LazyMedia:
    """Media whose bytes come from calling `server_function_name(*args, **kwargs)` when first read."""
    return LazyMedia(
        {"mime-type": mime_type, "server_function": server_function_name, "args": list(args), "kwargs": kwargs}
    )


class LiveObject:
    """Anvil's base for objects served by a backend (data table rows were these)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._spec = spec

    def __repr__(self) -> str:
        return "<LiveObject: " + str(self._spec.get("backend")) + ">"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LiveObject)
            and other._spec.get("id") == self._spec.get("id")
            and other._spec.get("backend") == self._spec.get("backend")
        )

    def __hash__(self) -> int:
        return hash((self._spec.get("id"), self._spec.get("backend")))


def plot_image() -> Media:
    """The current matplotlib figure as PNG Media (anvil.mpl_util.plot_image)."""
    import anvil.mpl_util

    return anvil.mpl_util.plot_image()


class _AppInfo:
    """`anvil.app`: the app's id, package name and config, as Anvil gives it."""

    branch = "master"

    class _Environment:
        name = "Development"
        tags: list[str] = []

    environment = _Environment()

    @property
    def id(self) -> str:
        return _app_dir_attr("path").name if _app_dir_attr("path") else ""

    @property
    def package_name(self) -> str:
        return _app_dir_attr("package_name") or ""

    def get_client_config(self, pkg: str | None = None) -> dict[str, Any]:
        return {}

    def get_server_config(self, pkg: str | None = None) -> dict[str, Any]:
        return {}


def _app_dir_attr(name: str) -> Any:
    from anvil_dev import services

    if not services.is_open():
        return None
    return getattr(services.current().app_dir, name)


app = _AppInfo()
