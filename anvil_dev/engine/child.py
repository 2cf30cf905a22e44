"""The child side: a forked process that imports the app and runs one call (fresh) or many (persistent)."""

from __future__ import annotations

import ctypes
import inspect
import io
import json
import mmap
import os
import queue
import random
import socket
import sys
import threading
import uuid
import weakref
from typing import Any, NoReturn, TextIO

from anvil_dev import timeline
from anvil_dev.appdir import AppDir
from anvil_dev.engine import direct, loader
from anvil_dev.engine.frames import Channel, Frame, call_from_frame, encode_message, to_reply, with_output
from anvil_dev.protocol import (
    RETURNED_TOO_MUCH_MESSAGE,
    Caller,
    ChildMode,
    ErrorInfo,
    FrameKind,
    Message,
    Reply,
    error,
    has_media,
    timeout_error,
    unavailable,
)

MAX_OUTPUT = 1 << 20


def _capped(text: str) -> str:
    """A call's printed output as the caller gets it: all of it is in the serve terminal."""
    if len(text) <= MAX_OUTPUT:
        return text
    return text[:MAX_OUTPUT] + f"\n[... {len(text) - MAX_OUTPUT} more characters of output are in the serve terminal]\n"


class CallInterrupted(BaseException):
    """Raised inside a persistent worker's call thread when the host says its time is up."""


class _TerminalOutput(io.TextIOBase):
    """sys.stdout in a worker: print() goes to the caller's output and, prefixed, to the serve terminal."""

    def __init__(self, terminal: TextIO) -> None:
        self.terminal = terminal
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from anvil import _context

        state = _context.current()
        if not _context.in_call():
            self.terminal.write(text)
            self.terminal.flush()
            return len(text)
        state.output.append(text)
        # The line so far is kept in pieces and joined only when a newline ends it: joining it on
        # every write cost quadratic time for output printed without newlines.
        pieces: list[str] = state.cache.setdefault("_partial", [])
        if "\n" not in text:
            pieces.append(text)
            return len(text)
        pieces.append(text)
        lines = "".join(pieces).split("\n")
        tail = lines.pop()
        pieces[:] = [tail] if tail else []
        if lines:
            name = state.command or "?"
            if state.background_task_id:
                name = f"task {name.removeprefix('task:')} {state.background_task_id}"
            with self._lock:
                self.terminal.write("".join(f"[{name}] {line}\n" for line in lines))
                self.terminal.flush()
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()


_unseeded: weakref.WeakSet[random.Random] | None = None


def track_unseeded_randoms() -> None:
    """In a template: remember random.Random instances the app makes without a seed at import time,
    so that each forked child can reseed them (else every call would draw the same numbers)."""
    global _unseeded
    _unseeded = weakref.WeakSet()
    original = random.Random.__init__

    def init(self: random.Random, x: Any = None) -> None:
        original(self, x)
        if x is None and _unseeded is not None:
            _unseeded.add(self)

    random.Random.__init__ = init  # type: ignore[method-assign]


def reseed_after_fork() -> None:
    """Give a forked child random state of its own (the stdlib's module-level generator reseeds
    itself at fork; these do not)."""
    for rng in list(_unseeded or ()):
        rng.seed()
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        try:
            np_random.seed()
        except Exception:  # noqa: BLE001 - never worth failing a call over
            pass


def import_app(app: AppDir) -> ErrorInfo | None:
    """Import every server module; returns the error every call should then get, or None."""
    from anvil import _engine_hooks, _errors

    _engine_hooks.app_root = str(app.path)
    deps = app.dependencies(loader._explicit_deps())[0]
    _engine_hooks.code_roots = [(str(app.path), ""), *((str(d.path), d.path.name + "/") for d in deps)]
    try:
        loader.import_server_modules(app)
    except BaseException as e:  # noqa: BLE001 - any failure of user code is reported to callers
        err: ErrorInfo = _errors.error_dict(e, str(app.path))  # type: ignore[assignment]
        err["moduleLoadFailed"] = True
        return err
    return None


WARM_COMMAND = "anvil_dev.private.warm"
WARM_RUNS = 10  # enough for CPython to specialise the call path's bytecode


class _Discard(Channel):
    """A channel whose sends go nowhere: the warm-up's replies."""

    def send_raw(self, data: bytes) -> None:
        pass


