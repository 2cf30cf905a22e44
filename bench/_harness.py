"""What the benchmarks share: starting real servers on free ports, timing calls, reading memory."""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
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

    @anvil.server.callable
    def rows(n):
        return [{"id": i, "name": "row %d" % i, "score": i * 1.5, "tags": ["a", "b"]} for i in range(n)]

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

    def __init__(
        self,
        argv: list[str],
        port: int,
        ready_path: str = "/_/health",
        env: dict[str, str] | None = None,
        root: Path = ROOT,
        stderr: Path | None = None,
    ) -> None:
        """`root` is the source tree to run (`python -m anvil_dev` imports from its working directory);
        `stderr`, a file to keep the server's terminal lines in."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        full_env = dict(os.environ, PYTHONPATH=str(root))
        full_env.update(env or {})
        err = open(stderr, "wb") if stderr is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            start_new_session=True,
            cwd=root,
        )
        if stderr is not None:
            err.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + ready_path, timeout=5).status_code < 500:
                    break
            except requests.RequestException:  # not listening yet, or too busy to answer in time
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {argv} did not start")
            time.sleep(0.05)

    @classmethod
    def anvil_dev(
        cls, app: Path, *args: str, env: dict[str, str] | None = None, root: Path = ROOT, stderr: Path | None = None
    ) -> Server:
        port = free_port()
        return cls(
            [sys.executable, "-m", "anvil_dev", "--app", str(app), "serve", "--port", str(port), *args],
            port,
            env=env,
            root=root,
            stderr=stderr,
        )

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
    r = session.post(
        url + "/_/call",
        data=json.dumps({"command": command, "args": list(args)}),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    body = r.json()
    if "error" in body:
        raise RuntimeError(body["error"])
    return body["response"]


def latencies(
    url: str,
    n: int,
    warmup: int = 20,
    session: requests.Session | None = None,
    command: str = "add",
    args: tuple[Any, ...] = (1, 2),
) -> list[float]:
    """`n` back-to-back call times in ms, on a new session or on `session` (kept across turns)."""
    s = session or requests.Session()
    for _ in range(warmup):
        call(s, url, command, *args)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        call(s, url, command, *args)
        out.append((time.perf_counter() - t) * 1000)
    return out


class LeanClient:
    """A kept-alive client of `url` on http.client alone, its session cookie kept as a plain header.

    `requests` runs ~1 ms of the client's CPU a call here (adapters, hooks, urllib3, its cookie
    jar), more than half of a persistent call back to back, while a browser's XMLHttpRequest runs
    in native code. This client (~0.2 ms) leaves most of that out, so that what is timed is mostly
    the server. anvil-dev's own client (`anvil_dev.client.transport`) works alike; this one stays
    apart and minimal, so that the instrument does not change with the product.
    """

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=60)
        self.headers = {"Content-Type": "application/json"}

    def call(self, command: str, *args: Any) -> Any:
        self.conn.request("POST", "/_/call", json.dumps({"command": command, "args": list(args)}), self.headers)
        r = self.conn.getresponse()
        body = json.loads(r.read())
        cookie = r.getheader("Set-Cookie")
        if cookie:
            self.headers["Cookie"] = cookie.split(";", 1)[0]
        if r.status != 200 or "error" in body:
            raise RuntimeError(body.get("error", f"HTTP {r.status}"))
        return body["response"]

    def close(self) -> None:
        self.conn.close()


def lean_latencies(client: LeanClient, n: int, warmup: int = 20) -> list[float]:
    """`n` back-to-back times in ms of `add(1, 2)` over `client` (kept across turns)."""
    for _ in range(warmup):
        client.call("add", 1, 2)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.call("add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _caller(url: str, ready: Any, go: Any, seconds: float, counts: Any, lean: bool) -> None:
    """One caller of `throughput`, in a process of its own."""
    if lean:
        one_call = functools.partial(LeanClient(url).call, "add", 1, 2)
    else:
        one_call = functools.partial(call, requests.Session(), url, "add", 1, 2)
    for _ in range(5):  # warm: the session made, the connection kept, a worker ready
        one_call()
    ready.release()
    go.wait()
    n, stop = 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        one_call()
        n += 1
    counts.put(n)


def throughput(urls: list[str], callers: int = 8, seconds: float = 3.0, lean: bool = False) -> float:
    """Calls a second that `callers` processes (spread over `urls`) get through back to back, each
    over `requests` or, with `lean`, a `LeanClient`.

    Processes, not threads: 8 threads of one Python client share its GIL, and on 2 cores that
    client, not the server, set the pace (the floor's 700-800 calls/s with threads, ~1,400 with
    processes), which flattered every server that costs more CPU than the floor.
    """
    ctx = multiprocessing.get_context("fork")
    ready, go, counts = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_caller, args=(urls[i % len(urls)], ready, go, seconds, counts, lean))
        for i in range(callers)
    ]
    for p in procs:
        p.start()
    try:
        started, deadline = 0, time.monotonic() + 60
        while started < len(procs):
            if ready.acquire(timeout=0.2):
                started += 1
            elif any(p.exitcode is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError("a throughput caller failed to start (its traceback is above)")
        go.set()
        total = sum(counts.get(timeout=seconds + 60) for _ in procs)
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
    return total / seconds


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of range(n) in which each entry comes right after each other entry equally often (a
    Williams design: once each over n orders for an even n, twice over 2n for an odd one)."""
    first, low, high = [0], 1, n - 1
    while len(first) < n:
        first.append(low)
        low += 1
        if len(first) < n:
            first.append(high)
            high -= 1
    orders = [[(x + shift) % n for x in first] for shift in range(n)]
    return orders + [order[::-1] for order in orders] if n % 2 else orders


