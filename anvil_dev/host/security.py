"""Who may reach the host: loopback and Host checks (DNS rebinding), the Origin check (CSRF), the CLI
token, and the signed session cookie.

Each check is written once here; the routes and the console call them.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import secrets
import time

from flask import Flask, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Request

from anvil_dev.host.errors import Refusal

TOKEN_HEADER = "X-Anvil-Dev-Token"
COOKIE_NAME = "anvil-dev-session"
MAX_AGE_S = 30 * 24 * 3600
# Checking a signature costs tens of microseconds on every call; a client sends the same cookie
# each time, so a verified one is trusted again for a minute (it expires 30 days after signing).
_RECHECK_S = 60.0
_CACHE_SIZE = 4096
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def init_app(app: Flask) -> None:
    """Refuse foreign Host names on every request of the host's app."""
    app.before_request(refuse_foreign_host)


# ---- loopback and Host ------------------------------------------------------------------------


# Both are asked on every request with the same few strings, and parsing an address costs microseconds.
@functools.lru_cache(maxsize=1024)
def is_loopback_address(text: str) -> bool:
    """True for an IP address of this machine (127.x.x.x, ::1, and IPv4-mapped ::ffff:127.x.x.x)."""
    try:
        addr = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    # A dual-stack socket reports IPv4 clients as ::ffff:127.0.0.1.
    mapped = getattr(addr, "ipv4_mapped", None)
    return (mapped or addr).is_loopback


@functools.lru_cache(maxsize=1024)
def is_loopback_name(host: str) -> bool:
    """True for 127.x.x.x, ::1, localhost and *.localhost, with or without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host in _LOOPBACK_NAMES or host.endswith(".localhost") or is_loopback_address(host)


def is_loopback_request() -> bool:
    """True when the client is on this machine and used a loopback host name to get here."""
    return is_loopback_address(request.remote_addr or "") and is_loopback_name(request.host)


def refuse_foreign_host(req: Request | None = None) -> None:
    """Refuse a request whose Host is not a loopback name while the server listens on loopback
    (`req`, or Flask's request: each check here takes the request a route served without Flask)."""
    req = request if req is None else req
    # DNS rebinding: a site whose name is made to resolve to 127.0.0.1 would otherwise be
    # "same-origin" with this server and could call its functions from a visitor's browser.
    if is_loopback_name(req.environ.get("SERVER_NAME", "")) and not is_loopback_name(req.host):
        raise Refusal(
            403,
            "anvil.server.PermissionDenied",
            f"Host {req.host!r} refused: this server listens on loopback only, so open it "
            "as http://127.0.0.1:PORT or http://localhost:PORT (or serve with --host)",
        )


# ---- Origin -----------------------------------------------------------------------------------


def is_foreign_origin(req: Request | None = None) -> bool:
    """True when the request names an Origin other than this server's own (a browser sends it cross-site)."""
    req = request if req is None else req
    origin = req.headers.get("Origin")
    return origin is not None and origin != req.host_url.rstrip("/")


def refuse_foreign_origin(req: Request | None = None) -> None:
    """No other site may call functions with a visitor's cookie."""
    req = request if req is None else req
    if is_foreign_origin(req):
        raise Refusal(
            403,
            "anvil.server.PermissionDenied",
            f"Cross-origin call from {req.headers.get('Origin')} refused: calls must come from this app's own pages",
        )


# ---- the CLI token ----------------------------------------------------------------------------


def same_secret(a: str, b: str) -> bool:
    """Compare a presented token with the real one in constant time; an empty token never matches."""
    return bool(a) and hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def require_cli_token(cli_token: str, message: str, req: Request | None = None) -> None:
    """Refuse unless the request carries the app's CLI token (only a process that can read .anvil-dev/ has it)."""
    req = request if req is None else req
    if not same_secret(req.headers.get(TOKEN_HEADER, ""), cli_token):
        raise Refusal(403, "anvil.server.PermissionDenied", message)


# ---- the session cookie -----------------------------------------------------------------------


class SessionCookies:
    """A signed, HttpOnly, SameSite=Lax cookie naming a server-side session."""

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