def browser_call_head(command: str, call_id: str) -> dict[str, Any]:
    """The header of a CALL frame of `command` from a browser, with a response to write, as a call
    over serve's HTTP server has (`_write_directly`): to go with the client's socket and a claim.
    For calls the runtime makes up (the warm-up; bench/idle_cpu.py)."""
    caller = Caller(
        client_type="browser", ip="127.0.0.1", session_id=call_id, trusted=False, call_stack=[{"type": "browser"}]
    ).to_json()
    return {
        "type": FrameKind.CALL.value,
        "id": call_id,
        "command": command,
        "caller": caller,
        "direct": "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n",
    }


def warm_call_path(app: AppDir, load_error: ErrorInfo | None, runs: int = WARM_RUNS) -> None:
    """Run the runtime's own call path (frame in, decode, call, encode, frame out) on a dummy call
    of a function of ours, never the app's.

    In a template, before it forks (`runs` times): what a first call touches (lazy imports, caches,
    specialised bytecode) is made once there and shared by every child through fork. In a spare
    just forked (once): the pages a call writes (reference counts, the interpreter's caches) are
    copied now, while the spare waits, rather than one fault at a time during its call."""
    from anvil import server

    server.registrations[WARM_COMMAND] = server.Registration(WARM_COMMAND, _warm_echo)
    a, b = socket.socketpair()
    try:
        warm = ChildServer(_Discard(a), app, ChildMode.FRESH)
        warm.load_error = load_error
        head = browser_call_head(WARM_COMMAND, "warm")
        head["direct_at"] = 0  # a second long past: the date is made as a late call's is
        body = json.dumps(
            {"command": WARM_COMMAND, "args": [1, "two", [3.0], {"four": None}], "kwargs": {"k": True}, "objects": []}
        ).encode()
        client, ours = socket.socketpair()
        client.setblocking(False)
        for _ in range(runs):
            warm._run_call(Frame(head, body, (os.dup(ours.fileno()), os.eventfd(1, os.EFD_CLOEXEC))))
            try:
                client.recv(65536)
            except BlockingIOError:
                pass  # not written (an app that failed to import answers with its error)
        client.close()
        ours.close()
    finally:
        del server.registrations[WARM_COMMAND]
        a.close()
        b.close()


def prepare_fresh_server(app: AppDir, load_error: ErrorInfo | None) -> ChildServer:
    """In a template, before it forks: the `ChildServer` of its fresh children (and their sys.stdout),
    made once and inherited, so that a child only gives it its socket. What a child builds after
    its fork writes pages it shares with the template, each a copy-on-write fault of ~3 µs here;
    made in the child, these took ~80 of the ~690 faults of a fresh call."""
    a, b = socket.socketpair()
    a.close()
    b.close()
    server = ChildServer(Channel(a), app, ChildMode.FRESH)  # each child puts its own channel here
    server.adopt(load_error)
    assert sys.__stdout__ is not None
    sys.stdout = _TerminalOutput(sys.__stdout__)
    return server


def _warm_echo(*args: Any, **kwargs: Any) -> Any:
    return [args, kwargs]


