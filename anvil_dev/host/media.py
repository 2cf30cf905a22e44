"""Media over HTTP: multipart uploads into the media store, signed expiring download URLs."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from anvil_dev.services.mediastore import MediaStore

URL_MAX_AGE_S = 3600


class MediaLinks:
    def __init__(self, store: MediaStore, secret_key: bytes) -> None:
        self.store = store
        self._signer = URLSafeTimedSerializer(secret_key, salt="anvil-dev-media")

    def add_urls(self, reply: dict[str, Any]) -> None:
        """Give every DataMedia entry of a reply a signed download URL."""
        for entry in reply.get("objects") or []:
            if entry.get("type") == ["DataMedia"] and "id" in entry:
                token = self._signer.dumps([entry["id"], entry.get("mime-type"), entry.get("name")])
                entry["url"] = f"/_/media/{token}"
                try:
                    entry["length"] = self.store.path(entry["id"]).stat().st_size
                except (OSError, ValueError):
                    pass

    def resolve(self, token: str) -> tuple[str, str | None, str | None] | None:
        """(media id, content type, name) for a valid, unexpired token; else None."""
        try:
            media_id, mime, name = self._signer.loads(token, max_age=URL_MAX_AGE_S)
        except (BadSignature, ValueError, TypeError):
            return None
        return media_id, mime, name
