"""Attacks on a real server: cross-site calls, forged cookies, path tricks, `call --as` without its token, binding."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest
import requests
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from anvil_dev.host.security import COOKIE_NAME

from helpers import ServerProcess, write_module

MODULE = """
    import anvil.server
    import anvil.users

    SERVER_CODE_MARKER = "s3rver-c0de-marker"

    @anvil.server.callable(require_user=True)
    def whoami():
        return anvil.users.get_user()["email"]

    @anvil.server.callable
    def bump():
        anvil.server.session["n"] = anvil.server.session.get("n", 0) + 1
        return anvil.server.session["n"]
"""


@pytest.fixture
def attacked(app_dir: Path, server_factory) -> ServerProcess:
    """A served app with a logged-in victim: `.victim` is their client, `.cookie` their session cookie."""
    write_module(app_dir, "Target", MODULE)
    srv = server_factory(app_dir)
    victim = srv.client()
    victim.signup("victim@example.org", "victim's password")
    assert victim.call("whoami") == "victim@example.org"
    srv.victim = victim  # type: ignore[attr-defined]
    srv.cookie = victim.http.cookies[COOKIE_NAME]  # type: ignore[attr-defined]
    return srv


def raw_call(
    srv: ServerProcess,
    command: str,
    *,
    cookie: str | None = None,
    content_type: str = "application/json",
    body: bytes | None = None,
    **headers: str,
) -> requests.Response:
    """POST /_/call as a browser would, with exactly the headers given."""
    if body is None:
        body = json.dumps({"command": command, "args": [], "kwargs": {}}).encode()
    hdrs = {"Content-Type": content_type, **headers}
    if cookie is not None:
        hdrs["Cookie"] = f"{COOKIE_NAME}={cookie}"
    return requests.post(srv.url + "/_/call", data=body, headers=hdrs, timeout=30)


def session_id_of(srv: ServerProcess, cookie: str) -> str:
    key = (srv.app_dir / ".anvil-dev" / "secret.key").read_bytes().strip()
    return URLSafeTimedSerializer(key, salt="anvil-dev-session").loads(cookie)


# ---------------------------------------------------------------------------------------------------- CSRF


def test_cross_site_calls_are_refused(attacked: ServerProcess) -> None:
    srv, cookie = attacked, attacked.cookie  # type: ignore[attr-defined]
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{srv.port + 1}", "http://localhost.evil.example"):
        r = raw_call(srv, "bump", cookie=cookie, Origin=origin)
        assert r.status_code == 403, (origin, r.text)
        assert r.json()["error"]["type"] == "anvil.server.PermissionDenied"
        assert "Access-Control-Allow-Origin" not in r.headers
    # The refused calls never ran: the victim's session counter saw only this one call.
    assert attacked.victim.call("bump") == 1  # type: ignore[attr-defined]
    r = raw_call(srv, "whoami", cookie=cookie, Origin=srv.url)
    assert r.status_code == 200 and r.json()["response"] == "victim@example.org", "same-origin calls still work"


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", b'{"command": "bump", "args": [], "kwargs": {}}'),
        ("text/plain;charset=UTF-8", b'{"command": "bump", "args": [], "kwargs": {}}'),
        ("application/x-www-form-urlencoded", b'command=bump&{"command": "bump"}'),
        ("", b'{"command": "bump", "args": [], "kwargs": {}}'),
    ],
)
def test_bodies_a_cross_site_form_can_send_are_refused(attacked: ServerProcess, content_type: str, body: bytes) -> None:
    # No Origin header: as from an old browser, or a privacy extension that strips it.
    r = raw_call(attacked, "bump", cookie=attacked.cookie, content_type=content_type, body=body)  # type: ignore[attr-defined]
    assert r.status_code == 415, r.text
    assert attacked.victim.call("bump") == 1  # type: ignore[attr-defined]


def test_dns_rebinding_host_names_are_refused(attacked: ServerProcess) -> None:
    # evil.example made to resolve to 127.0.0.1: its pages are same-origin with themselves.
    evil = f"evil.example:{attacked.port}"
    r = raw_call(attacked, "bump", Host=evil, Origin=f"http://{evil}")
    assert r.status_code == 403 and "Host" in r.json()["error"]["message"]
    r = requests.get(attacked.url + "/", headers={"Host": evil}, timeout=10)
    assert r.status_code == 403
    for host in (f"localhost:{attacked.port}", f"127.0.0.1:{attacked.port}"):
        r = raw_call(attacked, "bump", Host=host, Origin=f"http://{host}")
        assert r.status_code == 200, (host, r.text)


# ---------------------------------------------------------------------------------------------------- cookies


class _OldSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 31 * 24 * 3600


def test_forged_cookies_give_a_new_anonymous_session(
    attacked: ServerProcess, app_dir: Path, server_factory, tmp_path: Path
) -> None:
    srv, cookie = attacked, attacked.cookie  # type: ignore[attr-defined]
    sid = session_id_of(srv, cookie)
    key = (srv.app_dir / ".anvil-dev" / "secret.key").read_bytes().strip()
    # Control: a cookie signed with the app's key for the victim's session is the victim.
    good = URLSafeTimedSerializer(key, salt="anvil-dev-session").dumps(sid)
    assert raw_call(srv, "whoami", cookie=good).json().get("response") == "victim@example.org"

    from anvil_dev.scaffold import scaffold

    other_app = scaffold(tmp_path / "OtherApp")
    other = server_factory(other_app)
    other_client = other.client()
    other_client.call("add", 1, 2)
    forged = {
        "tampered": cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"),
        "unsigned session id": sid,
        "another key": URLSafeTimedSerializer(b"not the app's key", salt="anvil-dev-session").dumps(sid),
        "another salt": URLSafeTimedSerializer(key, salt="something-else").dumps(sid),
        "expired": URLSafeTimedSerializer(key, salt="anvil-dev-session", signer=_OldSigner).dumps(sid),
        "another app's cookie": other_client.http.cookies[COOKIE_NAME],
        "garbage": "%00%ff..//'\"<>",
    }
    for what, value in forged.items():
        r = raw_call(srv, "whoami", cookie=value)
        assert r.status_code == 401, (what, r.text)
        assert r.json()["error"]["type"] == "anvil.users.AuthenticationFailed", what
        new_cookie = r.cookies.get(COOKIE_NAME)
        assert new_cookie and session_id_of(srv, new_cookie) != sid, f"{what}: not a fresh session"
        # The fresh session is anonymous and starts its own session data.
        assert raw_call(srv, "bump", cookie=new_cookie).json()["response"] == 1, what
    assert attacked.victim.call("whoami") == "victim@example.org"  # type: ignore[attr-defined]


def test_login_moves_the_session_to_a_new_id(attacked: ServerProcess) -> None:
    # Session fixation: the attacker gets a valid anonymous cookie and plants it in the victim's
    # browser (a page on another port of 127.0.0.1 can set cookies for it); the victim logs in.
    planted = raw_call(attacked, "bump").cookies[COOKIE_NAME]
    victim = attacked.client()
    victim.http.cookies[COOKIE_NAME] = planted
    assert victim.call("bump") == 2, "the victim is on the planted session"
    victim.login("victim@example.org", "victim's password")
    fresh = victim.http.cookies[COOKIE_NAME]
    assert session_id_of(attacked, fresh) != session_id_of(attacked, planted)
    assert victim.call("whoami") == "victim@example.org"
    assert victim.call("bump") == 3, "the session's data moved with it"
    r = raw_call(attacked, "whoami", cookie=planted)
    assert r.status_code == 401, "the planted id must not be logged in as the victim"


def test_session_cookie_flags(attacked: ServerProcess) -> None:
    r = raw_call(attacked, "bump")
    header = r.headers["Set-Cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header and "path=/" in header


def test_login_replies_never_carry_secrets(attacked: ServerProcess) -> None:
    c = attacked.client()
    c.login("victim@example.org", "victim's password")
    call = json.dumps({"command": "anvil.private.users.get_current_user"})
    r = c.http.request("POST", "/_/call", call, {"Content-Type": "application/json"}, timeout=10)
    assert "victim@example.org" in r.text
    assert "password_hash" not in r.text and "scrypt" not in r.text
    # A client may not log itself in as someone without their password.
    body = json.dumps({"command": "anvil.private.users.force_login", "args": [None]}).encode()
    r = raw_call(attacked, "", body=body, cookie=attacked.cookie)  # type: ignore[attr-defined]
    assert r.status_code == 403 and r.json()["error"]["type"] == "anvil.server.PermissionDenied"


# ---------------------------------------------------------------------------------------------------- files


def _get_raw(srv: ServerProcess, path: str) -> tuple[int, bytes]:
    """GET exactly this path (no client-side normalisation of '..' or '%2e')."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_server_code_and_private_data_are_never_served(attacked: ServerProcess) -> None:
    app = attacked.app_dir
    assets = app / "theme" / "assets"
    os.symlink(app / "server_code" / "Target.py", assets / "leak.py")
    os.symlink(app / ".anvil-dev", assets / "data")
    os.symlink("../../server_code", assets / "code")
    secret = (app / ".anvil-dev" / "secret.key").read_bytes().strip()
    token = (
        (app / ".anvil-dev" / "cli.token").read_bytes().strip()
        if (app / ".anvil-dev" / "cli.token").exists()
        else b"no-token-yet"
    )
    paths = [
        "/server_code/Target.py",
        "/.anvil-dev/secret.key",
        "/anvil.yaml",
        "/_/theme/../server_code/Target.py",
        "/_/theme/../../server_code/Target.py",
        "/_/theme/%2e%2e/server_code/Target.py",
        "/_/theme/%2E%2E/%2E%2E/server_code/Target.py",
        "/_/theme/..%2fserver_code%2fTarget.py",
        "/_/theme/%2e%2e%2f.anvil-dev%2fsecret.key",
        "/_/theme/%252e%252e/server_code/Target.py",
        "/_/theme/..%5cserver_code%5cTarget.py",
        f"/_/theme/{app}/server_code/Target.py",
        f"/_/theme//{app}/.anvil-dev/secret.key",
        f"/_/theme/%2F{str(app)[1:]}/.anvil-dev/secret.key",
        "/_/theme/leak.py",
        "/_/theme/data/secret.key",
        "/_/theme/data/cli.token",
        "/_/theme/code/Target.py",
        "/_/theme/..;/server_code/Target.py",
        "/_/theme/%00../server_code/Target.py",
        "/_/console/assets/..%2f..%2fhost%2fapp.py",
        "/_/media/..%2f..%2fsecret.key",
        "/_/anvil.js/../../runtime/anvil/server.py",
    ]
    for path in paths:
        status, body = _get_raw(attacked, path)
        assert status in (400, 403, 404), (path, status)
        for needle in (b"s3rver-c0de-marker", secret, token):
            assert needle not in body, path
    status, body = _get_raw(attacked, "/_/theme/index.html")
    assert status == 200 and b"<html" in body.lower(), "the theme's own assets are still served"