class ChildServer:
    """The loop of a forked child: reads CALL frames and answers each with one REPLY.

    A fresh child runs one call on its main thread; a persistent worker runs calls in threads.
    """

    def __init__(self, chan: Channel, app: AppDir, mode: ChildMode) -> None:
        self.chan = chan
        self.app = app
        self.mode = mode
        self.load_error: ErrorInfo | None = None
        from anvil_dev import services

        self.max_response = services.current().settings.max_response_bytes
        self.debugpy_state = services.current().settings.debugpy_state  # serve --debug: engine/attach.py
        self._pending: dict[str, _Slot] = {}
        self._threads: dict[str, int] = {}
        self._interrupted: set[str] = set()  # calls an INTERRUPT was sent to
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        # A persistent worker's threads take turns reading (`_lead`): a token here wakes an idle one.
        self._turns: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._idle_threads = 0
        self._reading = True  # a thread reads, or has been handed the reading (persistent)
        # The host's wakes (a persistent worker's, set by `child_main`): see `_watch_wakes`.
        self.wakes: socket.socket | None = None
        # `_reading`, shared with the host, which wakes us only when it is 0 (`Child.wake`).
        self.reading_byte: mmap.mmap | None = None
        self._loaded = False

    # -- start-up ---------------------------------------------------------------------------

    def load(self) -> None:
        self.adopt(import_app(self.app))

    def adopt(self, load_error: ErrorInfo | None) -> None:
        """Take over the app as imported (here, or by the template this process was forked from)."""
        from anvil import _engine_hooks

        _engine_hooks.outbound = self.outbound
        self.load_error = load_error
        self._loaded = True

    def describe(self) -> dict[str, Any]:
        from anvil import server

        functions = []
        for name, reg in sorted(server.registrations.items()):
            fn = reg.fn
            try:
                file = self.app.relpath(inspect.getsourcefile(fn) or "")
                line = fn.__code__.co_firstlineno
            except (TypeError, AttributeError):
                file, line = None, None
            ru = reg.require_user
            functions.append(
                {
                    "name": name,
                    "signature": server.signature_of(fn),
                    "doc": inspect.getdoc(fn),
                    "require_user": None if ru is None or ru is False else (True if ru is True else "predicate"),
                    "module": getattr(fn, "__module__", None),
                    "file": file,
                    "line": line,
                }
            )
        return {"type": FrameKind.DESCRIBE.value, "functions": functions, "import_error": self.load_error}

    # -- calls ------------------------------------------------------------------------------

    def serve(self) -> None:
        """Read frames until EOF. A fresh child runs its one call on this thread; a persistent worker's
        threads take turns reading (`_lead`)."""
        if self.mode is ChildMode.PERSISTENT:
            self._set_reading(True)
            if self.wakes is not None:
                threading.Thread(target=self._watch_wakes, args=(self.wakes,), name="wakes", daemon=True).start()
            self.chan.send({"type": FrameKind.READY.value, "import_error": self.load_error, "pid": os.getpid()})
            self._lead()
            return
        while True:
            frame = self.chan.recv()
            if frame is None:
                return
            kind = frame.kind
            if kind == FrameKind.CALL:
                if not self._loaded:
                    self.load()
                self._run_call(frame)
                # Exit once the host closes the socket, which it does after sending the
                # response: the exit (and the zygote's report of it) then does not compete with that.
                while self.chan.recv() is not None:
                    pass
                return
            if kind == FrameKind.REPLY:
                self._deliver(frame)
            elif kind == FrameKind.INTERRUPT:
                self._interrupt(str(frame.head.get("id")))
            elif kind == FrameKind.WARM:
                self._warm()

    def _lead(self) -> None:
        """A persistent worker's read loop, on one thread at a time (leader and followers).

        The thread that reads a CALL runs it itself. When it is the only call running, nobody
        reads meanwhile: handing the reading on to another thread before each call cost 3-5% of
        a call back to back. A frame the host sends while calls are in flight and no thread reads
        (a concurrent call, an interrupt) is followed by a wake (`_watch_wakes`), which puts an
        idle thread (or a new one) to reading; `reading_byte` tells the host whether one reads.
        While other calls run, the reading is handed on at once, as a wake would soon be needed.
        After its call the thread reads again, unless another has started to; then it waits for
        its next turn. Returns at EOF on the main thread; elsewhere, EOF ends the process.
        """
        while True:
            frame = self.chan.recv()
            if frame is None:
                if threading.current_thread() is not threading.main_thread():
                    _exit(0)
                return
            kind = frame.kind
            if kind == FrameKind.CALL:
                with self._lock:
                    self._set_reading(False)
                    # With other calls running a wake would soon be needed, and a nested call's
                    # reply is sent with none: either way, keep a reader now.
                    hand_on = bool(self._pending) or bool(self._threads)
                # Checked once the reading is down: a frame the host sent while this thread still
                # read (and so sent no wake, or one that did nothing) is waiting now.
                if hand_on or self.chan.has_pending():
                    self._ensure_reader()
                try:
                    self._run_call(frame)
                except CallInterrupted:
                    pass  # an interrupt that landed as the call was finishing
                with self._lock:
                    reads_on = not self._reading
                    if reads_on:
                        self._set_reading(True)
                    else:
                        self._idle_threads += 1
                if not reads_on:
                    self._turns.get()
            elif kind == FrameKind.REPLY:
                self._deliver(frame)
            elif kind == FrameKind.INTERRUPT:
                self._interrupt(str(frame.head.get("id")))

    def _ensure_reader(self) -> None:
        """Unless a thread reads (or is about to), hand the reading to an idle thread, or a new one."""
        with self._lock:
            if self._reading:
                return
            self._set_reading(True)
            idle = self._idle_threads > 0
            if idle:
                self._idle_threads -= 1
        if idle:
            self._turns.put(None)
            return
        try:
            threading.Thread(target=self._lead_or_die, daemon=True).start()
        except RuntimeError:  # no more threads: with `_reading` set, nobody would read again
            import traceback

            traceback.print_exc()
            _exit(1)

    def _set_reading(self, reading: bool) -> None:
        """Caller holds the lock."""
        self._reading = reading
        if self.reading_byte is not None:
            self.reading_byte[0] = reading

    def _watch_wakes(self, wakes: socket.socket) -> None:
        """A thread of a persistent worker kept for the host's wakes: each says a frame may be
        waiting with nobody reading. At EOF (the host closed its end) its socket's EOF follows."""
        while True:
            try:
                woken = wakes.recv(256)
            except OSError:
                return
            if not woken:
                return
            self._ensure_reader()

    def _lead_or_die(self) -> None:
        """`_lead` on a thread other than the main one: whatever stops its reading ends the process,
        as it would on the main thread (else the worker would hang with nobody reading)."""
        try:
            self._lead()
        except BaseException:  # noqa: BLE001 - printed for the serve terminal, then the worker ends
            import traceback

            traceback.print_exc()
            _exit(1)

    def _warm(self) -> None:
        """A spare the host forked while calls come slowly: take the faults its call would take now.
        Not when the call is here already (it would wait), nor in a child that imports on its call."""
        if self.mode is not ChildMode.FRESH or not self._loaded or self.chan.has_pending():
            return
        try:
            warm_call_path(self.app, self.load_error, runs=1)
        except Exception:  # noqa: BLE001 - a warm-up that fails only leaves the call cold
            pass

    def _run_call(self, frame: Frame) -> None:
        try:
            self._answer_call(frame)
        finally:
            for fd in frame.fds:  # the client's socket and the claim go with the call, however it ended
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _answer_call(self, frame: Frame) -> None:
        from anvil import _engine_hooks

        call = frame.head
        call_id = str(call.get("id") or uuid.uuid4().hex)
        timed = timeline.child_started() if timeline.ON and call.get("command") != WARM_COMMAND else None
        with self._lock:
            self._threads[call_id] = threading.get_ident()
        output: list[str] = []
        session_id = user = None
        frames = None
        try:
            if self.load_error is not None:
                message: Message = {"error": self.load_error, "objects": []}
            else:
                call = call_from_frame(frame)
                if self.debugpy_state is not None and call.get("command") != WARM_COMMAND:
                    from anvil_dev.engine import attach

                    attach.debug_this_call(self.debugpy_state)
                outcome = _engine_hooks.execute(call, Caller.from_json(call.get("caller") or {}), output=output)
                message, session_id, user, frames = outcome.message, outcome.session_id, outcome.user, outcome.frames
        except CallInterrupted:
            message = timeout_error()
        except Exception as e:  # noqa: BLE001 - a failure of ours must still answer the caller
            message = error("anvil.server.InternalError", f"anvil-dev failed to run this call: {type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._threads.pop(call_id, None)
                if call_id in self._interrupted:
                    self._interrupted.discard(call_id)
                    # An interrupt sent just as the call ended must not hit this thread's next call.
                    # Only then: clearing leaves CPython 3.11's eval breaker set, and under a tracer
                    # (debugpy, `serve --debug`) the next function call then spins for ever.
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)
        encoded = encode_message(message)
        # The limit is on what the function returned: its printed output does not count.
        if len(encoded) > self.max_response and "response" in message:
            message = error("anvil.server.SerializationError", RETURNED_TOO_MUCH_MESSAGE)
            encoded = encode_message(message)
        body = with_output(encoded, _capped("".join(output)))
        reply = Reply(
            body=body,
            error=message.get("error"),
            session_id=session_id,
            user=user,
            has_media=has_media(message),
            frames=frames if "error" in message else None,
        )
        if frame.fds:
            # After the call has left `_threads`: no interrupt can land in the write.
            reply.written = _write_directly(frame, reply)
        timed_line = timeline.child_replying(call_id, timed) if timed is not None else None
        try:
            self.chan.send_reply(call_id, reply)
        except OSError:
            pass
        if timed_line is not None:
            timeline.write(timed_line)

    def _interrupt(self, call_id: str) -> None:
        with self._lock:  # held: the call's end must not clear this before it is set
            ident = self._threads.get(call_id)
            if ident is not None:
                self._interrupted.add(call_id)
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(CallInterrupted))

    # -- nested calls the host must route (uplinks, native services) -------------------------

    def outbound(self, call: Message, caller: Caller) -> Reply:
        call_id = "w" + uuid.uuid4().hex[:12]
        slot = _Slot()
        with self._lock:
            self._pending[call_id] = slot
        self.chan.send(dict(call, type=FrameKind.CALL.value, id=call_id, caller=caller.to_json()))
        if self.mode is ChildMode.PERSISTENT:
            self._ensure_reader()  # the reply comes with no wake
            slot.done.wait()  # the serve loop reads the reply
        else:
            self._read_until(slot)
        assert slot.reply is not None
        return slot.reply

    def _read_until(self, slot: _Slot) -> None:
        """In a fresh child nobody else reads: whichever waiting thread holds the read lock reads
        frames, delivering each reply to its waiter, until its own has come."""
        while not slot.done.is_set():
            if not self._read_lock.acquire(timeout=0.05):
                continue
            try:
                while not slot.done.is_set():
                    frame = self.chan.recv()
                    if frame is None:
                        slot.reply = Reply.from_message(unavailable("The server went away"))
                        slot.done.set()
                    elif frame.kind == FrameKind.REPLY:
                        self._deliver(frame)
            finally:
                self._read_lock.release()

    def _deliver(self, frame: Frame) -> None:
        with self._lock:
            slot = self._pending.pop(str(frame.head.get("id")), None)
        if slot is not None:
            slot.reply = to_reply(frame)
            slot.done.set()


