"""What the benchmarks share: starting real servers on free ports, timing calls, reading memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent

BENCH_MODULE = textwrap.dedent("""
    import anvil.server

    @anvil.server.callable
    def add(a, b):
        return a + b

    @anvil.server.callable
    def version():
        return VERSION

    VERSION = 0
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_app(root: Path, name: str = "BenchApp") -> Path:
    app = root / name
    (app / "server_code").mkdir(parents=True, exist_ok=True)
    (app / "client_code").mkdir(exist_ok=True)
    (app / "anvil.yaml").write_text(f"name: {name}\npackage_name: {name}\nruntime_options: {{version: 2}}\n")
    (app / "server_code" / "Bench.py").write_text(BENCH_MODULE)
    return app


class Server:
    """A subprocess serving HTTP on a free port, stopped (with its process group) by stop()."""

    def __init__(self, argv: list[str], port: int, ready_path: str = "/_/health", env: dict[str, str] | None = None,
                 root: Path = ROOT) -> None:
        """`root` is the source tree to run (`python -m anvil_dev` imports from its working directory)."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = dict(os.environ, PYTHONPATH=str(root))
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, env=full_env, start_new_session=True, cwd=root)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + ready_path, timeout=1).status_code < 500:
                    break
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {argv} did not start")
            time.sleep(0.05)

    @classmethod
    def anvil_dev(cls, app: Path, *args: str, env: dict[str, str] | None = None, root: Path = ROOT) -> Server:
        port = free_port()
        return cls([sys.executable, "-m", "anvil_dev", "--app", str(app), "serve", "--port", str(port), *args], port,
                   env=env, root=root)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def call(session: requests.Session, url: str, command: str, *args: Any) -> Any:
    r = session.post(url + "/_/call", data=json.dumps({"command": command, "args": list(args)}),
                     headers={"Content-Type": "application/json"}, timeout=60)
    body = r.json()
    if "error" in body:
        raise RuntimeError(body["error"])
    return body["response"]


def latencies(url: str, n: int, warmup: int = 20) -> list[float]:
    s = requests.Session()
    for _ in range(warmup):
        call(s, url, "add", 1, 2)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call(s, url, "add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> dict[str, float]:
    ms = sorted(ms)
    return {"p50": statistics.median(ms), "p95": ms[min(len(ms) - 1, int(len(ms) * 0.95))], "n": len(ms)}


def children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory_kb(pid: int) -> dict[str, int]:
    """RSS and USS (private memory: what this process costs beyond what it shares) in KiB."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                    fields[parts[0][:-1]] = int(parts[1])
    except OSError:
        return {"rss": 0, "uss": 0}
    return {"rss": fields.get("Rss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}
