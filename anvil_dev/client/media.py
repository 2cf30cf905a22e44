"""Media from or for the server, and the multipart body that streams them up from their files."""

from __future__ import annotations

import io
import os
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anvil_dev.client.connection import Connection


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
        """A binary file of the content (the media's file, or a streamed download: no copy in memory)."""
        if self.path is not None:
            return open(self.path, "rb")
        if self._content is not None:
            return io.BytesIO(self._content)
        assert self._connection is not None and self.url is not None
        return self._connection._download(self.url, stream=True).raw

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

    (A body built whole in memory would hold several copies of a 100 MB media.)
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
