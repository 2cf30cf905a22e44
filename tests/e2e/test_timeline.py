"""ANVIL_DEV_TIMELINE (anvil_dev/timeline.py, read by bench/timeline.py): a real `anvil-dev serve`
records each call's points in the host and in the child that ran it, in the order they happened."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import ServerProcess, write_module

ECHO = """
    import anvil.server

    @anvil.server.callable
    def echo(x):
        return x
"""


@pytest.mark.parametrize("mode", [[], ["--keep-server-running"]], ids=["fresh", "keep-server-running"])
def test_each_call_is_timed_leg_by_leg_in_host_and_child(
    app_dir: Path, server_factory: Callable[..., ServerProcess], tmp_path: Path, mode: list[str]
) -> None:
    write_module(app_dir, "Echo", ECHO)
    record = tmp_path / "timeline.jsonl"
    srv = server_factory(app_dir, *mode, env={"ANVIL_DEV_TIMELINE": str(record)})
    client = srv.client()
    assert [client.call("echo", i) for i in range(3)] == [0, 1, 2]
    srv.stop()

    lines = [json.loads(line) for line in record.read_text().splitlines()]
    hosts = {line["id"]: line for line in lines if line["side"] == "host"}
    children = {line["id"]: line for line in lines if line["side"] == "child"}
    timed = [dict(hosts[i], **children[i]) for i in hosts if i in children]
    assert len(timed) == 3, lines
    for call in timed:
        points = [call[p] for p in ("request", "engine", "started", "replied", "answered", "written")]
        assert points == sorted(points), call
        assert call["faults_during"] >= 0
    pids = {call["pid"] for call in timed}
    assert len(pids) == (3 if not mode else 1)  # a fresh child per call; one persistent worker