class _Slot:
    """A nested call waiting for the host's reply."""

    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None


def _write_directly(frame: Frame, reply: Reply) -> bool:
    """Write the call's response to the client the host offered it for (`anvil_dev.engine.direct`),
    when there is nothing the host must add to it; True when it was written whole. The frame's
    descriptors stay open (`_run_call` closes them)."""
    head = frame.head.get("direct")
    try:
        if (
            len(frame.fds) != 2
            or not isinstance(head, str)
            or reply.error is not None
            or reply.has_media
            or reply.session_id
        ):
            return False
        at = frame.head.get("direct_at")
        return direct.write_response(frame.fds[0], frame.fds[1], head, reply.body, at if isinstance(at, int) else None)
    except OSError:
        return False  # the claim is ours, so the host closes the connection


def child_main(
    fd: int,
    app: AppDir,
    mode: ChildMode,
    preloaded: dict[str, Any] | None = None,
    wakes_fd: int | None = None,
    reading_fd: int | None = None,
) -> None:
    """Entry point of a forked child (services already configured by the zygote); never returns.
    `wakes_fd`, `reading_fd`: a persistent worker's end of the host's wakes, and the byte it shares
    with the host saying whether one of its threads reads (`ChildServer._lead`).

    `preloaded` is set when the child was forked from a template that has imported the app
    already: {"error": the import error or None, and for a template whose children may share its
    import, "fresh_server": the `ChildServer` it made for them, `prepare_fresh_server`}.
    """
    code = 0
    try:
        sock = socket.socket(fileno=fd)
        chan = Channel(sock, takes_fds=mode is not ChildMode.DESCRIBE)
        prepared: ChildServer | None = preloaded.get("fresh_server") if preloaded and mode is ChildMode.FRESH else None
        if prepared is None:
            assert sys.__stdout__ is not None
            sys.stdout = _TerminalOutput(sys.__stdout__)
        reseed_after_fork()
        import_on_call = mode is ChildMode.FRESH_IMPORT_ON_CALL
        if prepared is not None:
            server = prepared
            server.chan = chan
        else:
            server = ChildServer(chan, app, ChildMode.FRESH if import_on_call else mode)
            if preloaded is not None:
                server.adopt(preloaded.get("error"))
            elif not import_on_call:
                server.load()
            if wakes_fd is not None:
                server.wakes = socket.socket(fileno=wakes_fd)
            if reading_fd is not None:
                server.reading_byte = mmap.mmap(reading_fd, 1)
                os.close(reading_fd)
        if mode is ChildMode.DESCRIBE:
            chan.send(server.describe())
        else:
            server.serve()
    except BaseException:  # noqa: BLE001 - whatever ends the child is printed for the serve terminal
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        _exit(code)


def _exit(code: int) -> NoReturn:
    """End this child at once (no interpreter teardown), with what it printed flushed."""
    try:
        sys.stdout.flush()
        if sys.__stderr__ is not None:
            sys.__stderr__.flush()
    finally:
        os._exit(code)
