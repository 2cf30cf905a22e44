"""Uplink latency: the real anvil-uplink client calling a server module, next to plain HTTP.

Starts `anvil-dev serve --keep-server-running` on a temporary app, then times the same call
(`add(1, 2)` in a server module) three ways, each after a warm-up:
  1. HTTP: POST /_/call from a Python client with a kept-alive connection;
  2. uplink -> server module: `anvil.server.call("add", 1, 2)` in an anvil-uplink script;
  3. HTTP -> uplink: a POST /_/call of a function the uplink script registered.
Run with `python bench/bench_uplink.py [--n 300]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, call, latencies, make_app, summary

UPLINK_SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    import anvil.server

    key, url, n, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    @anvil.server.callable
    def up_add(a, b):
        return a + b

    anvil.server.connect(key, url=url, quiet=True)
    for _ in range(warmup):
        anvil.server.call("add", 1, 2)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        anvil.server.call("add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    print(json.dumps(out), flush=True)
    sys.stdin.readline()  # stay connected (serving up_add) until told to go
    os._exit(0)
""")


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f} ms  (n={s['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300, help="timed calls per way (default 300)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        script = Path(tmp) / "uplink_bench.py"
        script.write_text(UPLINK_SCRIPT)
        server = Server.anvil_dev(app, "--keep-server-running")
        uplink = None
        try:
            http = summary(latencies(server.url, opts.n))
            key = (app / ".anvil-dev" / "uplink.key").read_text().strip()
            uplink = subprocess.Popen(
                [sys.executable, str(script), key, f"ws://127.0.0.1:{server.port}/_/uplink", str(opts.n), "20"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert uplink.stdout is not None
            timer = threading.Timer(120, uplink.kill)
            timer.start()
            line = uplink.stdout.readline()
            timer.cancel()
            if not line:
                raise RuntimeError("the uplink script failed (see its output above)")
            up = summary(json.loads(line))
            to_uplink = summary(_latencies_of(server.url, "up_add", opts.n))
        finally:
            if uplink is not None:
                uplink.kill()
                uplink.wait()
            server.stop()
    print("add(1, 2) in a server module, persistent mode (--keep-server-running):")
    print(f"  HTTP POST /_/call          {fmt(http)}")
    print(f"  uplink -> server module    {fmt(up)}   ({up['p50'] / http['p50']:.2f}x HTTP)")
    print(f"  HTTP -> uplink function    {fmt(to_uplink)}   ({to_uplink['p50'] / http['p50']:.2f}x HTTP)")


def _latencies_of(url: str, command: str, n: int) -> list[float]:
    s = requests.Session()
    for _ in range(20):
        call(s, url, command, 1, 2)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call(s, url, command, 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    return out


if __name__ == "__main__":
    main()
