"""`anvil.server.http_endpoint`, `route`, `wellknown_endpoint` and `request`: HTTP endpoints in server code
(anvil._endpoints answers the requests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from anvil import _context
from anvil._registration import Registration, _pattern_registrations, registrations


class _RequestProxy:
    def __getattr__(self, name: str) -> Any:
        req = _context.current().http_request
        if req is None:
            raise Exception("anvil.server.request is only available in http_endpoint calls.")
        return getattr(req, name)


request = _RequestProxy()


def _endpoint_pattern(path: str) -> tuple[str, list[str]]:
    import re

    names: list[str] = []
    parts = []
    for seg in path.strip("/").split("/"):
        if seg.startswith(":"):
            names.append(seg[1:])
            parts.append("([^/]*)")
        else:
            parts.append(re.escape(seg))
    return "/" + "/".join(parts), names


_GET_POST = ["GET", "POST"]


def http_endpoint(
    path: str,
    require_credentials: bool = False,
    authenticate_users: bool = False,
    authenticate_user: bool = False,
    methods: list[str] = _GET_POST,  # Anvil's default
    enable_cors: bool = False,
    cross_site_session: bool = False,
    *,
    _task_prefix: str = "http",
) -> Any:
    return _endpoint(
        _task_prefix + ":",
        path,
        require_credentials,
        authenticate_users or authenticate_user,
        methods,
        enable_cors,
        cross_site_session,
    )


def route(
    path: str,
    require_credentials: bool = False,
    authenticate_users: bool = False,
    authenticate_user: bool = False,
    methods: list[str] = _GET_POST,  # Anvil's default
    enable_cors: bool = False,
    cross_site_session: bool = False,
) -> Any:
    """As Anvil's (functools.partial(http_endpoint, _task_prefix="route"), _server.py line 1636): every
    keyword http_endpoint takes."""
    return http_endpoint(
        path,
        require_credentials,
        authenticate_users,
        authenticate_user,
        methods,
        enable_cors,
        cross_site_session,
        _task_prefix="route",
    )


def wellknown_endpoint(
    path: str,
    require_credentials: bool = False,
    authenticate_users: bool = False,
    authenticate_user: bool = False,
    methods: list[str] = _GET_POST,
    enable_cors: bool = False,
    cross_site_session: bool = False,
) -> Any:
    """A route under /.well-known/ (Anvil's _server.py line 1639): `path` "/x" answers /.well-known/x."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if path.startswith("/"):
            route(
                "/.well-known" + path,
                require_credentials,
                authenticate_users,
                authenticate_user,
                methods,
                enable_cors,
                cross_site_session,
            )(fn)
        return fn

    return decorator


def _endpoint(
    prefix: str,
    path: str,
    require_credentials: bool,
    authenticate_users: bool,
    methods: list[str] | None,
    enable_cors: bool,
    cross_site_session: bool,
) -> Any:
    import re

    pattern, names = _endpoint_pattern(path)

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        reg = Registration(prefix + pattern, fn)
        reg.pattern = re.compile(prefix + pattern)  # type: ignore[attr-defined]
        reg.endpoint = {  # type: ignore[attr-defined]
            "path": path,
            "params": names,
            "methods": [m.upper() for m in (methods or ["GET", "POST"])],
            "require_credentials": require_credentials,
            "authenticate_users": authenticate_users,
            "enable_cors": enable_cors,
            "cross_site_session": cross_site_session,
        }
        _pattern_registrations.append((reg.pattern, reg))  # type: ignore[attr-defined]
        registrations[prefix + pattern] = reg
        return fn

    return decorator
