"""Session cookies: a signed, HttpOnly, SameSite=Lax cookie naming a server-side session."""

from __future__ import annotations

import secrets
import time

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE_NAME = "anvil-dev-session"
MAX_AGE_S = 30 * 24 * 3600
# Checking a signature costs tens of microseconds on every call; a client sends the same cookie
# each time, so a verified one is trusted again for a minute (it expires 30 days after signing).
_RECHECK_S = 60.0
_CACHE_SIZE = 4096


class SessionCookies:
    def __init__(self, secret_key: bytes) -> None:
        self._signer = URLSafeTimedSerializer(secret_key, salt="anvil-dev-session")
        self._verified: dict[str, tuple[str, float]] = {}

    def session_id(self, cookie: str | None) -> str | None:
        """The session a cookie names, or None when it is missing, tampered with, expired or foreign."""
        if not cookie:
            return None
        now = time.monotonic()
        hit = self._verified.get(cookie)
        if hit is not None and hit[1] > now:
            return hit[0]
        try:
            value = self._signer.loads(cookie, max_age=MAX_AGE_S)
        except (BadSignature, ValueError, TypeError):
            return None
        if not isinstance(value, str):
            return None
        if len(self._verified) >= _CACHE_SIZE:
            self._verified.clear()
        self._verified[cookie] = (value, now + _RECHECK_S)
        return value

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def cookie_for(self, session_id: str) -> str:
        return self._signer.dumps(session_id)
