"""What a worker's call costs after its CPU has waited on the other: `python bench/idle_cpu.py`.

Runs a persistent worker's call (`ChildServer._run_call` of the bench app's `add`: its response
written to one socket pair, its REPLY sent on another, read back untimed) in this process, pinned
to one CPU, and times only the call, in five arrangements taken in turns:

- alone: calls back to back;
- partner, same CPU: before each call another process on this CPU does `--work-us` of Python
  (JSON) and hands back, as the host's request thread does before the worker's turn;
- partner, other CPU: the partner works on the other CPU, so this CPU idles meanwhile, as serve's
  CPU does while a client reads a response and sends its next request;
- partner, other CPU, this one kept busy: the same, with a spinner at idle priority on this CPU,
  which any woken task preempts, so the CPU never idles;
- other CPU, then same: the partner on the other CPU, then the one on this CPU, as in serve back
  to back: this CPU idles while the client works, then the host's request thread runs on it, and
  then the worker.

The figures in docs/architecture.md ("Where a call's time goes") came from it. Linux only, and it
needs two CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, make_app

sys.path.insert(0, str(ROOT))
from anvil_dev._platform import die_with_parent


def _fork(body: Callable[[], object]) -> int:
    """A child running `body`, killed when this process ends however it ends; it never returns
    into our code."""
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            if die_with_parent(signal.SIGKILL, parent):
                body()
        finally:
            os._exit(0)
    return pid


def partner(cpu: int, work_us: float) -> tuple[int, int, int]:
    """A process on `cpu` that, for each byte it reads, does `work_us` of JSON work and writes one
    back: (pid, the end to write to it, the end to read it from)."""
    partner_reads, we_write = os.pipe()
    we_read, partner_writes = os.pipe()

    def work() -> None:
        os.sched_setaffinity(0, {cpu})
        data = [{f"k{i}": list(range(20)) for i in range(50)} for _ in range(64)]
        turn = 0
        while os.read(partner_reads, 1):
            start = time.perf_counter()
            while (time.perf_counter() - start) * 1e6 < work_us:
                json.loads(json.dumps(data[turn % 64]))
                turn += 1
            os.write(partner_writes, b"x")

    pid = _fork(work)
    os.close(partner_reads)
    os.close(partner_writes)
    return pid, we_write, we_read


def spinner(cpu: int) -> int:
    """A process spinning on `cpu` at SCHED_IDLE, stopped (SIGCONT runs it)."""

    def spin() -> None:
        os.sched_setaffinity(0, {cpu})
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        os.kill(os.getpid(), signal.SIGSTOP)
        while True:
            pass

    pid = _fork(spin)
    _, status = os.waitpid(pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        raise SystemExit("the spinner ended before it could be used")
    return pid


def worker_call(app_path: Path) -> Callable[[], float]:
    """A call of the bench app's `add(1, 2)` as a persistent worker runs it, returning its seconds."""
    from anvil_dev import services
    from anvil_dev.config import Settings
    from anvil_dev.engine import child
    from anvil_dev.engine.frames import Channel, Frame
    from anvil_dev.engine.zygote import RUNTIME_DIR

    sys.path.insert(0, RUNTIME_DIR)
    settings = Settings.from_json(json.dumps({"app_path": str(app_path), "persistent": True}))
    app = services.open(str(app_path), settings).app_dir
    load_error = child.import_app(app)
    if load_error is not None:
        raise SystemExit(f"the bench app did not import: {load_error}")
    worker_end, host_end = socket.socketpair()
    host_end.settimeout(10.0)
    server = child.ChildServer(Channel(worker_end), app, child.ChildMode.PERSISTENT)
    server.adopt(None)
    head = child.browser_call_head("add", "c")
    body = json.dumps({"command": "add", "args": [1, 2], "kwargs": {}, "objects": []}).encode()
    client, ours = socket.socketpair()
    client.settimeout(10.0)

    def one() -> float:
        head["direct_at"] = int(time.time())
        frame = Frame(head, body, (os.dup(ours.fileno()), os.eventfd(1, os.EFD_CLOEXEC)))
        start = time.perf_counter()
        server._run_call(frame)
        took = time.perf_counter() - start
        try:
            written = client.recv(65536)
            replied = host_end.recv(65536)
        except TimeoutError:
            written = replied = b""
        if b"Content-Length" not in written or not replied:
            raise SystemExit("the worker's call wrote no response, or sent no REPLY")
        return took

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-us", type=float, default=300.0, help="the partner's work before each call")
    parser.add_argument("--calls", type=int, default=500, help="calls per arrangement per round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("idle_cpu.py needs Linux and two CPUs")
    cpus = sorted(os.sched_getaffinity(0))
    ours, other = cpus[0], cpus[1]
    same = partner(ours, args.work_us)
    away = partner(other, args.work_us)
    spin = spinner(ours)
    os.sched_setaffinity(0, {ours})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            one = worker_call(make_app(Path(tmp) / "app"))
            for _ in range(200):
                one()

            def after(*partners: tuple[int, int, int]) -> Callable[[], float]:
                def turn() -> float:
                    for _, write_end, read_end in partners:
                        os.write(write_end, b"x")
                        if not os.read(read_end, 1):
                            raise SystemExit("a partner process ended")
                    return one()

                return turn

            # name: (one turn, whether the spinner keeps this CPU busy meanwhile)
            arrangements: dict[str, tuple[Callable[[], float], bool]] = {
                "alone, back to back": (one, False),
                "partner, same CPU": (after(same), False),
                "partner, other CPU (this one idles)": (after(away), False),
                "partner, other CPU, this one kept busy": (after(away), True),
                "other CPU, then same": (after(away, same), False),
            }
            times: dict[str, list[float]] = {name: [] for name in arrangements}
            for _ in range(args.rounds):
                for name, (turn, keep_busy) in arrangements.items():
                    if keep_busy:
                        os.kill(spin, signal.SIGCONT)
                    times[name] += [turn() for _ in range(args.calls)]
                    if keep_busy:
                        os.kill(spin, signal.SIGSTOP)
    finally:
        for pid in (same[0], away[0], spin):
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
    alone = statistics.median(times["alone, back to back"])
    print(f"the worker's call, partner's work {args.work_us:.0f} us ({args.rounds} rounds of {args.calls}):")
    for name, spans in times.items():
        p50 = statistics.median(spans)
        print(f"  {name:40s} p50 {p50 * 1e6:6.1f} us  {p50 / alone:.2f}x")


if __name__ == "__main__":
    main()
