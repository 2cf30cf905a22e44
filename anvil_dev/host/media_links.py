"""Signed, expiring download URLs (/_/media/<token>) for media in the store, and the sweep of unused ones."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from anvil_dev.services.mediastore import MediaStore

URL_MAX_AGE_S = 3600
# Media files are transient (call arguments and results): kept a day after last use, then swept.
KEEP_S = 24 * 3600
SWEEP_EVERY_S = 3600


class MediaLinks:
    """Signs and resolves media download URLs; the routes reach the store itself as `.store`."""

    def __init__(self, store: MediaStore, secret_key: bytes) -> None:
        self.store = store
        self._signer = URLSafeTimedSerializer(secret_key, salt="anvil-dev-media")
        self._next_sweep = 0.0

    def maybe_sweep(self) -> None:
        """Delete media unused for KEEP_S, at most once an hour, off the request's thread."""
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_EVERY_S
        threading.Thread(target=self.store.sweep, args=(KEEP_S,), name="media-sweep", daemon=True).start()

    def add_urls(self, reply: dict[str, Any]) -> None:
        """Give every DataMedia entry of a reply a signed download URL."""
        for entry in reply.get("objects") or []:
            if entry.get("type") == ["DataMedia"] and "id" in entry:
                token = self._signer.dumps([entry["id"], entry.get("mime-type"), entry.get("name")])
                entry["url"] = f"/_/media/{token}"
                try:
                    path = self.store.path(entry["id"])
                    entry["length"] = path.stat().st_size
                    os.utime(path)  # in use again: the sweep keeps it while its URL is valid
                except (OSError, ValueError):
                    pass
        self.maybe_sweep()

    def resolve(self, token: str) -> tuple[str, str | None, str | None] | None:
        """(media id, content type, name) for a valid, unexpired token; else None."""
        try:
            media_id, mime, name = self._signer.loads(token, max_age=URL_MAX_AGE_S)
        except (BadSignature, ValueError, TypeError):
            return None
        return media_id, mime, name
