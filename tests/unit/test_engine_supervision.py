"""The engine's supervision, in-process: a fake forker whose children are threads speaking frames
over socketpairs (as gunicorn's tests/test_arbiter.py patches the arbiter's seams)."""

from __future__ import annotations

import itertools
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.engine import direct
from anvil_dev.engine import engine as engine_module
from anvil_dev.engine import workers as workers_module
from anvil_dev.engine.child import _write_directly
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.engine import Engine
from anvil_dev.engine.forker import Child
from anvil_dev.engine.frames import Channel, Frame, encode_message, with_output
from anvil_dev.protocol import Caller, ChildMode, FrameKind, Message, Reply, error

from helpers import already_received

_pids = itertools.count(1_000_000)  # never a real process: FakeChild.kill signals nothing
DIRECT_COMMANDS = {"write_then_reply_late", "finish_after_deadline", "take_and_die"}


class FakeChild(Child):
    """A child that is a thread: it answers CALL frames by command (see `_answer`)."""

    def __init__(self, forker: FakeForker, mode: ChildMode, generation: int) -> None:
        host_end, self.child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        super().__init__(Channel(host_end), mode, generation)
        self.forker = forker
        self.pid = next(_pids)
        self.spawned.set()
        self.killed = threading.Event()
        self.calls: list[str] = []
        self.kinds: list[FrameKind] = []  # of every frame the host sent
        self.interrupted: dict[str, threading.Event] = {}  # "stoppable" calls, by id
        self.wrote: bool | None = None  # what a DIRECT_COMMANDS call's write_response returned
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()

    def kill(self) -> None:
        self._exit(-9)

    def _exit(self, code: int) -> None:
        if self.exited.is_set():
            return
        self.exit_code = code
        self.set_exited()  # before the socket closes: the host reads the code when it sees EOF
        self.killed.set()
        try:
            self.child_end.shutdown(socket.SHUT_RDWR)  # EOF both ways; the thread closes it as it ends
        except OSError:
            pass

    @property
    def idle(self) -> bool:
        return not self.calls and not self.exited.is_set()

    def _main(self) -> None:
        try:
            self._serve(Channel(self.child_end, takes_fds=True))
        finally:
            self.child_end.close()

    def _serve(self, chan: Channel) -> None:
        if self.mode is ChildMode.DESCRIBE:
            chan.send({"type": FrameKind.DESCRIBE.value, "functions": [], "import_error": None})
            return self._exit(0)
        if self.mode is ChildMode.PERSISTENT:
            chan.send({"type": FrameKind.READY.value, "import_error": None, "pid": self.pid})
        while True:
            frame = chan.recv()
            if frame is None:
                return self._exit(0)
            self.kinds.append(frame.kind)
            if frame.kind == FrameKind.INTERRUPT:
                self.interrupted.setdefault(str(frame.head["id"]), threading.Event()).set()
            if frame.kind == FrameKind.CALL:
                self.calls.append(str(frame.head.get("command")))
                if self.mode is ChildMode.PERSISTENT:
                    threading.Thread(target=self._answer, args=(chan, frame), daemon=True).start()
                else:
                    return self._answer(chan, frame)

    def _answer(self, chan: Channel, frame: Frame) -> None:
        try:
            self._answer_frame(chan, frame)
        finally:
            for fd in frame.fds:  # as the real child does, however the call ended
                os.close(fd)

    def _answer_frame(self, chan: Channel, frame: Frame) -> None:
        head = frame.head
        command, args = head["command"], head.get("args") or []
        if command == "crash":
            return self._exit(1)
        if command == "block":  # until killed; an INTERRUPT does not stop it (C code, say)
            self.killed.wait()
            return
        if command == "gate":
            self.forker.gate.wait(5)
        if command == "stoppable":  # until interrupted; then it answers, as a real worker's call does
            self.interrupted.setdefault(str(head["id"]), threading.Event()).wait(5)
        if command in DIRECT_COMMANDS:
            return self._answer_directly(chan, frame)
        if command == "nested":
            chan.send(
                {
                    "type": FrameKind.CALL.value,
                    "id": "n1",
                    "command": "up",
                    "args": [],
                    "kwargs": {},
                    "objects": [],
                    "caller": head["caller"],
                }
            )
            nested = chan.recv()
            assert nested is not None and nested.kind == FrameKind.REPLY
            result: Any = Reply(nested.payload).message()["response"]
        else:
            result = {"pid": self.pid, "generation": self.generation, "args": args}
        message: Message = {"response": result, "objects": []}
        reply = Reply(with_output(encode_message(message), ""))
        if frame.fds:
            reply.written = _write_directly(frame, reply)  # the real child's rule
        chan.send_reply(head["id"], reply)
        if self.mode is not ChildMode.PERSISTENT:
            self._exit(0)

    def _answer_directly(self, chan: Channel, frame: Frame) -> None:
        """Calls that play out the ends of a response the child may write itself, around the
        host's deadline (`self.forker.deadline_passed`, set by the test)."""
        command, client, claim = frame.head["command"], *frame.fds
        body = with_output(encode_message({"response": command, "objects": []}), "")
        if command == "write_then_reply_late":  # takes the writing just before the deadline
            self.wrote = direct.write_response(client, claim, frame.head["direct"], body)
            self.forker.deadline_passed.wait(5)
        elif command == "finish_after_deadline":  # the host has answered the timeout by then
            self.forker.deadline_passed.wait(5)
            time.sleep(0.05)
            self.wrote = direct.write_response(client, claim, frame.head["direct"], body)
        elif command == "take_and_die":  # takes the writing, then dies before its REPLY
            self.wrote = direct.write_response(client, claim, frame.head["direct"], body)
            return self._exit(-9)
        try:
            chan.send_reply(frame.head["id"], Reply(body, written=self.wrote))
        except OSError:
            pass  # killed at its deadline (fresh): nobody reads any more
        if self.mode is not ChildMode.PERSISTENT:
            self._exit(0)


