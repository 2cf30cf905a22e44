"""Media bytes live in files under .anvil-dev/media/, named by id, shared by host and workers.

A DataMedia entry on the wire between our own processes carries only the id; the bytes never
travel through pipes or JSON, so a 100 MB media costs one file, not several copies in memory.

With a shared database (`serve --database postgresql://...`) each media is also written to the
`anvil_media` table, and a host that does not have the file fetches it from there the first time it
is asked for it: a media made on one host downloads from any other. (One bytea value holds at most
1 GB: larger media stay on the host that made them.)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from anvil_dev.services.db import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS anvil_media (
    id TEXT PRIMARY KEY,
    content BLOB NOT NULL,
    stored REAL NOT NULL
);
"""
_SHARED_MAX = 1 << 30
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class MediaStore:
    def __init__(self, directory: str | os.PathLike[str], shared: PostgresDatabase | None = None) -> None:
        self.dir = Path(directory)
        self.shared = shared

    def _ensure(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(15)

    def path(self, media_id: str) -> Path:
        """The file of a media id; refuses anything that is not a plain id (no path tricks).
        On a shared database, a media another host made is fetched into its file first."""
        p = self._file(media_id)
        if self.shared is not None and not p.is_file():
            self._fetch(media_id, p)
        return p

    def _file(self, media_id: str) -> Path:
        if not isinstance(media_id, str) or not _ID.match(media_id):
            raise ValueError(f"invalid media id {media_id!r:.80}")
        return self.dir / media_id

    def _share(self, media_id: str) -> None:
        if self.shared is None:
            return
        from anvil_dev.services.db import ensure_schema

        p = self._file(media_id)
        if p.stat().st_size > _SHARED_MAX:
            return
        ensure_schema(self.shared, "media", SCHEMA)
        with self.shared.write() as conn:
            conn.execute(
                "INSERT INTO anvil_media (id, content, stored) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (media_id, p.read_bytes(), time.time()),
            )

    def _fetch(self, media_id: str, p: Path) -> None:
        assert self.shared is not None
        from anvil_dev.services.db import ensure_schema

        ensure_schema(self.shared, "media", SCHEMA)
        row = self.shared.connection().execute("SELECT content FROM anvil_media WHERE id = ?", (media_id,)).fetchone()
        if row is None:
            return
        self._ensure()
        tmp = self.dir / (media_id + f".{os.getpid()}.fetch")
        tmp.write_bytes(bytes(row[0]))
        os.replace(tmp, p)

    def put_bytes(self, data: bytes) -> str:
        self._ensure()
        media_id = self.new_id()
        tmp = self.dir / (media_id + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, self._file(media_id))
        self._share(media_id)
        return media_id

    def put_stream(self, stream: BinaryIO, chunk_size: int = 1 << 20) -> tuple[str, int]:
        """Copy a stream into a new media file; returns (id, length)."""
        self._ensure()
        media_id = self.new_id()
        tmp = self.dir / (media_id + ".part")
        with open(tmp, "wb") as out:
            shutil.copyfileobj(stream, out, chunk_size)
            length = out.tell()
        os.replace(tmp, self._file(media_id))
        self._share(media_id)
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
        if self.shared is not None:
            from anvil_dev.services.db import ensure_schema

            ensure_schema(self.shared, "media", SCHEMA)
            with self.shared.write() as conn:
                conn.execute("DELETE FROM anvil_media WHERE stored < ?", (cutoff,))
        n = 0
        for p in self.dir.iterdir():
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
            except OSError:
                pass
        return n
