"""The `anvil` package as server modules see it under anvil-dev."""

from __future__ import annotations

import mimetypes
import os
from typing import Any

__all__ = ["BlobMedia", "DataMedia", "Media", "URLMedia", "app", "is_server_side"]


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
    """Media made from bytes (a str is encoded as UTF-8)."""

    def __init__(self, content_type: str = "application/octet-stream", content: bytes | str = b"",
                 name: str | None = None) -> None:
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(f"BlobMedia content must be bytes, not {type(content).__name__}")
        self.content_type = content_type
        self._content = bytes(content)
        self.name = name

    def get_bytes(self) -> bytes:
        return self._content

    @property
    def length(self) -> int:
        return len(self._content)


DataMedia = BlobMedia


class FileMedia(Media):
    """Media whose bytes are in a file (the media store); read only when asked for."""

    def __init__(self, path: str | os.PathLike[str], content_type: str | None = None,
                 name: str | None = None, media_id: str | None = None) -> None:
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
    """Media fetched from a URL when its bytes are asked for."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.name = url.rstrip("/").rsplit("/", 1)[-1] or None
        self.content_type = mimetypes.guess_type(url)[0]
        self._content: bytes | None = None

    @property
    def url(self) -> str:
        return self._url

    def get_bytes(self) -> bytes:
        if self._content is None:
            from anvil import http

            resp: Any = http.request(self._url)
            self._content = resp.get_bytes() if isinstance(resp, Media) else bytes(str(resp), "utf-8")
            if isinstance(resp, Media) and resp.content_type:
                self.content_type = resp.content_type
        return self._content


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
