"""Media bytes live in files under .anvil-dev/media/, named by id, shared by host and workers.

A DataMedia entry on the wire between our own processes carries only the id; the bytes never
travel through pipes or JSON, so a 100 MB media costs one file, not several copies in memory.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import BinaryIO

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class MediaStore:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def _ensure(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(15)

    def path(self, media_id: str) -> Path:
        """The file of a media id; refuses anything that is not a plain id (no path tricks)."""
        if not isinstance(media_id, str) or not _ID.match(media_id):
            raise ValueError(f"invalid media id {media_id!r:.80}")
        return self.dir / media_id

    def put_bytes(self, data: bytes) -> str:
        self._ensure()
        media_id = self.new_id()
        tmp = self.dir / (media_id + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, self.path(media_id))
        return media_id

    def put_stream(self, stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[str, int]:
        """Copy a stream into a new media file; returns (id, length)."""
        self._ensure()
        media_id = self.new_id()
        tmp = self.dir / (media_id + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, chunk_size)
            length = out.tell()
        os.replace(tmp, self.path(media_id))
        return media_id, length

    def exists(self, media_id: str) -> bool:
        try:
            return self.path(media_id).is_file()
        except ValueError:
            return False

    def sweep(self, max_age_s: float = 3600.0) -> int:
        """Delete transient media older than max_age_s; returns how many went."""
        if not self.dir.is_dir():
            return 0
        cutoff = time.time() - max_age_s
        n = 0
        for p in self.dir.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        return n
