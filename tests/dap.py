"""A minimal Debug Adapter Protocol client, as an editor speaks it to debugpy: over a socket, with a
child session for each subprocess debugpy reports (`debugpyAttach`), as VS Code opens them."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from typing import Any


class DapSession:
    """One DAP connection: requests with their responses, events kept in order."""

    def __init__(self, host: str, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection((host, port), timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(None)
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._responses: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.closed = False
        self._send_lock = threading.Lock()
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        with self._send_lock:
            self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def request(self, command: str, arguments: dict[str, Any] | None = None, wait: bool = True) -> dict[str, Any]:
        """Send a request; with `wait`, its response (AssertionError if it failed)."""
        seq = next(self._seq)
        self._send({"seq": seq, "type": "request", "command": command, "arguments": arguments or {}})
        if not wait:
            return {"request_seq": seq}
        return self.response(seq)

    def response(self, seq: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while seq not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no response to request {seq}; events: {self.events}")
                self._cond.wait(min(left, 0.2))
            resp = self._responses.pop(seq)
        assert resp.get("success"), resp
        return resp

    def wait_event(self, name: str, timeout: float = 60, where: Any = None) -> dict[str, Any]:
        """The first event called `name` (and matching `where(event)`), kept or still to come."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("event") == name and (where is None or where(event)):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise AssertionError(f"no {name!r} event; events: {[e.get('event') for e in self.events]}")
                self._cond.wait(min(left, 0.2))

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(dict(line.split(b": ", 1) for line in head.split(b"\r\n"))[b"Content-Length"])
                while len(buf) < length:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                message, buf = json.loads(buf[:length]), buf[length:]
                self._handle(message)
        except OSError:
            return
        finally:
            with self._cond:
                self.closed = True
                self._cond.notify_all()

    def _handle(self, message: dict[str, Any]) -> None:
        with self._cond:
            if message.get("type") == "response":
                self._responses[message["request_seq"]] = message
            elif message.get("type") == "event":
                self.events.append(message)
            self._cond.notify_all()

    def gone(self) -> bool:
        """The debugged process has exited (debugpy said so) or its session is over."""
        return self.closed or any(e.get("event") in ("exited", "terminated") for e in self.events)

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class DapClient:
    """An editor attached to `serve --debug`: the root session, and a child session for each process
    debugpy reports, each given the same breakpoints before it runs on."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.breakpoints: dict[str, list[int]] = {}
        self.sessions: list[DapSession] = []
        self._lock = threading.Condition()
        self.root = self._open(port, {"connect": {"host": host, "port": port}, "justMyCode": False})

    def _open(self, port: int, attach: dict[str, Any]) -> DapSession:
        s = DapSession(self.host, port)
        s.request(
            "initialize",
            {
                "adapterID": "debugpy",
                "clientID": "anvil-dev-tests",
                "pathFormat": "path",
                "linesStartAt1": True,
                "columnsStartAt1": True,
            },
        )
        attached = s.request("attach", {"request": "attach", **attach}, wait=False)
        s.wait_event("initialized")
        self._configure(s)
        s.request("configurationDone")
        s.response(attached["request_seq"])
        with self._lock:
            self.sessions.append(s)
            self._lock.notify_all()
        threading.Thread(target=self._follow, args=(s,), daemon=True).start()
        return s

    def _open_quietly(self, port: int, attach: dict[str, Any]) -> None:
        """A child session; one for a process that ends as it is opened (a call that finished) just fails."""
        try:
            self._open(port, attach)
        except (AssertionError, OSError):
            pass

    def _configure(self, s: DapSession) -> None:
        for path, lines in self.breakpoints.items():
            s.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]})

    def _follow(self, s: DapSession) -> None:
        """Open a child session for each subprocess this session reports (as VS Code does)."""
        seen = 0
        while not s.closed:
            with s._cond:
                s._cond.wait(0.2)
                new = [e for e in s.events if e.get("event") == "debugpyAttach"][seen:]
            for event in new:
                seen += 1
                body = event["body"]
                threading.Thread(target=self._open_quietly, args=(body["connect"]["port"], body), daemon=True).start()

    def set_breakpoints(self, path: str, lines: list[int]) -> list[dict[str, Any]]:
        self.breakpoints[path] = lines
        answers = []
        for s in list(self.sessions):
            if s.closed:
                continue
            try:
                answers.append(
                    s.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]})
                )
            except AssertionError:
                if not s.closed and not s.gone():
                    raise  # a process that is still there refused them
        return answers

    def wait_stopped(self, timeout: float = 60) -> tuple[DapSession, dict[str, Any]]:
        """The session (process) that stopped, and its `stopped` event."""
        deadline = time.monotonic() + timeout
        while True:
            for s in list(self.sessions):
                for event in s.events:
                    if event.get("event") == "stopped":
                        return s, event
            if time.monotonic() > deadline:
                raise AssertionError("no process stopped")
            time.sleep(0.05)

    def close(self) -> None:
        for s in self.sessions:
            try:
                s.request("disconnect", {"terminateDebuggee": False}, wait=False)
            except OSError:
                pass
            s.close()