def test_private_files_are_private_to_their_owner(attacked: ServerProcess) -> None:
    from anvil_dev.appdir import AppDir

    AppDir(attacked.app_dir).cli_token()  # made on first use, as `call --as` does
    d = attacked.app_dir / ".anvil-dev"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for name in ("secret.key", "cli.token", "data.sqlite3"):
        mode = stat.S_IMODE((d / name).stat().st_mode)
        # (the database may be group/world-readable by umask: the 0700 directory keeps others out)
        assert mode & 0o077 == 0 or name == "data.sqlite3", (name, oct(mode))


# ---------------------------------------------------------------------------------------------------- call --as


def test_call_as_needs_the_token(attacked: ServerProcess) -> None:
    srv = attacked
    from anvil_dev.appdir import AppDir

    token = AppDir(srv.app_dir).cli_token()
    r = raw_call(srv, "whoami", **{"X-Anvil-Dev-As": "victim@example.org"})
    assert r.status_code == 403 and "token" in r.json()["error"]["message"]
    for wrong in ("", "guess", token[:-1], token + "x"):
        r = raw_call(srv, "whoami", **{"X-Anvil-Dev-As": "victim@example.org", "X-Anvil-Dev-Token": wrong})
        assert r.status_code == 403, wrong
    r = raw_call(srv, "whoami", **{"X-Anvil-Dev-As": "victim@example.org", "X-Anvil-Dev-Token": token})
    assert r.status_code == 200 and r.json()["response"] == "victim@example.org"
    # A web page cannot send these headers cross-site without a CORS preflight, which is not answered.
    r = requests.options(
        srv.url + "/_/call",
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-anvil-dev-as,x-anvil-dev-token",
        },
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in r.headers and "Access-Control-Allow-Headers" not in r.headers


# ---------------------------------------------------------------------------------------------------- binding


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on a TCP port, from /proc/net/tcp (IPv4, hex)."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            addr, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:
                found.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc/net/tcp")
def test_binds_loopback_unless_told_otherwise(app_dir: Path, server_factory) -> None:
    srv = server_factory(app_dir)
    assert listening_addresses(srv.port) == {"127.0.0.1"}
    srv.stop()
    wide = server_factory(app_dir, "--host", "0.0.0.0")
    assert listening_addresses(wide.port) == {"0.0.0.0"}
    # Told to listen widely, it serves other host names too (the loopback-only Host check is off).
    r = requests.get(wide.url + "/_/health", headers={"Host": f"devbox.lan:{wide.port}"}, timeout=10)
    assert r.status_code == 200
