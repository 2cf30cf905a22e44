"""Soak: a persistent server under mixed load for a while; host and worker resources must not grow.

Starts `anvil-dev serve --keep-server-running` on a temporary app and, for --seconds (default 600):
  - 4 HTTP callers loop over calls that add rows, search them, raise, print and return big values;
  - an anvil-uplink script calls the server and serves a function that HTTP callers call;
  - a background task is launched every 2 s; a server module is rewritten (a reload) every 5 s.
Every 10 s it samples the host's and each worker's RSS, open file descriptors and threads (from
/proc) and prints them; at the end, the first and last sample of each and whether any grew by more
than a margin in the second half of the run (a leak grows steadily; warm-up does not count).
Run with `python bench/bench_soak.py [--seconds 600]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, call, children, cmdline, make_app, memory_kb

SOAK_MODULE = textwrap.dedent("""
    import anvil.server
    from anvil.tables import app_tables

    @anvil.server.callable
    def note(i):
        app_tables.notes.add_row(n=i, text="x" * 200)
        return len(app_tables.notes.search(n=i))

    @anvil.server.callable
    def fail():
        raise ValueError("on purpose")

    @anvil.server.callable
    def chatter():
        print("line " * 20)
        print("x" * 5000, end="")
        return [list(range(50))] * 20

    @anvil.server.background_task
    def tick(i):
        anvil.server.task_state["i"] = i
        return i
    @anvil.server.callable
    def launch(i):
        return anvil.server.launch_background_task("tick", i).get_id()
""")

UPLINK_SCRIPT = textwrap.dedent("""
    import sys, time
    import anvil.server

    @anvil.server.callable
    def up_echo(x):
        return x

    anvil.server.connect(sys.argv[1], url=sys.argv[2], quiet=True)
    end = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < end:
        anvil.server.call("note", -1)
        time.sleep(0.2)
""")


def sample(host_pid: int) -> dict[str, dict[str, int]]:
    """RSS (KiB), open fds and threads of the host and of each worker process under it."""
    out: dict[str, dict[str, int]] = {}
    procs = [host_pid]
    i = 0
    while i < len(procs):
        procs += children(procs[i])
        i += 1
    for pid in procs:
        line = cmdline(pid)
        if pid != host_pid and "anvil_dev" not in line and "anvil-dev" not in line:
            continue
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            threads = len(os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue
        name = "host" if pid == host_pid else f"proc {pid}"
        out[name] = {"rss_kb": memory_kb(pid)["rss"], "fds": fds, "threads": threads}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600, help="how long to run (default 600)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        (app / "server_code" / "Soak.py").write_text(SOAK_MODULE)
        with open(app / "anvil.yaml", "a") as f:
            f.write(
                "db_schema:\n  notes:\n    title: notes\n    client: none\n    server: full\n"
                "    columns:\n    - {name: n, type: number}\n    - {name: text, type: string}\n"
            )
        srv = Server.anvil_dev(app, "--keep-server-running", "--workers", "2")
        stop = threading.Event()
        counts = {"calls": 0, "errors": 0, "reloads": 0, "tasks": 0}
        lock = threading.Lock()

        def caller(k: int) -> None:
            s = requests.Session()
            i = 0
            while not stop.is_set():
                i += 1
                for command, args in (
                    ("note", [k * 1_000_000 + i]),
                    ("chatter", []),
                    ("add", [i, k]),
                    ("up_echo", [i]),
                ):
                    try:
                        call(s, srv.url, command, *args)
                        with lock:
                            counts["calls"] += 1
                    except Exception:  # noqa: BLE001 - counted: a reload can fail a call in flight
                        with lock:
                            counts["errors"] += 1
                try:
                    call(s, srv.url, "fail")
                except RuntimeError:
                    pass

        def churn() -> None:
            s = requests.Session()
            n = 0
            while not stop.wait(1):
                n += 1
                if n % 2 == 0:
                    try:
                        call(s, srv.url, "launch", n)
                        counts["tasks"] += 1
                    except Exception:  # noqa: BLE001
                        counts["errors"] += 1
                if n % 5 == 0:
                    (app / "server_code" / "Soak.py").write_text(SOAK_MODULE + f"\nVERSION = {n}\n")
                    counts["reloads"] += 1

        key = (app / ".anvil-dev" / "uplink.key").read_text().strip()
        uplink = subprocess.Popen(
            [sys.executable, "-c", UPLINK_SCRIPT, key, f"ws://127.0.0.1:{srv.port}/_/uplink", str(opts.seconds)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        threads = [threading.Thread(target=caller, args=(k,), daemon=True) for k in range(4)]
        threads.append(threading.Thread(target=churn, daemon=True))
        for t in threads:
            t.start()
        samples: list[tuple[float, dict[str, dict[str, int]]]] = []
        start = time.monotonic()
        try:
            while (elapsed := time.monotonic() - start) < opts.seconds:
                samples.append((elapsed, sample(srv.proc.pid)))
                host = samples[-1][1].get("host", {})
                workers = sum(1 for k in samples[-1][1] if k != "host")
                print(
                    f"{elapsed:6.0f} s  host rss {host.get('rss_kb', 0) / 1024:6.1f} MiB  fds {host.get('fds')}"
                    f"  threads {host.get('threads')}  processes under it {workers}  {counts}",
                    flush=True,
                )
                time.sleep(10)
            samples.append((time.monotonic() - start, sample(srv.proc.pid)))
        finally:
            stop.set()
            for t in threads:
                t.join(30)
            uplink.kill()
            uplink.wait()
            srv.stop()
        report(samples, counts)


def report(samples: list[tuple[float, dict[str, dict[str, int]]]], counts: dict[str, int]) -> None:
    """First and last figures of the host and of the workers (summed), and growth in the second half."""

    def totals(s: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        workers = [v for k, v in s.items() if k != "host"]
        return {
            "host": s.get("host", {}),
            "workers": {m: sum(w[m] for w in workers) for m in ("rss_kb", "fds", "threads")} | {"n": len(workers)},
        }

    first, mid, last = totals(samples[0][1]), totals(samples[len(samples) // 2][1]), totals(samples[-1][1])
    print(f"\nsoak: {samples[-1][0]:.0f} s, {counts}")
    grew = []
    for who in ("host", "workers"):
        for metric in ("rss_kb", "fds", "threads"):
            a, m, b = first[who].get(metric, 0), mid[who].get(metric, 0), last[who].get(metric, 0)
            print(f"  {who:8} {metric:8} start {a:8}  middle {m:8}  end {b:8}")
            margin = max(m * 0.25, 16 if metric != "rss_kb" else 20_000)
            if b - m > margin:
                grew.append(f"{who} {metric} {m} -> {b}")
    print("  grew in the second half: " + (", ".join(grew) if grew else "nothing beyond the margin"))


if __name__ == "__main__":
    main()
