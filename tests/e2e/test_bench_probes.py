"""The bench's probes that reach into the engine's internals still run against them."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from helpers import ROOT


def test_idle_cpu_times_a_worker_call_in_each_arrangement() -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("bench/idle_cpu.py needs two CPUs; this machine gives the tests one")
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "idle_cpu.py"), "--calls", "20", "--rounds", "1", "--work-us", "50"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^  (.+?) +p50 +[0-9.]+ us +[0-9.]+x$", out.stdout, re.MULTILINE)
    assert rows == [
        "alone, back to back",
        "partner, same CPU",
        "partner, other CPU (this one idles)",
        "partner, other CPU, this one kept busy",
        "other CPU, then same",
    ], out.stdout
