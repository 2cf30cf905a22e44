"""Where a call's time goes, leg by leg, for `bench/timeline.py`: off unless ANVIL_DEV_TIMELINE
names a file.

When on, each process appends one JSON line per call to that file. The host's has the times the
request's first bytes came on a kept connection (`arrived`), our route began (`request`), the
engine was asked (`engine`) and answered (`answered`), and the host was done with the response
(`written`: by the host then, or by the child before its reply, `anvil_dev.engine.direct`).
The child's has the times its call started (`started`) and its reply was sent (`replied`), and
its page faults before and during the call (copy-on-write faults, in a fresh child).
Times are `time.perf_counter()`, CLOCK_MONOTONIC on Linux: one clock for every process. Lines are
matched by call id. When off, each point costs the test of `ON`.
"""

from __future__ import annotations

import json
import os
import resource
import threading
import time
from typing import Any

ENV = "ANVIL_DEV_TIMELINE"
ON = bool(os.environ.get(ENV))
_points = threading.local()


def write(line: dict[str, Any]) -> None:
    # O_APPEND: lines from several processes land whole (one write each, well under PIPE_BUF).
    fd = os.open(os.environ[ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def host_mark(name: str, call_id: str | None = None) -> None:
    """A point of the request on this thread; `call_id` names its call (the engine knows it)."""
    points = getattr(_points, "host", None)
    if points is None:
        points = _points.host = {}
    points[name] = time.perf_counter()
    if call_id is not None:
        points["id"] = call_id


def host_done() -> None:
    """The request's response is written: its line goes out (a call the engine did not run has none)."""
    points = getattr(_points, "host", None)
    _points.host = None
    if points and "id" in points:
        points["written"] = time.perf_counter()
        write(dict(points, side="host"))


def child_started() -> tuple[float, int]:
    """The time a call starts in the child, and this process's page faults so far."""
    return time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def child_replying(call_id: str, started: tuple[float, int]) -> dict[str, Any]:
    """The call's line, timed as its reply is about to be sent: the host, woken by the send, may
    take this CPU at once. `write` it once the reply is out."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    return {
        "side": "child",
        "id": call_id,
        "pid": os.getpid(),
        "started": started[0],
        "replied": time.perf_counter(),
        "faults_before": started[1],
        "faults_during": faults - started[1],
    }