def ratio_interval(
    num_turns: list[list[float]], den_turns: list[list[float]], draws: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """A 95% interval for median(num) / median(den), two servers' call times taken in the same rounds
    of turns (`num_turns[i]` and `den_turns[i]` in round i): a bootstrap over the rounds, each drawn
    with both servers' turns in it, so that load that came and went during the run moves both.

    It says how far the ratio moved within this one run. What differs between runs (another time,
    the machine's other load) it cannot see, nor what one server process gets from the machine for
    the whole run: two servers of the same code have read 1.06x apart, interval 1.01-1.11.
    """
    rounds = min(len(num_turns), len(den_turns))
    rng = random.Random(seed)
    ratios = []
    for _ in range(draws):
        picked = [rng.randrange(rounds) for _ in range(rounds)]
        num = statistics.median(x for i in picked for x in num_turns[i])
        den = statistics.median(x for i in picked for x in den_turns[i])
        ratios.append(num / den)
    ratios.sort()
    return ratios[int(draws * 0.025)], ratios[int(draws * 0.975) - 1]


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
    return {"rss": fields.get("Rss", 0), "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)}


@contextlib.contextmanager
def baseline_tree(ref: str) -> Iterator[Path | None]:
    """A temporary git worktree of `ref` (the previous anvil-dev, say main's HEAD), removed afterwards;
    None when `ref` is empty or cannot be checked out (the figures then have no baseline column)."""
    if not ref:
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="anvil-dev-baseline-"))
    tree = tmp / "tree"
    made = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), ref],
        capture_output=True,
        text=True,
    )
    try:
        if made.returncode != 0:
            print(f"   (no baseline: git worktree add {ref} failed: {made.stderr.strip()})")
            yield None
        else:
            compile_bytecode(tree)
            yield tree
    finally:
        if made.returncode == 0:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def compile_bytecode(tree: Path) -> None:
    """A tree's `anvil_dev` compiled to bytecode, as `make` and a wheel's install leave it: where
    PYTHONDONTWRITEBYTECODE is set, each process would otherwise compile it from source (~150 ms of a
    cold start), and a tree compared without its bytecode would not be compared alike."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-x", "/(templates|browser)/", str(tree / "anvil_dev")],
        check=True,
        capture_output=True,
    )


def describe_tree(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return out.stdout.strip()[:70]


def make_big_app(root: Path, modules: int = 20) -> Path:
    """`anvil-dev init`'s scaffold plus generated server modules, `modules` in all (1: the scaffold as it is)."""
    app = root / f"App{modules}"
    subprocess.run(
        [sys.executable, "-m", "anvil_dev", "init", str(app)],
        check=True,
        capture_output=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    for i in range(1, modules):
        (app / "server_code" / f"Module{i:02d}.py").write_text(
            textwrap.dedent(f"""
            import datetime
            import json

            import anvil.server
            from anvil.tables import app_tables


            @anvil.server.callable
            def get_{i}(key):
                return json.dumps({{"key": key, "at": datetime.date(2024, 1, {i}).isoformat()}})


            @anvil.server.callable
            def count_{i}():
                return len(list(app_tables.feedback.search()))


            class Helper{i}:
                def __init__(self, n):
                    self.n = n

                def twice(self):
                    return [self.n * 2 for _ in range({i})]
        """)
        )
    return app


def cold_start(app: Path, *args: str, root: Path = ROOT, n: int = 3) -> list[float]:
    """ms from launching `anvil-dev serve` to the first answered call of add(1, 2), `n` launches."""
    out = []
    for _ in range(n):
        port = free_port()
        url = f"http://127.0.0.1:{port}/_/call"
        body = json.dumps({"command": "add", "args": [1, 2]})
        env = dict(os.environ, PYTHONPATH=str(root))
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "anvil_dev", "--app", str(app), "serve", "--port", str(port), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=root,
        )
        try:
            s = requests.Session()
            while True:
                try:
                    r = s.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=5)
                    if r.status_code == 200 and r.json().get("response") == 3:
                        break
                except requests.ConnectionError:
                    pass
                if proc.poll() is not None or time.perf_counter() - start > 60:
                    raise RuntimeError(f"serve of {app} did not answer")
                time.sleep(0.005)
            out.append((time.perf_counter() - start) * 1000)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    return out


def tree_rss_kb(pid: int) -> dict[str, int]:
    """RSS of the host, and of each engine process below it by role (zygote, templates, children)."""
    out = {"host": memory_kb(pid)["rss"]}
    for z in children(pid):
        if "engine.zygote" not in cmdline(z):
            continue
        out["zygote"] = memory_kb(z)["rss"]
        kids = children(z)
        out["zygote_children"] = len(kids)
        out["zygote_children_rss"] = sum(memory_kb(k)["rss"] for k in kids)
        grandkids = [g for k in kids for g in children(k)]
        out["template_children"] = len(grandkids)
    return out
