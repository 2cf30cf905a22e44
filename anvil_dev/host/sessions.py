"""Session cookies: a signed, HttpOnly, SameSite=Lax cookie naming a server-side session."""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "anvil-dev-session"
MAX_AGE_S = 30 * 24 * 3600


class SessionCookies:
    def __init__(self, secret_key: bytes) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="anvil-dev-session")

    def session_id(self, cookie: str | None) -> str | None:
        """The session a cookie names, or None when it is missing, tampered with, expired or foreign."""
        if not cookie:
            return None
        try:
            value = self._signer.loads(cookie, max_age=MAX_AGE_S)
        except (BadSignature, ValueError, TypeError):
            return None
        return value if isinstance(value, str) else None

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def cookie_for(self, session_id: str) -> str:
        return self._signer.dumps(session_id)