class NeverForked(Child):
    """A child whose forker died before forking it: no pid, and its socket's other end is gone."""

    def __init__(self, mode: ChildMode, generation: int) -> None:
        host_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        child_end.close()
        super().__init__(Channel(host_end), mode, generation)
        self.spawned.set()
        self.exited.set()


class FakeForker:
    """The zygote (or a template of one generation): forks FakeChild threads."""

    def __init__(self, generation: int | None = None, parent: FakeForker | None = None) -> None:
        self.generation = generation  # None: the zygote
        self.children: list[FakeChild] = []
        self.templates: list[FakeForker] = []
        self.gate = parent.gate if parent else threading.Event()
        self.deadline_passed = parent.deadline_passed if parent else threading.Event()
        self._alive = True
        self.retired = False
        self.stopped = False
        self.unnoticed_death = False

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def unforkable(self) -> str | None:
        return None

    def wait_ready(self, timeout: float = 60) -> None:
        pass

    def spawn(self, mode: ChildMode, generation: int = 0) -> Child:
        if self.unnoticed_death:
            self._alive = False  # as the real handle learns it: its request went nowhere
            return NeverForked(mode, generation)
        child = FakeChild(self, mode, generation)
        self.children.append(child)
        return child

    def spawn_template(self, generation: int) -> FakeForker:
        template = FakeForker(generation, parent=self)
        self.templates.append(template)
        return template

    def retire(self) -> None:
        self.retired = True

    def stop(self) -> None:
        self.stopped = True
        self._alive = False
        for child in self.children:
            child.kill()

    def die(self) -> None:
        """Killed from outside."""
        self._alive = False

    def die_unnoticed(self) -> None:
        """Killed from outside with its idle children, before the host has seen it: forks asked of
        it now never happen (as when the spawn request was still in its socket)."""
        self.unnoticed_death = True
        for child in self.idle_spares():
            child.kill()

    def idle_spares(self) -> list[FakeChild]:
        return [c for c in self.children if c.mode is ChildMode.FRESH and c.idle]


