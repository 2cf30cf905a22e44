"""One anvil-uplink websocket connection: handshake, REGISTER, calls both ways, media frames.

The receiving thread (the websocket's request thread) never blocks on server code: calls from
the uplink run in threads of their own, and replies to calls we made are handed to the thread
that waits for them.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import secrets
import socket
import threading
from typing import TYPE_CHECKING, Any

import click

from anvil_dev.host._uplink_media import IncomingMessage, ProtocolError, prepare_outgoing, send_media
from anvil_dev.host._uplink_rows import ROW_TYPE, live_objects_to_rows, rows_to_live_objects
from anvil_dev.protocol import Caller, Message, error

if TYPE_CHECKING:
    from anvil_dev.host.uplink import UplinkHub

log = logging.getLogger("anvil_dev.uplink")

PROTOCOL_VERSION = 8
HANDSHAKE_TIMEOUT_S = 30
# anvil-uplink sends a heartbeat every 10 s; an uplink silent this long has vanished (machine
# asleep, network gone) without closing its socket. (Websocket pings would find it sooner, but
# simple-websocket sends them from its own thread, unsynchronised with our frames.)
IDLE_TIMEOUT_S = 120
MAX_CALLS_IN_FLIGHT = 200
MAX_AWAITING_MEDIA = 64
MAX_PATTERNS = 10000
MAX_PATTERN_LEN = 2000
_MAX_ID_LEN = 200

DISCONNECTED = "Uplink disconnected"
OUTDATED = ("You are using an outdated version of the uplink library. "
            "Please use 'pip install --upgrade anvil-uplink' to get a new one.")
DEPRECATED = ("You are using a deprecated version of the uplink library. "
              "Please use 'pip install --upgrade anvil-uplink' to get a new one.")


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


def _live_object_call(spec: Any) -> Message:
    """A method call on a LiveObject the uplink holds; only rows' get_id() is answered here."""
    spec = spec if isinstance(spec, dict) else {}
    if spec.get("backend") == ROW_TYPE and spec.get("method") == "get_id":
        return {"response": spec.get("id"), "objects": [], "output": ""}
    what = f"{spec.get('backend')}.{spec.get('method')}"
    return error("anvil.server.InternalError",
                 f"anvil-dev cannot run {what} for uplink code: rows reach uplinks as read-only copies of the "
                 "columns sent with them. Call a server function to read or change data tables.")


