"""The client's HTTP (anvil_dev.client.transport) against a real HTTP server on 127.0.0.1: connections
kept alive and reopened when the server closed them, the server's cookies kept, bodies streamed both
ways, and each way a request can fail told apart."""

from __future__ import annotations

import contextlib
import csv
import http.client
import http.server
import io
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.client import ConnectionLost
from anvil_dev.client.errors import failure
from anvil_dev.client.transport import Dropped, HTTPStatusError, Transport, Unreachable, Untrusted


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # its head and body go in two writes

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1  # type: ignore[attr-defined]

    def _answer(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        path = self.path
        if path.startswith("/login"):
            self._answer(200, b"{}", ("Set-Cookie", "session=abc; Path=/; HttpOnly; Max-Age=60"))
        elif path.startswith("/logout"):
            self._answer(200, b"{}", ("Set-Cookie", "session=; Path=/; Max-Age=0"))
        elif path.startswith("/expire"):
            self._answer(200, b"{}", ("Set-Cookie", "session=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"))
        elif path.startswith("/quoted"):
            self._answer(200, b"{}", ("Set-Cookie", 'session="a,b"; Path=/'))
        elif path.startswith("/attributes"):  # what a proxy in front of a host may add
            self._answer(200, b"{}", ("Set-Cookie", "session=p; Path=/; Partitioned; Priority=High; Secure"))
        elif path.startswith("/cut"):  # a response that stops part way: the server went
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path.startswith("/lines"):
            self._answer(200, b"name,n\nann,1\nbob,2\n")
        elif path.startswith("/close"):  # answers, then closes the kept-alive connection
            self._answer(200, b"{}", ("Connection", "close"))
            self.close_connection = True
        elif path.startswith("/vanish"):  # takes the request and closes without a word
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path.startswith("/slow"):
            time.sleep(1.0)
            self._answer(200, b"{}")
        elif path.startswith("/big"):
            self._answer(200, b"x" * (1 << 20))
        else:
            seen = {
                "path": path,
                "cookie": self.headers.get("Cookie"),
                "tag": self.headers.get("X-Tag"),
                "length": len(body),
                "text": body.decode("utf-8") if len(body) < 1000 else None,
            }
            self._answer(200, json.dumps(seen).encode())


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went (the timeout's) breaks the handler's write: expected here


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[http.server.ThreadingHTTPServer]:
    srv = _Server(("127.0.0.1", 0), handler)
    srv.connections = 0  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    with _serving(_Handler) as srv:
        yield srv


def _url(srv: http.server.ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}"


def test_requests_share_one_kept_connection(server: http.server.ThreadingHTTPServer) -> None:
    t = Transport(_url(server))
    t.headers["X-Tag"] = "cli"
    for i in range(5):
        seen = t.request("POST", f"/echo?i={i}", "{}").json()
        assert seen["path"] == f"/echo?i={i}" and seen["tag"] == "cli"
    assert server.connections == 1  # type: ignore[attr-defined]


def test_a_connection_the_server_closed_is_reopened(server: http.server.ThreadingHTTPServer) -> None:
    t = Transport(_url(server))
    assert t.request("GET", "/close").ok  # the server said Connection: close
    assert t.request("GET", "/echo").json()["path"] == "/echo"
    assert server.connections == 2  # type: ignore[attr-defined]


class _ClosesIdle(_Handler):
    timeout = 0.1  # a connection idle this long is closed, as anvil-dev's server does after a minute


def test_a_connection_closed_while_idle_is_found_closed_before_use() -> None:
    with _serving(_ClosesIdle) as srv:
        t = Transport(_url(srv))
        assert t.request("POST", "/echo", b"{}").ok
        time.sleep(0.3)
        assert t.request("POST", "/echo", b"{}").json()["length"] == 2  # no Dropped: a new connection
        assert srv.connections == 2  # type: ignore[attr-defined]


def test_the_servers_cookies_are_kept_sent_back_and_deleted(server: http.server.ThreadingHTTPServer) -> None:
    t = Transport(_url(server))
    assert t.request("GET", "/echo").json()["cookie"] is None
    t.request("POST", "/login", b"{}")
    assert t.request("GET", "/echo").json()["cookie"] == "session=abc"
    t.request("POST", "/logout", b"{}")
    assert t.request("GET", "/echo").json()["cookie"] is None
    t.request("POST", "/quoted", b"{}")
    assert t.request("GET", "/echo").json()["cookie"] == 'session="a,b"'  # as the server wrote it
    t.request("POST", "/expire", b"{}")
    assert t.request("GET", "/echo").json()["cookie"] is None
    t.request("POST", "/attributes", b"{}")
    assert t.request("GET", "/echo").json()["cookie"] == "session=p"


def test_cookies_go_to_the_servers_host_and_its_headers_to_the_server_alone(
    server: http.server.ThreadingHTTPServer,
) -> None:
    with _serving(_Handler) as other:
        t = Transport(_url(server))
        t.headers["X-Tag"] = "cli"
        t.request("POST", "/login", b"{}")
        # Another port of the host: its cookies, as a browser sends them; not the headers.
        seen = t.request("GET", _url(other) + "/echo").json()
        assert seen["cookie"] == "session=abc" and seen["tag"] is None
        # Another host (a name for the same address): neither.
        elsewhere = f"http://localhost:{other.server_address[1]}/echo"
        assert t.request("GET", elsewhere).json() | {"path": None} == {
            "path": None,
            "cookie": None,
            "tag": None,
            "length": 0,
            "text": "",
        }
        t.point_at(_url(other))  # another server on the host, the session kept
        assert t.request("GET", "/echo").json()["cookie"] == "session=abc"
        assert t.request("GET", "/echo").json()["tag"] == "cli"


def test_text_goes_as_utf8_and_a_readable_body_streams_whole(server: http.server.ThreadingHTTPServer) -> None:
    t = Transport(_url(server))
    assert t.request("POST", "/echo", '{"name": "Zoë ☃"}').json()["text"] == '{"name": "Zoë ☃"}'

    class Body(io.BytesIO):
        def __len__(self) -> int:
            return len(self.getbuffer())

    assert t.request("POST", "/echo", Body(b"y" * (3 << 20))).json()["length"] == 3 << 20


def test_a_streamed_response_is_read_as_it_comes_and_closed_with_its_connection(
    server: http.server.ThreadingHTTPServer,
) -> None:
    t = Transport(_url(server))
    resp = t.request("GET", "/big", stream=True)
    with resp.raw as body:
        assert body.read(10) == b"x" * 10
        assert len(body.read()) == (1 << 20) - 10
    assert t._idle == []  # a streamed response's connection is its own, not kept
    assert t.request("GET", "/big").content == b"x" * (1 << 20)
    # The stream is a binary file like any other: by lines, as text, to csv.
    with t.request("GET", "/lines", stream=True).raw as body:
        assert next(iter(body)) == b"name,n\n"
        assert list(csv.reader(io.TextIOWrapper(body, "utf-8"))) == [["ann", "1"], ["bob", "2"]]
    with t.request("GET", "/cut", stream=True).raw as body, pytest.raises(ConnectionLost):
        body.read()
    missing = t.request("GET", "/big", stream=True)
    missing.status_code = 404  # as a media URL gone stale answers
    with pytest.raises(HTTPStatusError):
        missing.raise_for_status()
    assert missing.raw.closed


def test_failures_are_told_apart(server: http.server.ThreadingHTTPServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(Unreachable):
            Transport(nobody).request("GET", "/echo")
    t = Transport(_url(server))
    with pytest.raises(Dropped):
        t.request("POST", "/vanish", b"{}")
    with pytest.raises(TimeoutError, match=r"no response from http://127\.0\.0\.1:\d+/slow within 0\.2 s"):
        t.request("GET", "/slow", timeout=0.2)
    assert t.request("GET", "/echo").ok  # and the transport goes on


def test_a_connection_to_a_server_no_longer_pointed_at_is_not_kept(server: http.server.ThreadingHTTPServer) -> None:
    with _serving(_Handler) as other:
        t = Transport(_url(server))
        t.request("GET", "/echo")
        kept_for, conn = t._idle[0]
        t.point_at(_url(other))
        assert t._idle == [] and conn.sock is None  # closed
        # A request to the old server that ends after the re-pointing is not kept for the new one.
        late = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
        late.connect()
        t._put_back(kept_for, late, keep=True)
        assert t._idle == [] and late.sock is None


def test_a_kept_tls_connection_is_used_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted as a CA would be
    with _serving(_Handler) as srv:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        t = Transport(f"https://127.0.0.1:{srv.server_address[1]}")
        for i in range(3):
            assert t.request("POST", f"/echo?i={i}", b"{}").json()["path"] == f"/echo?i={i}"
        assert srv.connections == 1  # type: ignore[attr-defined]


def test_an_untrusted_certificate_is_said_to_be_one(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)  # and not trusted: no SSL_CERT_FILE
    with _serving(_Handler) as srv:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        url = f"https://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(Untrusted) as caught:
            Transport(url).request("GET", "/echo")
        said = str(failure(url, caught.value))
        assert said.startswith(f"the server at {url} could not be trusted: ") and "certificate" in said
        assert "no anvil-dev server" not in said


def _self_signed(where: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (cryptography, a dependency of anvil-dev)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_threads_each_get_a_connection_of_their_own(server: http.server.ThreadingHTTPServer) -> None:
    t = Transport(_url(server))
    wrong: list[Any] = []

    def caller(n: int) -> None:
        for i in range(40):
            path = f"/echo?caller={n}&i={i}"
            got = t.request("POST", path, json.dumps({"n": n, "i": i})).json()
            if got["path"] != path or json.loads(got["text"]) != {"n": n, "i": i}:
                wrong.append(got)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert wrong == []
    assert 1 <= server.connections <= 6  # type: ignore[attr-defined]
