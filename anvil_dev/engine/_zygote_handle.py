"""The host's handle on a zygote process: start it, ask for children, learn how they exit."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from anvil_dev.config import Settings
from anvil_dev.engine._frames import Channel

log = logging.getLogger("anvil_dev")


class Child:
    """A forked process and the host's end of its socket."""

    def __init__(self, chan: Channel, mode: str, generation: int) -> None:
        self.chan = chan
        self.mode = mode
        self.generation = generation
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.spawned = threading.Event()
        self.exited = threading.Event()

    def kill(self) -> None:
        """SIGKILL the child and whatever it forked (each child leads a process group of its own)."""
        if self.spawned.wait(5) and self.pid and not self.exited.is_set():
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def wait_exit(self, timeout: float) -> int | None:
        self.exited.wait(timeout)
        return self.exit_code


class ZygoteHandle:
    """A process that forks children on request: the zygote itself, or a template forked from it.

    A template (`spawn_template`) has imported the app's modules before it forks, so its
    children start with the app imported; it lives for one generation of the code.
    """

    def __init__(self, settings: Settings, env: dict[str, str] | None = None,
                 attach: socket.socket | None = None) -> None:
        self.settings = settings
        if attach is not None:
            host_end, zygote_end = attach, None
        else:
            host_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._ctrl = host_end
        self._send_lock = threading.Lock()
        self._tokens = itertools.count()
        self._by_token: dict[int, Child] = {}
        self._by_pid: dict[int, Child] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.alive = True
        self.info: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        if zygote_end is not None:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "anvil_dev.engine.zygote", str(zygote_end.fileno()), settings.to_json()],
                pass_fds=(zygote_end.fileno(),), env=env, stdin=subprocess.DEVNULL,
            )
            zygote_end.close()
        self._reader = threading.Thread(target=self._read_loop, name="zygote-reader", daemon=True)
        self._reader.start()

    def wait_ready(self, timeout: float = 60) -> None:
        if not self.ready.wait(timeout):
            raise RuntimeError("the zygote process did not start (see the output above)")
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"the zygote process exited with code {self.proc.returncode}")
        if not self.info:
            raise RuntimeError("the zygote process ended before it was ready")

    def spawn_template(self, generation: int) -> ZygoteHandle:
        """Fork a template for this generation of the code; ready when its `info` says so."""
        host_end, template_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        token = next(self._tokens)
        with self._send_lock:
            socket.send_fds(self._ctrl, [json.dumps({"op": "spawn", "token": token, "mode": "template"}).encode()],
                            [template_end.fileno()])
        template_end.close()
        return ZygoteHandle(self.settings, attach=host_end)

    def spawn(self, mode: str, generation: int = 0) -> Child:
        """Ask for a child; returns at once: the socket works before the fork has happened."""
        host_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child = Child(Channel(host_sock), mode, generation)
        token = next(self._tokens)
        with self._lock:
            self._by_token[token] = child
        try:
            with self._send_lock:
                socket.send_fds(self._ctrl, [json.dumps({"op": "spawn", "token": token, "mode": mode}).encode()],
                                [child_sock.fileno()])
        except OSError as e:
            child.exit_code = -1
            child.spawned.set()
            child.exited.set()
            host_sock.close()
            log.error("could not reach the zygote: %s", e)
        finally:
            child_sock.close()
        return child

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._ctrl.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            msg = json.loads(data)
            op = msg.get("op")
            if op == "ready":
                self.info = msg
                self.ready.set()
            elif op == "spawned":
                with self._lock:
                    child = self._by_token.pop(msg["token"], None)
                    if child is not None:
                        child.pid = msg["pid"]
                        self._by_pid[msg["pid"]] = child
                if child is not None:
                    child.spawned.set()
            elif op == "exited":
                with self._lock:
                    child = self._by_pid.pop(msg["pid"], None)
                if child is not None:
                    child.exit_code = msg["code"]
                    child.exited.set()
        # The zygote is gone: nothing more will be reported; wake anyone waiting, and reap it.
        self.alive = False
        self.ready.set()
        if self.proc is not None:
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        with self._lock:
            waiting = list(self._by_token.values()) + list(self._by_pid.values())
            self._by_token.clear()
            self._by_pid.clear()
        for child in waiting:
            child.spawned.set()
            child.exited.set()

    def retire(self) -> None:
        """Stop after the children already forked have exited."""
        try:
            with self._send_lock:
                self._ctrl.send(json.dumps({"op": "exit"}).encode())
        except OSError:
            pass

    def stop(self) -> None:
        """Stop now, and every child with it (closing the control socket tells the zygote)."""
        try:
            self._ctrl.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._ctrl.close()
        if self.proc is None:
            return  # a template: its zygote reaps it
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