def _check_id(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID_LEN:
        raise ProtocolError(f"{what} without a valid id: {value!r:.80}")
    return value


class UplinkConnection:
    def __init__(self, hub: UplinkHub, ws: Any, remote_addr: str | None) -> None:
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
        self._awaiting_media: dict[str, IncomingMessage] = {}
        self._next_header: dict[str, Any] | None = None
        self._in_flight = 0

    # ---- sending -------------------------------------------------------------------------

    def _send_text(self, data: dict[str, Any]) -> None:
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
        except Exception as e:  # ConnectionClosed, BrokenPipeError, ...
            raise UplinkGone(str(e)) from None

    def send_message(self, msg: dict[str, Any]) -> None:
        """Send a message with an id, then the bytes of any DataMedia it refers to."""
        out, media = prepare_outgoing(rows_to_live_objects(msg), self.hub.media_store)
        self._send_text(out)
        if media:
            send_media(out["id"], media, self._send_pair, self._send_text)

    # ---- the receiving loop -------------------------------------------------------------

    def serve(self) -> None:
        """Run the connection until it closes; called in the websocket's request thread."""
        try:
            if not self._handshake():
                return
            self.hub._attach(self)
            while True:
                frame = self.ws.receive(timeout=IDLE_TIMEOUT_S)
                if frame is None:
                    say(f"uplink from {self.remote_addr} sent nothing for {IDLE_TIMEOUT_S} s "
                        "(its heartbeat comes every 10 s); disconnected it", "yellow")
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
            say(f"uplink from {self.remote_addr} sent no key within {HANDSHAKE_TIMEOUT_S} s; disconnected it",
                "yellow")
            self.close()
            return False
        try:
            data = json.loads(frame)
        except (ValueError, TypeError):
            data = None
        key = data.get("key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not hmac.compare_digest(key.encode(), self.hub.key.encode()):
            say(f"uplink from {self.remote_addr} refused: incorrect uplink key "
                "(`anvil-dev uplink-key` prints the right one)", "yellow")
            self._fatal("Incorrect uplink key")
            return False
        v = data.get("v") if isinstance(data, dict) else None
        if not isinstance(v, int) or v < 5:
            self._fatal(OUTDATED)
            return False
        if v < 7:
            self._send_text({"output": DEPRECATED})
        self._send_text({"auth": "OK", "priv": "uplink", "app-info": self.hub.app_info})
        say(f"uplink connected from {self.remote_addr}")
        return True

    def _fatal(self, message: str) -> None:
        """Send Anvil's fatal `{"error": ...}` frame and close."""
        try:
            self._send_text({"error": message})
        except UplinkGone:
            pass
        self.close()

    def _on_text(self, frame: str) -> None:
        if self._next_header is not None:
            raise ProtocolError("a text frame came where the binary frame after CHUNK_HEADER was due")
        try:
            data = json.loads(frame)
        except ValueError:
            raise ProtocolError("a text frame that is not JSON") from None
        except RecursionError:
            raise ProtocolError("a text frame nested too deeply") from None
        if not isinstance(data, dict):
            raise ProtocolError("a JSON frame that is not an object")
        kind = data.get("type")
        if kind == "REGISTER":
            self._register(data.get("name"))
        elif kind == "CALL":
            self._on_message(data)
        elif kind == "CHUNK_HEADER":
            _check_id(data.get("requestId"), "CHUNK_HEADER")
            self._next_header = data
        elif kind == "MEDIA_ERROR":
            self._on_media_error(data)
        elif kind is None and "id" in data and ("response" in data or "error" in data):
            self._on_message(data)
        elif kind == "REGISTER_LIVE_OBJECT_BACKEND":
            self._fatal("Cannot register live-object backends the uplink.")
            raise _Close()
        elif kind is None and "output" in data:
            log.info("Uplink %s: %s", self.remote_addr, str(data["output"]).rstrip("\n"))
        else:
            log.debug("Uplink from %s sent an unknown message type %r; ignored", self.remote_addr, kind)

    def _register(self, name: Any) -> None:
        try:
            if not isinstance(name, str) or len(name) > MAX_PATTERN_LEN:
                raise re.error("not a string of reasonable length")
            pattern = re.compile(name)
        except (re.error, RecursionError, OverflowError):
            self._fatal("Invalid function name specification")
            raise _Close() from None
        with self._lock:
            if name not in self.patterns and len(self.patterns) >= MAX_PATTERNS:
                raise ProtocolError(f"more than {MAX_PATTERNS} registrations")
            self.patterns[name] = pattern
        log.debug("Uplink %s registered %r", self.remote_addr, name)

    def _on_message(self, data: dict[str, Any]) -> None:
        msg_id = _check_id(data.get("id"), "a message")
        if (data.get("type") == "CALL" and data.get("command") == "anvil.private.echo"
                and not data.get("objects")):
            # The client's heartbeat: answer it here, without a thread or a round trip.
            args = data.get("args")
            self._send_text({"id": msg_id, "response": args[0] if isinstance(args, list) and args else None,
                             "objects": []})
            return
        incoming = IncomingMessage(data, self.hub.media_store)
        if incoming.ready():
            self._deliver(incoming.finish())
            return
        if msg_id in self._awaiting_media:
            incoming.discard()
            raise ProtocolError(f"two messages with the id {msg_id!r:.80}")
        if len(self._awaiting_media) >= MAX_AWAITING_MEDIA:
            incoming.discard()
            raise ProtocolError(f"more than {MAX_AWAITING_MEDIA} messages waiting for their media")
        self._awaiting_media[msg_id] = incoming

    def _on_binary(self, data: bytes) -> None:
        header = self._next_header
        if header is None:
            raise ProtocolError("a binary frame without a CHUNK_HEADER before it")
        self._next_header = None
        incoming = self._awaiting_media.get(header["requestId"])
        if incoming is None:
            raise ProtocolError(f"a media chunk for unknown message {header['requestId']!r:.80}")
        try:
            incoming.add_chunk(header, data)
        except OSError as e:
            raise ProtocolError(f"cannot store media: {e}") from None
        if incoming.ready():
            del self._awaiting_media[header["requestId"]]
            self._deliver(incoming.finish())

    def _on_media_error(self, data: dict[str, Any]) -> None:
        incoming = self._awaiting_media.pop(data.get("requestId"), None)  # type: ignore[arg-type]
        if incoming is None:
            return
        incoming.discard()
        cause = data.get("cause")
        if not isinstance(cause, dict):
            cause = {}
        err = error(str(cause.get("type") or "anvil.server.InternalError"),
                    str(cause.get("message") or "Error during media transfer"))
        if incoming.msg.get("type") == "CALL":
            self._reply(incoming.id, err)  # type: ignore[arg-type]
        else:
            self._resolve(incoming.id, err)  # type: ignore[arg-type]

    def _deliver(self, data: dict[str, Any]) -> None:
        live_objects_to_rows(data)
        if data.get("type") == "CALL":
            self._start_call(data)
            return
        if "error" in data:
            err = dict(data["error"]) if isinstance(data["error"], dict) else {"message": str(data["error"])}
            err.setdefault("type", None)
            err.setdefault("message", "")
            err["trace"] = err.get("trace") or []
            result: Message = {"error": err, "objects": []}
        else:
            result = {"response": data.get("response"), "objects": data.get("objects") or [], "output": ""}
        if "taskState" in data:
            result["taskState"] = data["taskState"]
        self._resolve(data["id"], result)

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
            return dataclasses.replace(outer, trusted=True,
                                       call_stack=[*outer.call_stack, {"type": "uplink"}])
        return Caller(client_type="uplink", ip=self.remote_addr, session_id=self.session_id, trusted=True,
                      call_stack=[{"type": "uplink"}])

    def _start_call(self, data: dict[str, Any]) -> None:
        with self._lock:
            if self._in_flight >= MAX_CALLS_IN_FLIGHT:
                raise ProtocolError(f"more than {MAX_CALLS_IN_FLIGHT} calls in flight")
            self._in_flight += 1
        caller = self._caller_for(data.get("call-stack-id"))
        threading.Thread(target=self._run_call, args=(data, caller), daemon=True,
                         name=f"uplink-call-{data['id']}").start()

    def _run_call(self, data: dict[str, Any], caller: Caller) -> None:
        command = data.get("command")
        try:
            args, kwargs = data.get("args", []), data.get("kwargs", {})
            if not isinstance(args, list) or not isinstance(kwargs, dict) or (
                    not isinstance(command, str) and "liveObjectCall" not in data):
                result = error("anvil.server.InternalError", "Malformed call from the uplink "
                               "(needs a command string, an args list and a kwargs object)")
            elif "liveObjectCall" in data:
                result = _live_object_call(data["liveObjectCall"])
            else:
                msg: Message = {"command": command, "args": args, "kwargs": kwargs,
                                "objects": data.get("objects") or []}
                for extra in ("liveObjectCall", "vt_global"):
                    if extra in data:
                        msg[extra] = data[extra]
                result = self.hub.dispatcher.call(msg, caller).message()
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
                self._send_text({"output": result["output"]})
            if "error" in result:
                self._send_text({"id": msg_id, "error": result["error"], "objects": []})
            else:
                self.send_message({"id": msg_id, "response": result.get("response"),
                                   "objects": result.get("objects") or []})
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
        except Exception as e:
            self._resolve(msg_id, error("anvil.server.InternalError", f"Cannot send the call to the uplink: {e}"))
        return pending.wait()

    def call(self, kind: str, msg: dict[str, Any], caller: Caller, msg_id: str | None = None) -> Message:
        """A CALL (or LAUNCH_BACKGROUND) of a registered function, in the shape the client reads."""
        msg_id = msg_id or "server-" + secrets.token_urlsafe(12)
        frames = list(reversed(caller.call_stack)) or [{"type": caller.client_type}]
        client: dict[str, Any] = {"type": caller.client_type, "ip": caller.ip, "location": None}
        if caller.background_task_id:
            client["background-task-id"] = caller.background_task_id
        out: dict[str, Any] = {
            "type": kind, "call-stack-id": msg_id,
            "command": msg.get("command"), "args": msg.get("args") or [], "kwargs": msg.get("kwargs") or {},
            "objects": msg.get("objects") or [],
            # Innermost frame first: the client takes call-stack[0] as the remote caller.
            "call-stack": [{**f, "protocol-version": PROTOCOL_VERSION} for f in frames],
            "client": client, "sessionData": {"session": {}, "objects": []},
            "session-id": caller.session_id, "app-info": self.hub.app_info,
        }
        return self.request(out, caller, msg_id)

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
        except Exception:
            pass
        finally:
            if locked:
                self._send_lock.release()
        # Wake a receive() that is waiting for a peer that may never answer the close.
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except Exception:
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
        for incoming in self._awaiting_media.values():
            incoming.discard()
        self._awaiting_media.clear()
        self.hub._detach(self)
