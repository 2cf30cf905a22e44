"""Persistent workers side by side: Anvil's own "Keep server running" worker next to anvil-dev's.

Times `add(1, 2)` back to back through two persistent Python workers on this machine, in the same run:
  1. Anvil's: the downlink host and worker of the `anvil-app-server` wheel (1.18.0), the Python half of
     Anvil's App Server, driven over its own websocket by a small stand-in for Anvil's platform written
     here (its Java platform is not downloaded: only the Python that runs server code is measured);
  2. anvil-dev's: `anvil-dev serve --keep-server-running`, over HTTP (POST /_/call, one kept-alive client);
  3. the floor of `make bench`: the same function in a bare Flask route, over the same HTTP client. The
     transports differ (a bare websocket client for Anvil's, `requests` over HTTP for ours), and this
     line shows what HTTP and the client alone cost;
  4. anvil-dev's again, its session cookie sent as a plain header: `requests` keeps a cookie in
     http.cookiejar, pure Python that runs at every request (a browser's cookies cost it next to
     nothing), and the floor sets none. This line shows what that costs the client;
  5. and 6. anvil-dev's and the floor over a lean HTTP client (`LeanClient`: http.client alone, the
     cookie as a header). `requests` runs ~1 ms of the client's CPU a call, where the stand-in
     platform's websocket end (wsproto) runs ~0.17 ms, so lines 2-4 compare the clients as much as
     the servers.
Each line also shows the client's own CPU time a call (the bench process's, over its turns): back to
back the client's work is on every call's path, so the p50 less it is what the servers and the
transport took. Ratios carry a 95% interval within the run in brackets (`ratio_interval`).
Both serve the same server module (the harness's `add`, plus a `worker_info` check), take turns in blocks
of calls after a warm-up, and report p50/p90 and their ratio. Each is checked to have answered every
call from ONE process that kept its module state (its pid and a module-level counter, asked after every
block; for Anvil's, also the host's own log of workers launched).

The platform's side of the downlink protocol, as this stand-in plays it (a wsproto websocket server):
  - answer the host's `{"key", "v": 2, "spec"}` with `{"auth": "OK"}`;
  - send CALL with `persist-key`, `app-id` and `app-version` (and `DOWNLINK_CAN_PERSIST=1`), so the
    host routes every call to its cached worker;
  - answer the worker's GET_APP with PROVIDE_APP (the app as JSON, its module source in `server_modules`),
    and the host's keep-alive `anvil.private.echo` calls; STATS and output messages are ignored.

Needs the PyPI registry: at start it runs `pip install --no-deps --target TMP anvil-app-server==1.18.0
psutil` (psutil is the one module the host imports that the venv lacks), and runs the host from there;
without a registry it says why and exits 0. Everything listens on 127.0.0.1 and is removed at the end.
Run with `python bench/bench_anvil_persistent.py [--n 1200] [--block 30] [--warmup 100]`.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BENCH_MODULE,
    ROOT,
    LeanClient,
    Server,
    balanced_orders,
    call,
    children,
    cmdline,
    free_port,
    latencies,
    lean_latencies,
    make_app,
    ratio_interval,
)

ANVIL_WHEEL = "anvil-app-server==1.18.0"
APP_ID = "BENCHAPP"
APP_VERSION = "bench-1"  # what the platform derives from the commit; one version, so one cached worker
PERSIST_KEY = "bench-env"

# The harness's module (`add`), plus a check that the calls stay in one process with its module state.
MODULE = (
    BENCH_MODULE
    + """
import os

_INFO_CALLS = [0]


@anvil.server.callable
def worker_info():
    _INFO_CALLS[0] += 1
    return [os.getpid(), _INFO_CALLS[0]]
