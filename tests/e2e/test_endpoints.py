"""@anvil.server.http_endpoint and @route through a real server, and `anvil-dev call --http`."""

from __future__ import annotations

import pytest
import requests

from helpers import run_cli, write_module

API = """
    import anvil.server

    @anvil.server.http_endpoint("/users/:id", methods=["GET", "POST"], enable_cors=True)
    def get_user(id, **params):
        r = anvil.server.request
        return {"id": id, "params": params, "method": r.method, "json": r.body_json, "path": r.path}

    @anvil.server.http_endpoint("/secret", require_credentials=True)
    def secret():
        r = anvil.server.request
        if r.password != "pw":
            return anvil.server.HttpResponse(403, "wrong password")
        return f"hello {r.username}"

    @anvil.server.http_endpoint("/image")
    def image():
        return anvil.BlobMedia("image/png", b"\\x89PNG-bytes", name="dot.png")

    @anvil.server.http_endpoint("/raw", methods=["POST"])
    def raw():
        body = anvil.server.request.body
        return anvil.server.HttpResponse(202, body.get_bytes().upper(), {"X-Length": str(body.length)})

    @anvil.server.http_endpoint("/fail")
    def fail():
        raise ValueError("endpoint broke")

    @anvil.server.http_endpoint("/moved")
    def moved():
        return anvil.server.HttpResponse(302, "", {"Location": "/_/api/users/1"})

    @anvil.server.route("/hello")
    def hello():
        return anvil.server.HttpResponse(201, "<h1>hi</h1>", {"Content-Type": "text/html"})

    @anvil.server.callable
    def try_request():
        return anvil.server.request.path
"""


@pytest.fixture
def api(app_dir, server_factory):
    write_module(app_dir, "Api", API)
    return server_factory(app_dir)


def test_path_query_and_json_parameters(api) -> None:
    r = requests.get(api.url + "/_/api/users/42?sort=name", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json() == {"id": "42", "params": {"sort": "name"}, "method": "GET", "json": None, "path": "/users/42"}
    r = requests.post(api.url + "/_/api/users/7", json={"a": [1, 2]}, timeout=10)
    assert r.json()["json"] == {"a": [1, 2]} and r.json()["method"] == "POST"
    r = requests.post(api.url + "/_/api/users/7", data={"name": "Ann"}, timeout=10)
    assert r.json()["params"] == {"name": "Ann"}


def test_wrong_method_is_405_and_cors_headers(api) -> None:
    r = requests.delete(api.url + "/_/api/users/1", timeout=10)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
    r = requests.options(api.url + "/_/api/users/1", headers={"Origin": "http://elsewhere.test"}, timeout=10)
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "http://elsewhere.test"
    assert "Access-Control-Allow-Origin" in requests.get(api.url + "/_/api/users/1", timeout=10).headers


def test_basic_auth(api) -> None:
    r = requests.get(api.url + "/_/api/secret", timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Basic realm="Anvil App API"'
    assert requests.get(api.url + "/_/api/secret", auth=("ann", "bad"), timeout=10).status_code == 403
    r = requests.get(api.url + "/_/api/secret", auth=("ann", "pw"), timeout=10)
    assert r.status_code == 200 and r.text == "hello ann" and r.headers["Content-Type"].startswith("text/plain")


def test_media_and_bytes_bodies(api) -> None:
    r = requests.get(api.url + "/_/api/image", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png" and r.content == b"\x89PNG-bytes"
    r = requests.post(
        api.url + "/_/api/raw", data=b"abc", headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    assert r.status_code == 202 and r.content == b"ABC" and r.headers["X-Length"] == "3"


def test_errors_and_unknown_paths(api) -> None:
    r = requests.get(api.url + "/_/api/fail", timeout=10)
    assert r.status_code == 500 and "ValueError: endpoint broke" in r.text
    assert requests.get(api.url + "/_/api/nothing/here", timeout=10).status_code == 404
    assert requests.get(api.url + "/favicon.ico", timeout=10).status_code == 404
    # Endpoints cannot be reached as server functions from clients.
    r = requests.post(api.url + "/_/call", json={"command": "http:/secret", "args": []}, timeout=10)
    assert r.status_code == 403
    with pytest.raises(Exception, match="only available in http_endpoint calls"):
        api.client().call("try_request")


def test_route_is_served_at_the_apps_own_path(api) -> None:
    r = requests.get(api.url + "/hello", timeout=10)
    assert r.status_code == 201 and r.text == "<h1>hi</h1>" and r.headers["Content-Type"] == "text/html"


def test_cli_http(api) -> None:
    r = run_cli("call", "--http", "GET", "/users/5", "x=1", "--url", api.url)
    assert r.returncode == 0 and '"id": "5"' in r.stdout and '"x": "1"' in r.stdout
    assert "HTTP 200" in r.stderr
    r = run_cli("call", "--http", "GET", "/secret", "--url", api.url)
    assert r.returncode == 1 and "HTTP 401" in r.stderr
    r = run_cli("call", "--http", "GET", "/moved", "--url", api.url)  # shown, as curl shows it
    assert r.returncode == 0 and "HTTP 302" in r.stderr and "Location: /_/api/users/1 (not followed)" in r.stderr


def test_app_dependency_server_and_client_modules(tmp_path, server_factory) -> None:
    from anvil_dev.scaffold import scaffold

    dep = tmp_path / "dep_lib"
    (dep / "server_code").mkdir(parents=True)
    (dep / "client_code").mkdir()
    (dep / "anvil.yaml").write_text("name: Dep Lib\npackage_name: dep_lib\n")
    (dep / "server_code" / "DepServer.py").write_text(
        "import anvil.server\n\n@anvil.server.callable\ndef from_dep():\n    return 'dep says hi'\n"
    )
    (dep / "client_code" / "Shared.py").write_text("GREETING = 'shared'\n")
    app = scaffold(tmp_path / "MainApp")
    yaml_path = app / "anvil.yaml"
    yaml_path.write_text(
        yaml_path.read_text()
        + (
            "dependencies:\n- app_id: DEP123\n  version: {dev: false}\n"
            "  resolution_hints: {app_id: DEP123, name: Dep Lib, package_name: dep_lib}\n"
            "- app_id: GONE999\n  version: {dev: false}\n"
        )
    )
    write_module(
        app,
        "UsesDep",
        """
        import anvil.server
        from dep_lib import Shared
        from dep_lib.DepServer import from_dep

        @anvil.server.callable
        def use_dep():
            return [Shared.GREETING, from_dep(), anvil.server.call("from_dep")]
    """,
    )
    srv = server_factory(app)
    line = srv.wait_for_output("GONE999")
    assert "--dep GONE999=PATH" in line
    assert srv.client().call("use_dep") == ["shared", "dep says hi", "dep says hi"]
    # --dep points at a directory anywhere.
    moved = tmp_path / "elsewhere" / "lib"
    moved.parent.mkdir()
    dep.rename(moved)
    srv.stop()  # one `serve` per app directory at a time (a second one refuses)
    srv2 = server_factory(app, "--dep", f"DEP123={moved}")
    assert srv2.client().call("use_dep")[0] == "shared"
