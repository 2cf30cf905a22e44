"""`anvil.media`: Media to and from files, as Anvil has it (from_file, write_to_file, TempFile, open).

Media whose bytes already live in a file (incoming media, media read from a file here) are copied
file to file, never through memory, so a 100 MB media costs no 100 MB of RAM.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import tempfile
from typing import IO, TYPE_CHECKING, Any

from anvil import BlobMedia, FileMedia, Media

if TYPE_CHECKING:
    from anvil_dev.services.mediastore import MediaStore

__all__ = ["TempFile", "from_file", "open", "open_", "write_to_file"]

_open = open
open_ = open  # Anvil's module exports the builtin under this name (downlink/python/anvil/media.py line 8)
_CHUNK = 1 << 20


class _StoredBlobMedia(FileMedia, BlobMedia):
    """A BlobMedia whose bytes were copied into the media store: a BlobMedia to user code, a file to us."""

    def __repr__(self) -> str:
        name = f",name={self.name}" if self.name is not None else ""
        return f"BlobMedia[{self.content_type},{self.length} bytes{name}]"


def from_file(filename: str | os.PathLike[str], mime_type: str | None = None, name: str | None = None) -> BlobMedia:
    """A BlobMedia with the file's bytes as they are now (later changes to the file do not show).

    As Anvil's (downlink/python/anvil/media.py line 38): the content type is `mime_type` (None when
    not given: nothing is guessed), the name the file's own unless given.
    """
    path = os.fspath(filename)
    content_type = mime_type
    name = name or path.split(os.sep)[-1]
    store = _store()
    if store is None:
        with _open(path, "rb") as f:
            return BlobMedia(content_type, f.read(), name=name)
    with _open(path, "rb") as f:
        media_id, _length = store.put_stream(f)
    media = _StoredBlobMedia(store.path(media_id), content_type, name, media_id=media_id)
    media.content_type = content_type
    return media


def write_to_file(media: Media, filename: str | os.PathLike[str]) -> None:
    """Write a Media's bytes to a file (streamed when the bytes are in a file already)."""
    if not isinstance(media, Media):
        raise TypeError(f"write_to_file() needs a Media object, not {type(media).__name__}")
    with _open(filename, "wb") as out:
        if isinstance(media, FileMedia):
            with _open(media.path, "rb") as src:
                shutil.copyfileobj(src, out, _CHUNK)
        else:
            out.write(media.get_bytes())


def open(media: Media) -> IO[bytes]:  # Anvil's name
    """A binary file object over the Media's bytes (a real file when the bytes are in one)."""
    if not isinstance(media, Media):
        raise TypeError(f"anvil.media.open() needs a Media object, not {type(media).__name__}")
    if isinstance(media, FileMedia):
        return _open(media.path, "rb")
    return io.BytesIO(media.get_bytes())


class TempFile:
    """`with TempFile(media) as filename:` a file in the temp directory, deleted on leaving the block.

    As Anvil's (downlink/python/anvil/media.py line 10): the name is 32 random letters and digits in
    the temp directory, with no extension, and the file exists only when a Media was given.
    """

    def __init__(self, media: Media | None = None) -> None:
        if media is not None and not isinstance(media, Media):
            raise TypeError(f"TempFile() needs a Media object or nothing, not {type(media).__name__}")
        self.media = media
        self.name: str | None = None

    def __enter__(self) -> str:
        letters = "1234567890abcdefghijklmnopqrstuvwxyz"
        self.name = tempfile.gettempdir() + os.sep + "".join(random.choice(letters) for _ in range(32))
        if self.media is not None:
            write_to_file(self.media, self.name)
        return self.name

    def __exit__(self, *exc: Any) -> None:
        if self.name is not None:
            try:
                os.unlink(self.name)
            except FileNotFoundError:
                pass


def _store() -> MediaStore | None:
    """The app's media store, or None outside a configured process (plain BlobMedia then)."""
    from anvil_dev import services

    if not services.is_open():
        return None
    return services.current().media
