"""Media through a real server: both ways over HTTP, downloads, anvil.media, the CLI, tables, sessions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from anvil_dev.client import Connection, Media
from anvil_dev.scaffold import scaffold

from helpers import ROOT, ServerProcess, run_cli, write_module

MB = 1 << 20
BLOCK = bytes(range(256)) * 4096  # 1 MiB with every byte value

MEDIA_MODULE = """
    import hashlib
    import os
    import tempfile

    import anvil
    import anvil.media
    import anvil.server

    BLOCK = bytes(range(256)) * 4096

    def peak_rss_mb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return 0

    @anvil.server.callable
    def describe(media):
        digest = hashlib.sha256()
        with anvil.media.open(media) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return {"is_media": isinstance(media, anvil.Media), "content_type": media.content_type,
                "name": media.name, "length": media.length, "sha256": digest.hexdigest(),
                "peak_rss_mb": peak_rss_mb()}

    @anvil.server.callable
    def echo(media):
        return media

    @anvil.server.callable
    def make(n, name="made.bin", content_type="application/octet-stream"):
        # Built in a file, not in memory; from_file copies it before TempFile deletes it.
        with anvil.media.TempFile() as path:
            with open(path, "wb") as f:
                left = n
                while left > 0:
                    f.write(BLOCK[:left])
                    left -= len(BLOCK)
            return anvil.media.from_file(path, content_type, name)

    @anvil.server.callable
    def blob(text, content_type, name):
        return anvil.BlobMedia(content_type, text.encode(), name=name)

    @anvil.server.callable
    def helpers():
        m = anvil.BlobMedia("text/csv", b"a,b\\n1,2\\n", name="data.csv")
        with anvil.media.TempFile(m) as path:
            with open(path, "rb") as f:
                in_temp_file = f.read().decode()
            suffix = os.path.splitext(path)[1]
        out = os.path.join(tempfile.mkdtemp(), "copy.csv")
        anvil.media.write_to_file(m, out)
        again = anvil.media.from_file(out)
        with anvil.media.open(again) as f:
            opened = f.read().decode()
        return {"in_temp_file": in_temp_file, "suffix": suffix, "temp_file_gone": not os.path.exists(path),
                "from_file": [isinstance(again, anvil.BlobMedia), again.content_type, again.name, again.length],
                "opened": opened}

    @anvil.server.callable
    def into_session(media=None):
        try:
            anvil.server.session["m"] = media or anvil.BlobMedia("text/plain", b"x")
        except Exception as e:
            return [type(e).__name__, str(e)]

    @anvil.server.callable
    def store_in_table(media):
        from anvil.tables import app_tables
        return app_tables.files.add_row(label=media.name, file=media).get_id()

    @anvil.server.callable
    def load_from_table(row_id):
        from anvil.tables import app_tables
        row = app_tables.files.get_by_id(row_id)
        return [row["label"], row["file"]]
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_blocks(path: Path, n: int) -> Path:
    with open(path, "wb") as f:
        left = n
        while left > 0:
            f.write(BLOCK[:left])
            left -= len(BLOCK)
    return path


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.fixture(scope="module")
def media_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    app = scaffold(tmp_path_factory.mktemp("media") / "MediaApp")
    write_module(app, "MediaFns", MEDIA_MODULE)
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config.setdefault("db_schema", {})["files"] = {
        "title": "Files",
        "client": "none",
        "server": "full",
        "columns": [{"name": "label", "type": "string"}, {"name": "file", "type": "media"}],
    }
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return app