"""
)

# The app as the platform hands it to a worker (the keys its PROVIDE_APP keeps).
APP_JSON = {
    "package_name": "BenchApp",
    "runtime_options": {"version": 2, "server_persist": True},
    "server_modules": [{"name": "Bench", "code": MODULE}],
    "modules": [],
    "forms": [],
    "scripts": [],
    "dependency_code": {},
    "dependency_order": [],
    "dependency_ids": {},
    "config": {},
}


class Platform:
    """Our stand-in for Anvil's platform: the server end of the downlink websocket. wsproto on a plain
    blocking socket, on this thread, so that none of our own thread hand-offs lands inside a timed call."""

    def __init__(self, listener: socket.socket, key: str) -> None:
        listener.settimeout(60)
        self.sock, _ = listener.accept()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(60)  # a call that never answers fails the bench instead of hanging it
        self.ws = WSConnection(ConnectionType.SERVER)
        self.inbox: collections.deque[dict[str, Any]] = collections.deque()
        self.text: list[str] = []
        self.path = ""
        self.ids = itertools.count(1)
        self.seen: collections.Counter[str] = collections.Counter()  # the messages that were not our answers
        auth = self.receive()
        if auth.get("key") != key or auth.get("v") != 2:
            raise RuntimeError(f"unexpected auth message from the downlink host: {auth!r}")
        self.spec = auth.get("spec", {})
        self.send({"auth": "OK"})

    def _pump(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the downlink host closed its websocket")
        self.ws.receive_data(data)
        for ev in self.ws.events():
            if isinstance(ev, Request):
                self.path = ev.target
                self.sock.sendall(self.ws.send(AcceptConnection()))
            elif isinstance(ev, TextMessage):
                self.text.append(ev.data)
                if ev.message_finished:
                    self.inbox.append(json.loads("".join(self.text)))
                    self.text = []
            elif isinstance(ev, Ping):
                self.sock.sendall(self.ws.send(ev.response()))
            elif isinstance(ev, CloseConnection):
                raise ConnectionError(f"the downlink host closed its websocket: {ev.code} {ev.reason}")

    def receive(self) -> dict[str, Any]:
        while not self.inbox:
            self._pump()
        return self.inbox.popleft()

    def send(self, msg: dict[str, Any]) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(msg))))

    def answer(self, msg: dict[str, Any]) -> None:
        """Whatever the host or its worker sends that is not the response being waited for."""
        kind = msg.get("type")
        mid = str(msg.get("id", ""))
        if kind == "GET_APP":
            self.seen["GET_APP (answered PROVIDE_APP)"] += 1
            self.send(
                {
                    "type": "PROVIDE_APP",
                    "id": mid,
                    "app-id": msg.get("app-id"),
                    "app-version": msg.get("app-version"),
                    "app": APP_JSON,
                }
            )
        elif kind == "CALL" and mid.startswith("downlink-keepalive"):
            self.seen["keep-alive anvil.private.echo (answered)"] += 1
            self.send({"id": mid, "response": (msg.get("args") or [None])[0]})
        elif kind == "CALL":
            raise RuntimeError(f"unexpected outbound call from Anvil's worker: {msg.get('command')!r}")
        elif kind in ("STATS", "SPANS", "TRACE"):
            self.seen[f"{kind} (ignored)"] += 1
        elif "output" in msg:
            self.seen["output (ignored)"] += 1
        else:
            self.seen[f"other: {json.dumps(msg)[:80]}"] += 1

    def call(self, command: str, *args: Any) -> Any:
        cid = f"client-bench-{next(self.ids)}"
        # The keys the platform's downlink executor puts on a browser's call (a trimmed set of them).
        self.send(
            {
                "type": "CALL",
                "id": cid,
                "call-stack-id": cid,
                "call-stack": [{"type": "browser"}],
                "client": {"type": "browser", "ip": "127.0.0.1", "location": None},
                "sessionData": {"session": None, "objects": []},
                "session-id": "bench-session",
                "app-id": APP_ID,
                "app-info": {"id": APP_ID, "branch": "master", "environment": {"description": "Bench", "tags": []}},
                "commit-id": APP_VERSION,
                "app-version": APP_VERSION,
                "persist-key": PERSIST_KEY,
                "enable-profiling": False,
                "command": command,
                "args": list(args),
                "kwargs": {},
                "objects": [],
            }
        )
        while True:
            msg = self.receive()
            if msg.get("id") == cid and ("response" in msg or "error" in msg):
                break
            self.answer(msg)
        if "error" in msg:
            raise RuntimeError(f"Anvil's worker answered {command} with an error: {msg['error']}")
        return msg["response"]

    def close(self) -> None:
        self.sock.close()


def anvil_latencies(platform: Platform, n: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        platform.call("add", 1, 2)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        result = platform.call("add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
        assert result == 3, result
    return out


def cookie_as_header(url: str) -> requests.Session:
    """A client of `url` that sends the session cookie its first call got as a plain Cookie header,
    its cookie jar left empty (so `requests` runs none of http.cookiejar's matching per request)."""
    session = requests.Session()
    call(session, url, "add", 1, 2)
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    if not cookie:
        raise RuntimeError(f"{url} set no session cookie")
    session.cookies.clear()
    session.headers["Cookie"] = cookie
    return session


def p50_p90(ms: list[float]) -> tuple[float, float]:
    return statistics.median(ms), statistics.quantiles(ms, n=10)[-1]


def one_process(infos: list[list[int]]) -> tuple[bool, str]:
    """Whether every check call came from one process whose module-level counter kept counting."""
    pids = {pid for pid, _ in infos}
    counts = [n for _, n in infos]
    ok = len(pids) == 1 and counts == list(range(counts[0], counts[0] + len(counts)))
    return ok, f"pids seen {sorted(pids)}, module counter {counts[0]}..{counts[-1]} over {len(counts)} checks"


def install_wheel(target: Path) -> str | None:
    """Install Anvil's downlink into `target`; None when it worked, else why not."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    try:
        done = subprocess.run([*cmd, ANVIL_WHEEL, "psutil"], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"pip did not run: {e}"
    if done.returncode != 0:
        return f"pip install {ANVIL_WHEEL} psutil failed:\n{(done.stderr or done.stdout).strip()[-1500:]}"
    return None


def stop_host(host: subprocess.Popen[bytes]) -> list[int]:
    """Stop the host and its workers; the pids that are still running afterwards (none, if all went well).
    Each worker puts itself in a process group of its own (Anvil's `get_demote_fn`), so the host's group
    alone would not take them with it."""
    tree = children(host.pid)
    tree += [g for p in tree for g in children(p)]
    for pid in tree:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(host.pid, signal.SIGTERM)
        host.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(host.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    host.wait()
    deadline = time.monotonic() + 5
    while True:
        alive = [p for p in tree if running(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1200, help="timed calls per worker (default 1200)")
    parser.add_argument("--block", type=int, default=30, help="calls per turn (default 30)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed calls per worker first (default 100)")
    opts = parser.parse_args()
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="anvil-persistent-bench-"))
    host: subprocess.Popen[bytes] | None = None
    platform: Platform | None = None
    server: Server | None = None
    floor: Server | None = None
    left: list[int] = []
    try:
        target = tmp / "site"
        why = install_wheel(target)
        if why is not None:
            print(f"Anvil's persistent worker not measured: {why}")
            return
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        key = "bench-" + os.urandom(8).hex()
        env = dict(os.environ)
        env.pop("ENABLE_PDF_RENDER", None)  # no PDF renderer (it would want Chrome)
        env.update(
            PYTHONPATH=str(target),
            DOWNLINK_SERVER=f"ws://127.0.0.1:{port}/_/downlink",
            DOWNLINK_KEY=key,
            DOWNLINK_CAN_PERSIST="1",
            DOWNLINK_WORKER_TIMEOUT="30",
            PYTHONUNBUFFERED="1",  # its log is read below, and SIGTERM ends it with os._exit (no flush)
        )
        log = tmp / "downlink-host.log"
        with open(log, "wb") as out:
            host = subprocess.Popen(
                [sys.executable, "-m", "anvil_downlink_host.run"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,  # `-m` puts the working directory on sys.path: nothing of ours there
                start_new_session=True,
            )
        platform = Platform(listener, key)
        listener.close()

        app = make_app(tmp)
        (app / "server_code" / "Bench.py").write_text(MODULE)
        server = Server.anvil_dev(app, "--keep-server-running")
        session = requests.Session()
        floor_port = free_port()
        floor = Server([sys.executable, str(ROOT / "bench" / "_floor_app.py"), str(floor_port)], floor_port)
        floor_session = requests.Session()
        header_session = cookie_as_header(server.url)
        lean, floor_lean = LeanClient(server.url), LeanClient(floor.url)

        infos: dict[str, list[list[int]]] = {"anvil": [platform.call("worker_info")], "dev": []}
        infos["dev"].append(call(session, server.url, "worker_info"))
        anvil_latencies(platform, 0, opts.warmup)
        latencies(server.url, 0, opts.warmup, session)
        latencies(floor.url, 0, opts.warmup, floor_session)
        latencies(server.url, 0, opts.warmup, header_session)
        lean_latencies(lean, 0, opts.warmup)
        lean_latencies(floor_lean, 0, opts.warmup)

        # Turns of `block` calls in balanced orders, so that load from elsewhere on the machine (two
        # shared cores) falls on all alike and each follows each other equally often.
        measure = {
            "anvil": lambda n: anvil_latencies(platform, n, warmup=5),
            "dev": lambda n: latencies(server.url, n, 5, session),
            "floor": lambda n: latencies(floor.url, n, 5, floor_session),
            "dev_header": lambda n: latencies(server.url, n, 5, header_session),
            "dev_lean": lambda n: lean_latencies(lean, n, 5),
            "floor_lean": lambda n: lean_latencies(floor_lean, n, 5),
        }
        times: dict[str, list[float]] = {k: [] for k in measure}
        rounds: dict[str, list[list[float]]] = {k: [] for k in measure}  # the same, a list a turn
        cpu_ms: dict[str, float] = dict.fromkeys(measure, 0.0)  # the client's, over its timed calls and their warm-ups
        check = {"anvil": lambda: platform.call("worker_info"), "dev": lambda: call(session, server.url, "worker_info")}
        names, orders = list(times), balanced_orders(len(times))
        for i in range(max(1, opts.n // opts.block)):
            for k in (names[j] for j in orders[i % len(orders)]):
                cpu = time.process_time()
                rounds[k].append(measure[k](opts.block))
                times[k] += rounds[k][-1]
                cpu_ms[k] += (time.process_time() - cpu) * 1000
                if k in check:
                    infos[k].append(check[k]())

        host_log = log.read_text(errors="replace")
        workers = [p for p in children(host.pid) if "anvil_downlink_worker" in cmdline(p)]
        launched = host_log.count("Launched new persistent worker")
        single_use = host_log.count("Single-use worker")
        reused = host_log.count("Found worker for")
        calls_sent = next(platform.ids) - 1

        labels = {
            "anvil": "Anvil's (anvil-app-server 1.18.0 downlink host + worker, over its websocket)",
            "dev": "anvil-dev --keep-server-running (over HTTP, `requests`)",
            "floor": "the floor: a bare Flask route, over the same HTTP client",
            "dev_header": "anvil-dev again, its session cookie as a plain header (no cookie jar)",
            "dev_lean": "anvil-dev over a lean HTTP client (http.client, the cookie as a header)",
            "floor_lean": "the floor over the same lean client",
        }
        turns = max(1, opts.n // opts.block)
        a50 = statistics.median(times["anvil"])
        a_rest = a50 - cpu_ms["anvil"] / (len(times["anvil"]) + 5 * turns)
        n_a, n_d = len(times["anvil"]), len(times["dev"])
        print(f"persistent worker, back to back, add(1, 2) ({n_a} + {n_d} calls each, turns of {opts.block}):")
        print(f"  {'':<76}  {'p50':>7}  {'p90':>7}  {'client':>7}  {'p50 less':>8}  ratio to Anvil's")
        print(f"  {'':<76}  {'':>7}  {'':>7}  {'CPU':>7}  {'client':>8}  p50 (less client)")
        for k, label in labels.items():
            p50, p90 = p50_p90(times[k])
            client = cpu_ms[k] / (len(times[k]) + 5 * turns)  # each turn's 5 warm-up calls ran too
            ratio = ""
            if k != "anvil":
                low, high = ratio_interval(rounds[k], rounds["anvil"])
                ratio = f"{p50 / a50:.2f}x [{low:.2f}-{high:.2f}] ({(p50 - client) / a_rest:.2f}x)"
            print(f"  {label:<76}  {p50:5.2f}ms  {p90:5.2f}ms  {client:5.2f}ms  {p50 - client:6.2f}ms  {ratio}")
        for k, base in (("dev", "floor"), ("dev_header", "floor"), ("dev_lean", "floor_lean")):
            low, high = ratio_interval(rounds[k], rounds[base])
            ratio = statistics.median(times[k]) / statistics.median(times[base])
            print(f"  {k} / {base}: {ratio:.2f}x [{low:.2f}-{high:.2f}]")
        print("one persistent worker each?")
        ok_a, why_a = one_process(infos["anvil"])
        ok_d, why_d = one_process(infos["dev"])
        print(f"  Anvil's:   {'yes' if ok_a else 'NO'} ({why_a})")
        print(
            f"             host log: {launched} persistent worker launched, {reused} calls routed to a cached one,"
            f" {single_use} single-use workers, for {calls_sent} calls sent; worker processes now {workers}"
        )
        print(f"  anvil-dev: {'yes' if ok_d else 'NO'} ({why_d})")
        print(f"downlink: host connected to {platform.path}, spec {platform.spec}")
        print(f"  messages besides responses: {dict(platform.seen)}")
        if not (ok_a and ok_d and launched == 1 and single_use == 0 and reused == calls_sent - 1):
            print("WARNING: the calls did not all go to one persistent worker; the figures above are not comparable")
    except Exception:
        log = tmp / "downlink-host.log"
        if log.exists():  # the host's own account of what went wrong is the useful part
            print("downlink host's log, last lines:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
        raise
    finally:
        if server is not None:
            server.stop()
        if floor is not None:
            floor.stop()
        if platform is not None:
            platform.close()
        if host is not None:
            left = stop_host(host)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"cleanup: processes left running {left or 'none'}, temp dir removed: {not tmp.exists()}")
    print(f"run took {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
