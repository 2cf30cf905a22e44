"""The `/_/uplink` websocket: the real anvil-uplink client connects, registers and calls.

`UplinkHub` keeps the connected uplinks and what each registered (names are regular
expressions that must match a whole command, as on Anvil). The dispatcher asks `match()` where a
command goes and `call()` to run it on an uplink; calls from an uplink go to the dispatcher.
The protocol is the one anvil-uplink 0.7.0 speaks (reference/anvil-runtime.md section 3).
"""

from __future__ import annotations

import random
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from flask import Flask, request

from anvil_dev.host.uplink.connection import Dispatcher, UplinkConnection, WebSocket, say
from anvil_dev.protocol import Caller, Message, error, no_such_function
from anvil_dev.services.mediastore import MediaStore

PATH = "/_/uplink"
# Anvil's own cap on one websocket frame; media travel in 64 KiB chunks, so only JSON gets near it.
MAX_FRAME_BYTES = 16 * 1024 * 1024
_MAX_STALE = 10000


class _TakeView:
    """Stands in for a blueprint: keeps the view flask-sock's `route` registers on it."""

    def __init__(self, views: list[Callable[[], Any]]) -> None:
        self.views = views

    def route(self, path: str, **options: Any) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        def take(view: Callable[[], Any]) -> Callable[[], Any]:
            self.views.append(view)
            return view

        return take


class UplinkHub:
    """The connected uplinks, their registrations, and calls to and from them."""

    def __init__(
        self, dispatcher: Dispatcher, key: str, media_store: MediaStore, client_key: str | None = None
    ) -> None:
        self.dispatcher = dispatcher
        self.key = key
        self.client_key = client_key
        self.media_store = media_store
        self._lock = threading.Lock()
        self._conns: list[UplinkConnection] = []
        # Patterns of uplinks that disconnected: calls to them get UplinkDisconnectedError
        # rather than "no such function" (most recent last, bounded).
        self._stale: OrderedDict[str, re.Pattern[str]] = OrderedDict()
        self._tasks: dict[str, tuple[UplinkConnection, str]] = {}
        self._closed = False

    def init_app(self, flask_app: Flask) -> None:
        """Register the `/_/uplink` websocket route on the host's Flask app.

        flask-sock is imported when the first uplink connects: with simple_websocket, wsproto and
        asyncio under it, its import was ~30 ms of every `serve`'s start, most of which never see an uplink.
        """
        opts = flask_app.config.setdefault("SOCK_SERVER_OPTIONS", {})
        opts.setdefault("max_message_size", MAX_FRAME_BYTES)
        opts.setdefault("receive_bytes", 65536)
        views: list[Callable[[], Any]] = []
        lock = threading.Lock()

        def uplink_route() -> Any:
            with lock:
                if not views:
                    from flask_sock import Sock

                    # Given a blueprint, flask-sock's `route` hands it the view it made: that is taken here.
                    Sock().route(PATH, bp=_TakeView(views))(self._serve)
            return views[0]()

        flask_app.add_url_rule(PATH, endpoint="anvil_dev_uplink", view_func=uplink_route, websocket=True)

    def _serve(self, ws: WebSocket) -> None:
        if self._closed:
            return
        UplinkConnection(self, ws, request.remote_addr).serve()

    # ---- the registry -----------------------------------------------------------------

    def attach(self, conn: UplinkConnection) -> None:
        """Add a connection that has shaken hands (its registrations follow)."""
        with self._lock:
            self._conns.append(conn)
        if self._closed:
            conn.close()

    def detach(self, conn: UplinkConnection) -> None:
        """Forget a connection that has closed; its names stay known as stale."""
        with self._lock:
            if conn not in self._conns:
                return
            self._conns.remove(conn)
            for name, pattern in conn.patterns.items():
                self._stale.pop(name, None)
                self._stale[name] = pattern
            while len(self._stale) > _MAX_STALE:
                self._stale.popitem(last=False)
            for task_id in [t for t, (c, _) in self._tasks.items() if c is conn]:
                del self._tasks[task_id]
        say(f"uplink from {conn.remote_addr} disconnected")

    def _live(self, command: str) -> list[UplinkConnection]:
        with self._lock:
            conns = list(self._conns)
        return [c for c in conns if c.matches(command)]

    def _is_stale(self, command: str) -> bool:
        with self._lock:
            patterns = list(self._stale.values())
        return any(p.fullmatch(command) for p in patterns)

    def match(self, command: str) -> str | None:
        """ "live" if a connected uplink registered a matching name, "stale" if only a gone one did."""
        if self._live(command):
            return "live"
        if self._is_stale(command):
            return "stale"
        return None

    def _pick(self, command: str) -> UplinkConnection | None:
        """A random live uplink for `command`, as Anvil picks one."""
        live = self._live(command)
        return random.choice(live) if live else None

    def _unavailable(self, command: str) -> Message:
        """The error for a call no live uplink can take."""
        if self._is_stale(command):
            return error(
                "anvil.server.UplinkDisconnectedError", f'The uplink server for "{command}" has been disconnected'
            )
        return no_such_function(command)

    # ---- calls to uplinks -------------------------------------------------------------

    def call(self, msg: Message, caller: Caller) -> Message:
        """Run `msg` (wire format) on an uplink that registered its command; blocks until the reply.

        No timeout, as on Anvil. Returns `{"response", "objects", "output"}` or `{"error": ...}`.
        """
        command = str(msg.get("command"))
        conn = self._pick(command)
        if conn is None:
            return self._unavailable(command)
        return conn.call("CALL", msg, caller)

    def launch_background(self, task_id: str, msg: Message, caller: Caller) -> Message:
        """Run background task `msg["command"]` ("task:<name>") on an uplink; blocks until it ends.

        The hook for the tasks service: call it in the task's own thread. The result is that of
        `call()` plus "taskState" (the task's final `anvil.server.task_state`, plain JSON whose
        objects, if any, have paths under "taskState"). While it runs, `get_task_state(task_id)`
        asks the uplink for the live state.
        """
        command = str(msg.get("command"))
        conn = self._pick(command)
        if conn is None:
            return self._unavailable(command)
        launch_id = "bg-" + secrets.token_urlsafe(12)
        with self._lock:
            self._tasks[task_id] = (conn, launch_id)
        try:
            return conn.call("LAUNCH_BACKGROUND", msg, caller, msg_id=launch_id)
        finally:
            with self._lock:
                self._tasks.pop(task_id, None)

    def get_task_state(self, task_id: str) -> Message:
        """`{"response": state, "objects": [...]}` of a running uplink task, or NotRunningTask."""
        with self._lock:
            found = self._tasks.get(task_id)
        if found is None:
            return error("anvil.server.NotRunningTask", "No such task running")
        conn, launch_id = found
        return conn.request({"type": "GET_TASK_STATE", "task": launch_id}, None, "bgquery-" + secrets.token_urlsafe(12))

    def kill_task(self, task_id: str) -> bool:
        """Tell the uplink to kill a task; the client only logs it (uplink tasks cannot be killed)."""
        with self._lock:
            found = self._tasks.get(task_id)
        if found is None:
            return False
        conn, launch_id = found
        try:
            conn.send_text({"type": "KILL_TASK", "task": launch_id})
        except Exception:  # noqa: BLE001 - an uplink that cannot be told has gone
            return False
        return True

    def close(self) -> None:
        """Disconnect every uplink (on shutdown); their pending calls get UplinkDisconnectedError."""
        self._closed = True
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()