@pytest.fixture(scope="module")
def media_server(media_app: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(media_app)
    yield s
    s.stop()


@pytest.fixture
def media_client(media_server: ServerProcess) -> Connection:
    return media_server.client()


@pytest.mark.parametrize("size", [0, 1, 70_000], ids=["0B", "1B", "70KB"])
def test_media_both_ways(media_client: Connection, media_server: ServerProcess, size: int) -> None:
    content = (BLOCK * 1)[:size]
    sent = Media("text/csv", content, "report.csv")
    seen = media_client.call("describe", sent)
    assert seen["is_media"] and (seen["content_type"], seen["name"], seen["length"]) == ("text/csv", "report.csv", size)
    assert seen["sha256"] == hashlib.sha256(content).hexdigest()

    back = media_client.call("echo", sent)
    assert (back.content_type, back.name, back.length) == ("text/csv", "report.csv", size)
    assert back.get_bytes() == content
    resp = requests.get(media_server.url + back.url)
    assert resp.status_code == 200 and resp.content == content
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "report.csv" in resp.headers["Content-Disposition"]


def test_media_made_on_the_server(media_client: Connection, media_server: ServerProcess) -> None:
    made = media_client.call("blob", "héllo", "text/plain", "greeting.txt")
    assert (made.content_type, made.name, made.get_bytes()) == ("text/plain", "greeting.txt", "héllo".encode())
    resp = requests.get(media_server.url + made.url)
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert "greeting.txt" in resp.headers["Content-Disposition"]


def test_download_urls_are_signed(media_client: Connection, media_server: ServerProcess) -> None:
    made = media_client.call("blob", "secret", "text/plain", "s.txt")
    token = made.url.rsplit("/", 1)[1]
    assert requests.get(media_server.url + "/_/media/" + token[:-2] + "xx").status_code == 404
    assert requests.get(media_server.url + "/_/media/not-a-token").status_code == 404


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads peak memory from /proc")
def test_100mb_media_round_trip_without_copies_in_memory(
    media_client: Connection, media_server: ServerProcess, tmp_path: Path
) -> None:
    size = 100 * MB
    source = write_blocks(tmp_path / "big.bin", size)
    expected = sha256_file(source)

    seen = media_client.call("describe", Media.from_file(str(source), "application/x-big"))
    assert (seen["length"], seen["sha256"], seen["name"]) == (size, expected, "big.bin")
    back = media_client.call("echo", Media.from_file(str(source), "application/x-big"))
    assert back.content_type == "application/x-big" and back.length == size
    assert back.write_to_file(str(tmp_path / "back.bin")) == size
    assert sha256_file(tmp_path / "back.bin") == expected

    made = media_client.call("make", size, "made.bin")
    assert made.write_to_file(str(tmp_path / "made.bin")) == size
    assert sha256_file(tmp_path / "made.bin") == expected

    # Neither the host nor the worker held the 100 MB in memory (a copy alone would be 100 MB).
    assert peak_rss_mb(media_server.proc.pid) < 100, f"host peak RSS {peak_rss_mb(media_server.proc.pid):.0f} MB"
    assert seen["peak_rss_mb"] < 100, f"worker peak RSS {seen['peak_rss_mb']:.0f} MB"


def test_anvil_media_helpers(media_client: Connection) -> None:
    assert media_client.call("helpers") == {
        "in_temp_file": "a,b\n1,2\n",
        "suffix": "",
        "temp_file_gone": True,  # Anvil: media.py line 16
        "from_file": [True, None, "copy.csv", 8],
        "opened": "a,b\n1,2\n",
    }  # no type guessed: media.py line 38


def test_cli_call_writes_returned_media_to_a_file(media_server: ServerProcess, media_app: Path, tmp_path: Path) -> None:
    out = run_cli(
        "--app",
        str(media_app),
        "call",
        "make",
        "70000",
        "--kw",
        "name=report.csv",
        "--kw",
        "content_type=text/csv",
        "--url",
        media_server.url,
        "--media-dir",
        str(tmp_path),
    )
    assert out.returncode == 0, out.stderr
    target = tmp_path / "report.csv"
    assert f"wrote 70000 bytes (text/csv) to {target}" in out.stderr
    assert target.read_bytes() == BLOCK[:70000]


def test_media_in_a_table_media_column(media_client: Connection) -> None:
    if not (ROOT / "anvil_dev" / "runtime" / "anvil" / "tables" / "__init__.py").exists():
        pytest.skip("anvil.tables is not in this checkout")
    row_id = media_client.call("store_in_table", Media("image/png", b"\x89PNG fake", "pic.png"))
    label, media = media_client.call("load_from_table", row_id)
    assert (label, media.content_type, media.name, media.get_bytes()) == (
        "pic.png",
        "image/png",
        "pic.png",
        b"\x89PNG fake",
    )


def test_media_refused_in_session(media_client: Connection) -> None:
    refusal = ["SerializationError", "Cannot save DataMedia objects in anvil.server.session"]
    assert media_client.call("into_session") == refusal
    assert media_client.call("into_session", Media("text/plain", b"from the client")) == refusal


def test_media_in_a_json_call_is_refused(media_server: ServerProcess) -> None:
    resp = requests.post(
        media_server.url + "/_/call",
        json={
            "command": "echo",
            "args": [None],
            "objects": [{"path": ["args", 0], "type": ["DataMedia"], "id": "abcdefghij", "mime-type": "text/plain"}],
        },
    )
    assert resp.status_code == 400 and "multipart" in resp.json()["error"]["message"]


def test_missing_media_part_is_reported(media_server: ServerProcess) -> None:
    import json

    resp = requests.post(
        media_server.url + "/_/call",
        files={
            "json": (
                None,
                json.dumps(
                    {
                        "command": "echo",
                        "args": [None],
                        "objects": [
                            {"path": ["args", 0], "type": ["DataMedia"], "id": "part0", "mime-type": "text/plain"}
                        ],
                    }
                ),
            )
        },
    )
    assert resp.status_code == 400 and "no part named 'part0'" in resp.json()["error"]["message"]
