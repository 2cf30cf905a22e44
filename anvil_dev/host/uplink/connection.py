"""One anvil-uplink websocket connection: handshake, REGISTER, calls both ways, media frames.

The receiving thread (the websocket's request thread) never blocks on server code: calls from
the uplink run in threads of their own, and replies to calls we made are handed to the thread
that waits for them. What each frame means is decided in `frames.py`; this module holds the
state and the threads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import secrets
import socket
import threading
from typing import Any, Protocol

import click

from anvil_dev.host.uplink import frames
from anvil_dev.host.uplink.frames import MAX_PATTERNS, ProtocolError
from anvil_dev.host.uplink.media import MediaInbox, prepare_outgoing, send_media
from anvil_dev.host.uplink.rows import live_objects_to_rows, rows_to_live_objects
from anvil_dev.host.uplink.tables import UplinkTables, table_live_objects
from anvil_dev.protocol import Caller, Message, Reply, error
from anvil_dev.services.mediastore import MediaStore

log = logging.getLogger("anvil_dev.uplink")

HANDSHAKE_TIMEOUT_S = 30
# anvil-uplink sends a heartbeat every 10 s; an uplink silent this long has vanished (machine
# asleep, network gone) without closing its socket. (Websocket pings would find it sooner, but
# simple-websocket sends them from its own thread, unsynchronised with our frames.)
IDLE_TIMEOUT_S = 120
MAX_CALLS_IN_FLIGHT = 200

DISCONNECTED = "Uplink disconnected"


class WebSocket(Protocol):
    """The server side of a websocket, as flask-sock hands it over (simple_websocket.Server)."""

    sock: socket.socket

    def send(self, data: str | bytes) -> None: ...

    def receive(self, timeout: float | None = None) -> str | bytes | None: ...

    def close(self, reason: int | None = None, message: str | None = None) -> None: ...


class Dispatcher(Protocol):
    """Where calls from uplink code go (the host's `Dispatcher`)."""

    def call(self, msg: Message, caller: Caller) -> Reply: ...


class Hub(Protocol):
    """What a connection needs from the hub that keeps it (`UplinkHub`)."""

    key: str
    dispatcher: Dispatcher
    media_store: MediaStore

    def attach(self, conn: UplinkConnection) -> None: ...

    def detach(self, conn: UplinkConnection) -> None: ...


def say(text: str, color: str | None = None) -> None:
    """A line for the serve terminal: uplinks coming and going are worth seeing there."""
    click.secho(text, fg=color, err=True)


class UplinkGone(Exception):
    """The websocket is closed; nothing more can be sent on it."""


class _Close(Exception):
    """End this connection after a fatal error message has been sent."""


class _Pending:
    """A call we sent to the uplink, waiting for its reply (no timeout, as on Anvil)."""

    def __init__(self, caller: Caller | None) -> None:
        self.caller = caller
        self._event = threading.Event()
        self._result: Message = {}

    def resolve(self, result: Message) -> None:
        if not self._event.is_set():
            self._result = result
            self._event.set()

    def wait(self) -> Message:
        self._event.wait()
        return self._result


class UplinkConnection:
    def __init__(self, hub: Hub, ws: WebSocket, remote_addr: str | None) -> None:
        self.hub = hub
        self.ws = ws
        self.remote_addr = remote_addr or "?"
        # One server-side session per connection, as on Anvil: anvil.server.session and a login
        # made from uplink code last until the uplink disconnects.
        self.session_id = secrets.token_urlsafe(24)
        self.patterns: dict[str, re.Pattern[str]] = {}
        self.closed = False
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._media = MediaInbox(hub.media_store)
        self._tables = UplinkTables()
        self.is_client = False  # connected with the client uplink key: client permissions only
        self._in_flight = 0

    # ---- sending -------------------------------------------------------------------------

    def send_text(self, data: dict[str, Any]) -> None:
        """Send one JSON frame (from any thread)."""
        text = json.dumps(data, separators=(",", ":"))
        with self._send_lock:
            self._raw_send(text)

    def _send_pair(self, header: dict[str, Any], data: bytes) -> None:
        text = json.dumps(header, separators=(",", ":"))
        # The client keeps a single "next header" slot: nothing may come between the two frames.
        with self._send_lock:
            self._raw_send(text)
            self._raw_send(data)

    def _raw_send(self, data: str | bytes) -> None:
        try:
            self.ws.send(data)
        except Exception as e:  # noqa: BLE001 - ConnectionClosed, BrokenPipeError, ...
            raise UplinkGone(str(e)) from None

    def send_message(self, msg: dict[str, Any]) -> None:
        """Send a message with an id, then the bytes of any DataMedia it refers to."""
        out, media = prepare_outgoing(rows_to_live_objects(table_live_objects(msg)), self.hub.media_store)
        self.send_text(out)
        if media:
            send_media(out["id"], media, self._send_pair, self.send_text)

    # ---- the receiving loop -------------------------------------------------------------

    def serve(self) -> None:
        """Run the connection until it closes; called in the websocket's request thread."""
        try:
            if not self._handshake():
                return
            self.hub.attach(self)
            while True:
                frame = self.ws.receive(timeout=IDLE_TIMEOUT_S)
                if frame is None:
                    say(
                        f"uplink from {self.remote_addr} sent nothing for {IDLE_TIMEOUT_S} s "
                        "(its heartbeat comes every 10 s); disconnected it",
                        "yellow",
                    )
                    self.close()
                    return
                if isinstance(frame, (bytes, bytearray)):
                    self._on_binary(bytes(frame))
                else:
                    self._on_text(frame)
        except ProtocolError as e:
            say(f"uplink from {self.remote_addr} broke the protocol ({e}); disconnected it", "yellow")
            self.close(1002, "Protocol error")
        except (_Close, UplinkGone):
            self.close()
        finally:
            self._shutdown()

    def _handshake(self) -> bool:
        frame = self.ws.receive(timeout=HANDSHAKE_TIMEOUT_S)
        if frame is None:
            say(f"uplink from {self.remote_addr} sent no key within {HANDSHAKE_TIMEOUT_S} s; disconnected it", "yellow")
            self.close()
            return False
        try:
            answer = frames.hello(frame, self.hub.key, getattr(self.hub, "client_key", None))
        except frames.Refused as e:
            if isinstance(e, frames.WrongKey):
                say(
                    f"uplink from {self.remote_addr} refused: incorrect uplink key "
                    "(`anvil-dev uplink-key` prints the right one)",
                    "yellow",
                )
            self._fatal(str(e))
            return False
        self.is_client = answer[-1].get("priv") == "client"
        for data in answer:
            self.send_text(data)
        say(f"{'client ' if self.is_client else ''}uplink connected from {self.remote_addr}")
        return True

    def _fatal(self, message: str) -> None:
        """Send Anvil's fatal `{"error": ...}` frame and close."""
        try:
            self.send_text({"error": message})
        except UplinkGone:
            pass
        self.close()

    def _on_text(self, frame: str) -> None:
        if self._media.expects_binary():
            raise ProtocolError("a text frame came where the binary frame after CHUNK_HEADER was due")
        data = frames.parse_text(frame)
        kind = data.get("type")
        if kind == "REGISTER":
            self._register(data.get("name"))
        elif kind == "CALL" or frames.is_reply(data):
            self._on_message(data)
        elif kind == "CHUNK_HEADER":
            self._media.header(data)
        elif kind == "MEDIA_ERROR":
            self._on_media_error(data)
        elif kind == "REGISTER_LIVE_OBJECT_BACKEND":
            self._fatal("Cannot register live-object backends the uplink.")
            raise _Close()
        elif kind is None and "output" in data:
            log.info("Uplink %s: %s", self.remote_addr, str(data["output"]).rstrip("\n"))
        else:
            log.debug("Uplink from %s sent an unknown message type %r; ignored", self.remote_addr, kind)

    def _register(self, name: Any) -> None:
        if self.is_client:  # as Anvil refuses it (reference/anvil-runtime.md section 3)
            self._fatal("Cannot register @anvil.server.callable functions from an unprivileged (client) uplink.")
            raise _Close()
        pattern = frames.compile_pattern(name)
        if pattern is None:
            self._fatal("Invalid function name specification")
            raise _Close()
        with self._lock:
            if name not in self.patterns and len(self.patterns) >= MAX_PATTERNS:
                raise ProtocolError(f"more than {MAX_PATTERNS} registrations")
            self.patterns[name] = pattern
        log.debug("Uplink %s registered %r", self.remote_addr, name)

    def _on_message(self, data: dict[str, Any]) -> None:
        msg_id = frames.check_id(data.get("id"), "a message")
        if frames.is_heartbeat(data):
            self.send_text(frames.heartbeat_reply(msg_id, data))
            return
        complete = self._media.receive(msg_id, data)
        if complete is not None:
            self._deliver(complete)

    def _on_binary(self, data: bytes) -> None:
        complete = self._media.chunk(data)
        if complete is not None:
            self._deliver(complete)

    def _on_media_error(self, data: dict[str, Any]) -> None:
        incoming = self._media.failed(data.get("requestId"))
        if incoming is None:
            return
        err = frames.media_error(data)
        if incoming.msg.get("type") == "CALL":
            self._reply(incoming.id, err)
        else:
            self._resolve(incoming.id, err)

    def _deliver(self, data: dict[str, Any]) -> None:
        live_objects_to_rows(data)
        if data.get("type") == "CALL":
            self._start_call(data)
        else:
            self._resolve(data["id"], frames.reply_result(data))

    def _resolve(self, msg_id: str, result: Message) -> None:
        with self._lock:
            pending = self._pending.pop(msg_id, None)
        if pending is None:
            log.debug("Uplink %s answered unknown call %r", self.remote_addr, msg_id)
        else:
            pending.resolve(result)

    # ---- calls from the uplink ------------------------------------------------------------

    def _caller_for(self, stack_id: Any) -> Caller:
        """The pending call's caller when this call is nested inside it, else a plain uplink one."""
        with self._lock:
            pending = self._pending.get(stack_id) if isinstance(stack_id, str) else None
        if pending is not None and pending.caller is not None:
            outer = pending.caller
            return dataclasses.replace(outer, trusted=True, call_stack=[*outer.call_stack, {"type": "uplink"}])
        if self.is_client:  # a client uplink calls as client code does: untrusted
            return Caller(
                client_type="client_uplink",
                ip=self.remote_addr,
                session_id=self.session_id,
                trusted=False,
                call_stack=[{"type": "client_uplink"}],
            )
        return Caller(
            client_type="uplink",
            ip=self.remote_addr,
            session_id=self.session_id,
            trusted=True,
            call_stack=[{"type": "uplink"}],
        )

    def _start_call(self, data: dict[str, Any]) -> None:
        with self._lock:
            if self._in_flight >= MAX_CALLS_IN_FLIGHT:
                raise ProtocolError(f"more than {MAX_CALLS_IN_FLIGHT} calls in flight")
            self._in_flight += 1
        caller = self._caller_for(data.get("call-stack-id"))
        threading.Thread(
            target=self._run_call, args=(data, caller), daemon=True, name=f"uplink-call-{data['id']}"
        ).start()

    def _run_call(self, data: dict[str, Any], caller: Caller) -> None:
        command = data.get("command")
        try:
            result: Message | None
            translated = self._tables.translate(data)
            if isinstance(translated, tuple):  # a LiveObject call on app_tables: runs in our tables
                msg, post = translated
                result = post(self.hub.dispatcher.call(msg, caller).message())
            elif translated is not None:
                result = translated
            else:
                result = frames.local_answer(data)
            if result is None:
                result = self.hub.dispatcher.call(frames.call_message(data), caller).message()
        except Exception as e:
            log.exception("Uplink call %r failed inside anvil-dev", command)
            result = error("anvil.server.InternalError", f"anvil-dev failed to run {command!r}: {e}")
        finally:
            with self._lock:
                self._in_flight -= 1
        self._reply(data["id"], result)

    def _reply(self, msg_id: str, result: Message) -> None:
        try:
            if result.get("output"):
                self.send_text({"output": result["output"]})
            if "error" in result:
                self.send_text({"id": msg_id, "error": result["error"], "objects": []})
            else:
                reply = {"id": msg_id, "response": result.get("response"), "objects": result.get("objects") or []}
                if result.get("cacheUpdates"):  # LiveObject item caches the uplink must refresh
                    reply["cacheUpdates"] = result["cacheUpdates"]
                self.send_message(reply)
        except UplinkGone:
            log.debug("Uplink %s went away before the reply to %s", self.remote_addr, msg_id)

    # ---- calls to the uplink ---------------------------------------------------------------

    def request(self, msg: dict[str, Any], caller: Caller | None, msg_id: str | None = None) -> Message:
        """Send a message that expects a reply by id, and wait for the reply.

        `msg` is sent as given plus "id" (a new one unless `msg_id` is given). On disconnect the
        reply is `anvil.server.UplinkDisconnectedError` "Uplink disconnected", as on Anvil.
        """
        msg_id = msg_id or "server-" + secrets.token_urlsafe(12)
        pending = _Pending(caller)
        with self._lock:
            if self.closed:
                return error("anvil.server.UplinkDisconnectedError", DISCONNECTED)
            self._pending[msg_id] = pending
        try:
            self.send_message({**msg, "id": msg_id})
        except UplinkGone:
            self._resolve(msg_id, error("anvil.server.UplinkDisconnectedError", DISCONNECTED))
        except Exception as e:  # noqa: BLE001 - whatever stops the send, the caller gets an answer
            self._resolve(msg_id, error("anvil.server.InternalError", f"Cannot send the call to the uplink: {e}"))
        return pending.wait()

    def call(self, kind: str, msg: Message, caller: Caller, msg_id: str | None = None) -> Message:
        """Run a CALL (or LAUNCH_BACKGROUND) of a function this uplink registered; blocks until the reply."""
        msg_id = msg_id or "server-" + secrets.token_urlsafe(12)
        return self.request(frames.call_frame(kind, msg, caller, msg_id), caller, msg_id)

    def matches(self, command: str) -> bool:
        with self._lock:
            patterns = list(self.patterns.values())
        return any(p.fullmatch(command) for p in patterns)

    # ---- closing ---------------------------------------------------------------------------

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """Close the websocket (from any thread); the receiving loop then ends."""
        # Not in the middle of another thread's frame, unless that thread is stuck sending.
        locked = self._send_lock.acquire(timeout=2)
        try:
            self.ws.close(code, reason)
        except Exception:  # noqa: BLE001 - closing a websocket that is already broken
            pass
        finally:
            if locked:
                self._send_lock.release()
        # Wake a receive() that is waiting for a peer that may never answer the close.
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001 - the socket may be gone already
            pass

    def _shutdown(self) -> None:
        """After the loop ends: fail pending calls, drop half-received media, forget patterns."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            pending, self._pending = self._pending, {}
        for p in pending.values():
            p.resolve(error("anvil.server.UplinkDisconnectedError", DISCONNECTED))
        self._media.discard_all()
        self.hub.detach(self)