def wait_for(check: Callable[[], object], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


@pytest.fixture
def app(tmp_path: Path) -> AppDir:
    (tmp_path / "server_code").mkdir()
    (tmp_path / "client_code").mkdir()
    (tmp_path / "anvil.yaml").write_text("name: Fake\npackage_name: Fake\n")
    return AppDir(tmp_path)


@pytest.fixture
def start(app: AppDir) -> Iterator[Callable[..., tuple[Engine, list[FakeForker]]]]:
    engines: list[Engine] = []

    def start(**settings: Any) -> tuple[Engine, list[FakeForker]]:
        zygotes: list[FakeForker] = []

        def factory(_settings: Settings) -> FakeForker:
            zygotes.append(FakeForker())
            return zygotes[-1]

        engine = Engine(app, Settings(app_path=str(app.path), **settings), forker_factory=factory)
        engine.start()
        engines.append(engine)
        return engine, zygotes

    yield start
    for engine in engines:
        engine.stop()


def call(engine: Engine, command: str, *args: Any) -> Reply:
    return engine.call({"command": command, "args": list(args), "kwargs": {}, "objects": []}, Caller())


def test_spares_are_topped_up_to_the_setting(start) -> None:
    engine, [zygote] = start(spares=3)
    [template] = zygote.templates
    assert len(template.idle_spares()) == 3
    assert not zygote.idle_spares()  # fresh children come from the template, not the zygote


def test_a_call_takes_a_spare_and_its_replacement_comes_after_the_call(start) -> None:
    engine, [zygote] = start(spares=2)
    [template] = zygote.templates
    spares = template.idle_spares()
    result: list[Reply] = []
    worker = threading.Thread(target=lambda: result.append(call(engine, "gate")))
    worker.start()
    wait_for(lambda: any(c.calls for c in spares))
    assert len(template.idle_spares()) == 1  # no fork competes with the call while it runs
    template.gate.set()
    worker.join(2)
    assert result[0].ok and result[0].message()["response"]["pid"] in {c.pid for c in spares}
    wait_for(lambda: len(template.idle_spares()) == 2)


def test_the_body_is_the_childs_bytes_and_the_header_is_read_alone(start) -> None:
    engine, _ = start()
    reply = call(engine, "add", 1, 2)
    assert reply.body.endswith(b',"output":""}') and reply.error is None and not reply.has_media
    assert reply.message()["response"]["args"] == [1, 2]


def test_a_dead_template_is_replaced_while_calls_keep_working(start) -> None:
    engine, [zygote] = start(spares=1)
    [old] = zygote.templates
    old.die()
    for _ in range(3):
        assert call(engine, "add").ok
    wait_for(lambda: len(zygote.templates) == 2)
    new = zygote.templates[1]
    wait_for(lambda: new.idle_spares())
    served = call(engine, "add").message()["response"]["pid"]
    assert served in {c.pid for c in new.children + zygote.children}


def test_a_reload_swaps_the_generation_and_closes_old_spares(start) -> None:
    engine, [zygote] = start(spares=2)
    [old] = zygote.templates
    old_spares = old.idle_spares()
    engine.reload([])
    wait_for(lambda: all(c.exited.is_set() for c in old_spares))
    assert old.retired
    new = zygote.templates[1]
    assert new.generation == 1 and len(new.idle_spares()) == 2
    assert call(engine, "add").message()["response"]["generation"] == 1


def test_a_nested_call_goes_to_the_outbound_and_back(start) -> None:
    engine, _ = start()
    seen: list[tuple[str, bool]] = []

    def outbound(msg: Message, caller: Caller) -> Reply:
        seen.append((msg["command"], caller.trusted))
        return Reply.from_message({"response": 42, "objects": []})

    engine.outbound = outbound
    assert call(engine, "nested").message()["response"] == 42
    assert seen == [("up", False)]


def test_a_worker_whose_timed_out_call_does_not_stop_is_retired_and_replaced(start) -> None:
    engine, [zygote] = start(persistent=True, timeout=0.1)
    first = call(engine, "add").message()["response"]["pid"]
    reply = call(engine, "block")
    assert reply.error is not None and reply.error["type"] == "anvil.server.TimeoutError"
    old = next(c for c in zygote.children if c.pid == first)
    wait_for(lambda: old.exited.is_set())  # retired: nothing but the stuck call was left on it
    assert call(engine, "add").message()["response"]["pid"] != first


def test_a_crashed_child_gives_execution_terminated(start) -> None:
    engine, _ = start()
    reply = call(engine, "crash")
    assert reply.error is not None and reply.error["type"] == "anvil.server.ExecutionTerminatedError"
    assert "exit code 1" in reply.error["message"]
    assert call(engine, "add").ok


def test_stop_stops_everything(start) -> None:
    engine, [zygote] = start(spares=2)
    engine.stop()
    assert zygote.stopped and all(t.stopped for t in zygote.templates)
    everyone = zygote.children + [c for t in zygote.templates for c in t.children]
    wait_for(lambda: all(c.exited.is_set() for c in everyone))
    reply = call(engine, "add")
    assert reply.error == error("anvil.server.RuntimeUnavailableError", "The server is shutting down")["error"]


def test_a_call_goes_to_another_child_when_the_one_it_took_died_before_it_was_sent(start) -> None:
    engine, [zygote] = start(spares=2)
    [template] = zygote.templates
    template.die_unnoticed()
    # Each of these first finds a dead spare or a fork that never happened; none ran the call.
    for _ in range(4):
        reply = call(engine, "add", 1)
        assert reply.ok, reply.error
    assert all(c.calls == [] for c in template.children)


def test_a_call_that_crashes_its_child_is_not_run_again(start) -> None:
    engine, [zygote] = start(spares=2)
    reply = call(engine, "crash")
    assert reply.error is not None and reply.error["type"] == "anvil.server.ExecutionTerminatedError"
    ran = [c for t in zygote.templates for c in t.children if c.calls]
    assert [c.calls for c in ran] == [["crash"]]


def test_launch_starts_the_zygote_and_template_without_waiting_and_start_waits_for_them(app: AppDir) -> None:
    """The host launches the engine before its own imports, so that the zygote's run beside them."""
    ready = threading.Event()
    zygotes: list[FakeForker] = []

    class Starting(FakeForker):
        def wait_ready(self, timeout: float = 60) -> None:
            assert ready.wait(timeout)

    def factory(_settings: Settings) -> FakeForker:
        zygotes.append(Starting())
        return zygotes[-1]

    engine = Engine(app, Settings(app_path=str(app.path), spares=2), forker_factory=factory)
    engine.launch()  # returns while the zygote is still starting
    [zygote] = zygotes
    [template] = zygote.templates  # asked for at once: it imports the app as soon as the zygote can fork
    started = threading.Thread(target=engine.start)
    started.start()
    started.join(0.05)
    assert started.is_alive()  # start waits for the zygote
    ready.set()
    started.join(2)
    try:
        assert not started.is_alive()
        assert zygotes == [zygote] and zygote.templates == [template]  # no second zygote or template
        assert len(template.idle_spares()) == 2
        assert call(engine, "add", 1).ok
    finally:
        engine.stop()
    assert zygote.stopped


def test_a_held_call_leaves_its_spares_replacement_until_the_release(start) -> None:
    """The host holds replacements while it writes a call's response: the fork comes after it."""
    engine, [zygote] = start(spares=3)
    [template] = zygote.templates
    release = engine.hold_replacements()
    other = threading.Thread(target=lambda: call(engine, "add"))  # another thread holds nothing
    other.start()
    other.join(2)
    wait_for(lambda: len(template.idle_spares()) == 3 and len(template.children) == 4)
    served = call(engine, "add").message()["response"]["pid"]
    assert len(template.idle_spares()) == 2  # this thread's call is over, its replacement not yet forked
    [child] = [c for c in template.children if c.pid == served]
    assert child.chan.sock.fileno() != -1  # and its socket still open: the child exits at the release
    release()
    wait_for(lambda: len(template.idle_spares()) == 3)
    assert child.chan.sock.fileno() == -1
    assert call(engine, "add").ok  # released: this thread's calls replace their spare as before
    wait_for(lambda: len(template.idle_spares()) == 3 and len(template.children) == 6)


def test_spares_forked_while_calls_come_slowly_are_told_to_warm_up(start, monkeypatch) -> None:
    engine, [zygote] = start(spares=2)
    [template] = zygote.templates
    first = template.idle_spares()
    for spare in first:  # no call has come yet: nothing for a warm-up to compete with
        wait_for(lambda spare=spare: spare.kinds == [FrameKind.WARM])
    # What counts as back to back is set here, so that how fast this machine is does not matter.
    monkeypatch.setattr(engine_module, "BACK_TO_BACK_S", 0.0)
    assert call(engine, "add").ok  # came slowly: its replacement warms up
    wait_for(lambda: len(template.idle_spares()) == 2)
    [slow] = [c for c in template.idle_spares() if c not in first]
    wait_for(lambda: slow.kinds == [FrameKind.WARM])
    monkeypatch.setattr(engine_module, "BACK_TO_BACK_S", 3600.0)
    assert call(engine, "add").ok  # right behind the last: its replacement does not
    wait_for(lambda: len(template.idle_spares()) == 2)
    [quick] = [c for c in template.idle_spares() if c not in first and c is not slow]
    quick.chan.send({"type": FrameKind.INTERRUPT.value, "id": "probe"})  # behind any WARM sent at its fork
    wait_for(lambda: len(quick.kinds) > 0)
    assert quick.kinds == [FrameKind.INTERRUPT]


def test_persistent_calls_in_flight_together_each_get_their_own_reply(start) -> None:
    """Callers take turns reading the worker's socket: whoever reads delivers the others' replies,
    and hands the reading on when its own has come, in whatever order the replies come."""
    engine, [zygote] = start(persistent=True)
    call(engine, "add")
    [worker] = [c for c in zygote.children if c.mode is ChildMode.PERSISTENT]
    replies: dict[int, Reply] = {}

    def caller(i: int) -> None:
        replies[i] = call(engine, "gate" if i % 2 else "add", i)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    # The "add" calls come back past the gated ones.
    wait_for(lambda: worker.calls.count("gate") == 4 and len(replies) == 4)
    zygote.gate.set()
    for t in threads:
        t.join(5)
    assert {i: r.message()["response"]["args"] for i, r in replies.items()} == {i: [i] for i in range(8)}
    assert call(engine, "add", 9).message()["response"]["args"] == [9]


def test_a_call_sent_last_of_two_at_once_wakes_the_worker(start) -> None:
    """Two calls go to one worker at once; the first to be routed is the last to be sent. Whether
    to wake the worker (all its threads may be busy, none reading) is asked after each send: the
    call sent last must see the other in flight, whose frame the worker may have taken already."""
    engine, [zygote] = start(persistent=True)
    call(engine, "add")
    [worker] = [c for c in zygote.children if c.mode is ChildMode.PERSISTENT]
    events: list[str] = []
    first_in_send, first_may_send = threading.Event(), threading.Event()
    real_send = worker.chan.send

    def send(head: dict[str, Any], payload: bytes = b"", fds: tuple[int, ...] = ()) -> None:
        if head.get("args") == ["first"]:
            first_in_send.set()
            first_may_send.wait(5)
            real_send(head, payload, fds)
            events.append("first sent")
        else:
            real_send(head, payload, fds)

    worker.chan.send = send  # type: ignore[method-assign]
    worker.wake = lambda unless_reading=False: events.append("wake")  # type: ignore[method-assign]
    replies: dict[str, Reply] = {}
    first = threading.Thread(target=lambda: replies.update(first=call(engine, "add", "first")))
    first.start()
    assert first_in_send.wait(5)
    second = threading.Thread(target=lambda: replies.update(second=call(engine, "gate", "second")))
    second.start()
    wait_for(lambda: "gate" in worker.calls)  # the worker runs the second call
    first_may_send.set()
    first.join(5)
    assert "first sent" in events and "wake" in events[events.index("first sent") :], events
    zygote.gate.set()
    second.join(5)
    assert replies["first"].message()["response"]["args"] == ["first"]
    assert replies["second"].message()["response"]["args"] == ["second"]


def test_a_persistent_worker_that_dies_idle_is_replaced_before_the_next_call(start) -> None:
    """Nobody is reading an idle worker's socket: its exit, reported by its forker, is what sets a
    reader on it to see the EOF and replace it, so that the next call does not find it dead."""
    engine, [zygote] = start(persistent=True)
    first = call(engine, "add").message()["response"]["pid"]
    old = next(c for c in zygote.children if c.pid == first)
    old.kill()
    wait_for(lambda: len([c for c in zygote.children if c.mode is ChildMode.PERSISTENT]) == 2)
    reply = call(engine, "add")
    assert reply.ok, reply.error
    assert reply.message()["response"]["pid"] != first


def test_the_reply_of_a_timed_out_call_that_stops_is_read_with_no_caller_left(start) -> None:
    """The call's caller has gone, and no call follows: the reply it sends once interrupted is still
    read, so the worker (and the state it keeps) is not retired as stuck."""
    engine, [zygote] = start(persistent=True, timeout=0.1)
    first = call(engine, "add").message()["response"]["pid"]
    reply = call(engine, "stoppable")
    assert reply.error is not None and reply.error["type"] == "anvil.server.TimeoutError"
    time.sleep(workers_module.INTERRUPT_GRACE_S * 2)  # past the check that retires a stuck worker
    old = next(c for c in zygote.children if c.pid == first)
    assert not old.exited.is_set()
    assert call(engine, "add").message()["response"]["pid"] == first


# -- responses the child writes itself (anvil_dev.engine.direct) ---------------------------------

HEAD = "HTTP/1.1 200 OK\r\nServer: test\r\nDate: Thu, 03 Dec 2026 08:00:00 GMT\r\n"


@pytest.fixture
def client() -> Iterator[tuple[socket.socket, socket.socket]]:
    """The two ends of a stand-in for the client's connection: (the host's, the client's)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    theirs.settimeout(2)
    yield ours, theirs
    ours.close()
    theirs.close()


def offered_call(engine: Engine, ours: socket.socket, command: str, offer: DirectResponse | None = None) -> Reply:
    offer = offer or DirectResponse.offer(ours, HEAD, int(time.time()))
    assert offer is not None
    try:
        return engine.call({"command": command, "args": [1, 2], "kwargs": {}, "objects": []}, Caller(), offer=offer)
    finally:
        offer.close()


def response_to(theirs: socket.socket) -> bytes:
    """One whole response, read by its Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += theirs.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line for line in head.split(b"\r\n") if line.startswith(b"Content-Length:")).split(b":")[1])
    while len(body) < length:
        body += theirs.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_a_call_offered_its_response_writes_it_and_says_so(start, client, persistent) -> None:
    engine, _ = start(persistent=persistent)
    ours, theirs = client
    reply = offered_call(engine, ours, "add")
    assert reply.written and not reply.connection_broken
    head, body = response_to(theirs).split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\nServer: test\r\nDate: ")
    assert b"\r\nContent-Length: %d" % len(reply.body) in head
    assert body == reply.body and json.loads(body)["response"]["args"] == [1, 2]


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_with_no_timeout_a_persistent_worker_leaves_the_response_to_the_host(start, client, persistent) -> None:
    """With no deadline nothing would end a worker's write to a client that stops reading, so a
    persistent worker is not offered the response: a stalled client then holds the host's request
    thread only. A fresh child, held until the response is written either way, still writes it."""
    engine, [zygote] = start(persistent=persistent, timeout=None)
    ours, theirs = client
    reply = offered_call(engine, ours, "add")
    assert reply.ok and not reply.connection_broken
    assert json.loads(reply.body)["response"]["args"] == [1, 2]
    if persistent:
        assert not reply.written
        assert already_received(theirs) == b""  # the host's to write
    else:
        assert reply.written
        assert response_to(theirs).endswith(reply.body)


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_a_reply_the_child_does_not_write_is_left_to_the_host(start, client, persistent) -> None:
    engine, _ = start(persistent=persistent)
    ours, theirs = client
    reply = offered_call(engine, ours, "crash")
    assert reply.error is not None and reply.error["type"] == "anvil.server.ExecutionTerminatedError"
    assert not reply.written and not reply.connection_broken  # the child never took the writing
    assert already_received(theirs) == b""


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_a_child_that_took_the_writing_as_its_time_ran_out_is_waited_for(start, client, persistent) -> None:
    """The deadline passes after the child took the writing: the host waits for its REPLY instead
    of answering the timeout, so the client gets one response, the child's."""
    engine, [zygote] = start(persistent=persistent, timeout=1.0)
    ours, theirs = client
    offer = DirectResponse.offer(ours, HEAD, int(time.time()))
    assert offer is not None
    tried = threading.Event()
    take = offer.take_for_host

    def take_and_tell() -> bool:
        tried.set()
        return take()

    offer.take_for_host = take_and_tell  # type: ignore[method-assign]
    done: list[Reply] = []
    caller = threading.Thread(target=lambda: done.append(offered_call(engine, ours, "write_then_reply_late", offer)))
    caller.start()
    assert tried.wait(5)  # the deadline passed: the host tried to take the claim
    assert not offer.host_has_it and not done  # the child had it: the host waits for its REPLY
    zygote.deadline_passed.set()
    caller.join(5)
    [reply] = done
    assert reply.written and reply.ok
    assert response_to(theirs).endswith(b'{"response":"write_then_reply_late","objects":[],"output":""}')
    assert already_received(theirs) == b""  # and nothing after it


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
@pytest.mark.parametrize("progress", [True, False], ids=["client reading", "client stalled"])
def test_past_the_deadline_the_host_waits_a_grace_at_a_time_while_the_client_takes_the_response(
    start, client, persistent, progress, monkeypatch
) -> None:
    """A slow client: each grace that ends with more of the response acknowledged starts another.
    A stalled one: after one grace the connection is broken instead."""
    monkeypatch.setattr(direct, "WRITE_GRACE_S", 0.05)
    engine, [zygote] = start(persistent=persistent, timeout=0.3)
    ours, theirs = client
    offer = DirectResponse.offer(ours, HEAD, int(time.time()))
    assert offer is not None
    looks: list[int] = []

    def progressed() -> bool:  # what TCP_INFO would say of a client reading slowly, or not at all
        looks.append(1)
        return len(looks) == 1 or progress

    offer.write_progressed = progressed  # type: ignore[method-assign]
    done: list[Reply] = []
    caller = threading.Thread(target=lambda: done.append(offered_call(engine, ours, "write_then_reply_late", offer)))
    caller.start()
    if progress:
        wait_for(lambda: len(looks) >= 4)  # three graces have ended, each with progress
        assert not done
        zygote.deadline_passed.set()  # the write ends and the REPLY comes
    caller.join(5)
    zygote.deadline_passed.set()
    [reply] = done
    if progress:
        assert reply.written and reply.ok and not reply.connection_broken
    else:
        assert len(looks) == 2 and reply.connection_broken and not reply.written


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_a_call_that_finishes_after_the_host_answered_its_timeout_writes_nothing(start, client, persistent) -> None:
    engine, [zygote] = start(persistent=persistent, timeout=0.1)
    ours, theirs = client
    reply = offered_call(engine, ours, "finish_after_deadline")
    assert reply.error is not None and reply.error["type"] == "anvil.server.TimeoutError"
    assert not reply.written and not reply.connection_broken  # the host's to write
    zygote.deadline_passed.set()
    child = next(c for t in [zygote, *zygote.templates] for c in t.children if "finish_after_deadline" in c.calls)
    wait_for(lambda: child.wrote is not None)
    assert child.wrote is False
    assert already_received(theirs) == b""


@pytest.mark.parametrize("persistent", [False, True], ids=["fresh", "persistent"])
def test_a_child_that_dies_after_taking_the_writing_breaks_the_connection(start, client, persistent) -> None:
    engine, _ = start(persistent=persistent)
    ours, theirs = client
    reply = offered_call(engine, ours, "take_and_die")
    assert reply.connection_broken and not reply.written
