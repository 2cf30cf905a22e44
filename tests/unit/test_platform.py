"""`serve` refuses, in one line, on a system without fork or SOCK_SEQPACKET (simulated in this process)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from anvil_dev.cli import cli


def _refuse_seqpacket(*args: object, **kwargs: object) -> object:
    raise OSError(93, "Protocol not supported")


@pytest.mark.parametrize(
    ("target", "name", "missing"),
    [
        (os, "fork", "os.fork"),
        (socket, "SOCK_SEQPACKET", "SOCK_SEQPACKET"),
        (socket, "AF_UNIX", "SOCK_SEQPACKET"),
    ],
)
def test_serve_refuses_without_an_attribute(
    app_dir: Path, cli_runner: CliRunner, monkeypatch: pytest.MonkeyPatch, target: object, name: str, missing: str
) -> None:
    monkeypatch.delattr(target, name)
    result = cli_runner.invoke(cli, ["--app", str(app_dir), "serve", "--port", "1"])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: anvil-dev serve needs ")
    assert missing in lines[0]
    assert "Traceback" not in result.output


def test_serve_refuses_when_the_system_rejects_seqpacket(
    app_dir: Path, cli_runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As where the constant exists but AF_UNIX sockets do not support it.
    monkeypatch.setattr(socket, "socketpair", _refuse_seqpacket)
    result = cli_runner.invoke(cli, ["--app", str(app_dir), "serve", "--port", "1"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "Unix-domain SOCK_SEQPACKET sockets" in result.output
