"""The engine: runs server calls in children of a zygote, and supervises them.

Fresh mode: each call takes a spare child forked from the template of the current generation of
the code (`spawn_spare` keeps `settings.spares` of them ready). Persistent mode: calls go to the
least loaded `PersistentWorker`. The supervision is a handful of verbs, as in gunicorn's arbiter:
`top_up`, `spawn_spare`, `spawn_worker`, `retire`, `reap`, `replace_template`, `replace_zygote`,
`swap_generation` (a reload) and `stop`. Children come from a `Forker`, made by the factory the
engine is given, so the supervision runs in-process against a fake in tests/unit.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from anvil_dev import timeline
from anvil_dev.appdir import AppDir
from anvil_dev.config import Settings
from anvil_dev.engine import direct, fresh, loader, memory
from anvil_dev.engine.direct import DirectResponse
from anvil_dev.engine.forker import Child, Forker, ForkerFactory, ready_template, start_zygote
from anvil_dev.engine.frames import Channel, Frame, encode
from anvil_dev.engine.fresh import Outbound, answer_nested
from anvil_dev.engine.workers import DebugClock, PersistentWorker, TaskRun, call_frame
from anvil_dev.protocol import (
    Caller,
    ChildMode,
    FrameKind,
    Reply,
    terminated_error,
    timeout_error,
    unavailable,
)

log = logging.getLogger("anvil_dev")

# Children a fresh call may find dead before it reached them, beyond the spares, before it fails.
MAX_UNDELIVERED = 3
# A fresh call that arrives sooner than this after the last one ended (or while another runs)
# means calls come back to back: spares forked then skip their warm-up (`spawn_spare`). Measured
# on 2 cores: back to back, 6 ms p50 and 11 ms at most pass between calls (the response, the
# client, the replacement's fork); calls 20 ms apart leave 23 ms; a person clicks slower still.
BACK_TO_BACK_S = 0.015
_WARM_FRAME = encode({"type": FrameKind.WARM.value})  # the same bytes for every spare


class Engine:
    """Runs server calls for one app. Thread-safe; one instance per `anvil-dev serve`."""

    def __init__(
        self,
        app: AppDir,
        settings: Settings,
        outbound: Outbound | None = None,
        forker_factory: ForkerFactory = start_zygote,
    ) -> None:
        self.app = app
        self.settings = settings
        self.persistent = settings.persistent
        self.n_workers = max(1, settings.workers)
        self.timeout = settings.timeout
        # With no deadline (`--timeout 0`, `--debug`) nothing would end a worker's write to a
        # client that stops reading (once the kernel's buffers are full): it would hold one of the
        # worker's threads, and a retired worker, for good. So persistent workers are then not
        # offered the response; the host writes it, and a stalled client holds only its request
        # thread. (A fresh child is held until the response is written either way: its release
        # waits for the host's write.)
        self._offers_responses = not (self.persistent and self.timeout is None)
        self.n_spares = max(1, settings.spares)
        # Where calls this engine has no function for go (the host's dispatcher): uplinks, native handlers.
        self.outbound = outbound
        self.generation = 0
        self._start_forker = forker_factory
        self._lock = threading.Lock()
        # One move to a new generation at a time: a reload's, or an editor's leaving (`replace_workers`).
        self._swap_lock = threading.Lock()
        self._spares: collections.deque[Child] = collections.deque()
        self._call_ids = itertools.count(1)  # unique per engine, which is all a frame's id needs
        # How fresh calls arrive, for the spares' warm-up: in flight now, when the last one ended.
        self._fresh_in_flight = 0
        self._last_fresh_end = 0.0
        self._back_to_back = False
        # Threads whose fresh calls leave their spare's replacement to `hold_replacements`' release,
        # with the children of those calls, closed then.
        self._holding: dict[int, list[Child]] = {}
        self._workers: list[PersistentWorker] = []
        self._retiring: list[PersistentWorker] = []
        self._preloads: list[str] = []
        self._zygote: Forker | None = None
        # The zygote and first template `launch` started, not yet waited for by `start`.
        self._launched: tuple[Forker, Forker | None] | None = None
        # Fresh children fork from the template of the current generation, which has imported the
        # app already; None when the app cannot be forked that way (threads at import time).
        self._template: Forker | None = None
        self._import_on_call = False
        self._description: dict[str, Any] | None = None
        self._stopping = False
        # The host's pdb relay: time a child spends stopped at a breakpoint is not counted against its call.
        self.debugger: DebugClock | None = None
        # `--memory-limit`: running calls, persistent workers and task children are watched.
        self.memory = memory.monitor(settings.memory_limit_mb)

    # -- life cycle -----------------------------------------------------------------------------

    def launch(self) -> None:
        """Start the zygote and ask it for the first template without waiting for either, so that
        their imports (the runtime, the app's modules) overlap whatever the caller does next (the
        host imports Flask and builds its routes); `start` then waits for them."""
        if self._launched is None:
            zygote = self._start_forker(self.settings)
            template = None
            if not self.persistent:
                try:
                    template = zygote.spawn_template(self.generation)
                except OSError:
                    template = None  # start() tries again, and says why it failed
            self._launched = (zygote, template)

    def start(self) -> None:
        """Start the zygote (unless `launch` did) and wait until calls can be served."""
        self.launch()
        assert self._launched is not None
        zygote, requested = self._launched
        self._preloads = loader.third_party_imports(self.app)
        zygote.wait_ready()
        self._zygote = zygote
        template = self._new_template(zygote, self.generation, requested) if not self.persistent else None
        with self._lock:
            self._template = template
            self.top_up()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def stop(self) -> None:
        """Stop every child, the template and the zygote; calls after this get RuntimeUnavailableError."""
        self._stopping = True
        with self._lock:
            workers = self._workers + self._retiring
            self._workers, self._retiring = [], []
            spares, self._spares = list(self._spares), collections.deque()
        for w in workers:
            w.stop()
        for c in spares:
            c.close()
        if self._template is not None:
            self._template.stop()
        if self._zygote is not None:
            self._zygote.stop()
        elif self._launched is not None:  # launched, but the host failed before `start`
            self._launched[0].stop()

    # -- supervision ----------------------------------------------------------------------------

    def top_up(self) -> None:
        """Spares (fresh mode) or workers (persistent mode) back to their number. Caller holds the lock."""
        if self._stopping or self._zygote is None:
            return
        if self.persistent:
            if not self._zygote.alive:
                self.replace_zygote()  # workers outlive it, but new ones come from a live one
            while len(self._workers) < self.n_workers:
                self._workers.append(self.spawn_worker())
        else:
            while len(self._spares) < self.n_spares:
                self.spawn_spare()

    def spawn_spare(self) -> None:
        """Fork one fresh child ahead of its call. Caller holds the lock.

        While calls come slowly (a person clicking), the spare is told to warm up: it runs the
        runtime's call path once on a dummy call, so the pages its call will write are copied
        before the call rather than one fault at a time during it (measured on 2 cores: the call in
        the child 0.75 -> 0.35 ms, paced calls from outside -10%). Back to back, the warm-up's own
        CPU would compete with the calls running (+8% there), so it is skipped."""
        child = self._fresh_child()
        if not self._back_to_back and self._fresh_in_flight == 0:
            try:
                child.chan.send_raw(_WARM_FRAME)
            except OSError:
                pass  # never forked: the call that takes it finds out
        self._spares.append(child)

    def hold_replacements(self) -> Callable[[], None]:
        """Until the returned function is called, fresh calls on this thread leave the fork of their
        spare's replacement, and the end of their child, to it: the host calls it once the response
        has been sent, so that neither the fork nor the child's exit (which the zygote reports)
        competes with writing the response. A call that takes the last spare still replaces it at once."""
        if self.persistent:
            return _nothing  # no spares: nothing to hold, and no lock to take twice more per call
        ident = threading.get_ident()
        with self._lock:
            self._holding[ident] = []

        def release() -> None:
            with self._lock:
                done = self._holding.pop(ident, [])
                self.top_up()
            for child in done:
                child.close()  # a fresh child exits once the host has closed its socket

        return release

    def spawn_worker(self) -> PersistentWorker:
        """Fork one persistent worker of the current generation (it says READY once it has imported the app)."""
        assert self._zygote is not None
        worker = PersistentWorker(self, self._zygote.spawn(ChildMode.PERSISTENT, self.generation))
        if self.memory is not None:
            # Over the limit, the worker and every call on it go (as on Anvil); new calls go to a replacement.
            self.memory.watch(worker.child, before_kill=lambda: self.retire(worker))
        return worker

    def retire(self, worker: PersistentWorker) -> None:
        """New calls go to a replacement; `worker` is killed once its calls in flight have finished."""
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
                self._retiring.append(worker)
            worker.retired = True
            self.top_up()
        worker.kill_when_idle()

    def reap(self, worker: PersistentWorker) -> None:
        """`worker`'s process has ended (killed, crashed, retired): forget it and top up."""
        with self._lock:
            for group in (self._workers, self._retiring):
                if worker in group:
                    group.remove(worker)
            self.top_up()

    def replace_template(self) -> None:
        """Start a template for the current generation, where the last one died."""
        with self._lock:
            zygote, generation = self._zygote, self.generation
        if zygote is None:
            return
        template = self._new_template(zygote, generation)
        with self._lock:
            if self.generation == generation and self._template is None and not self._stopping:
                self._template = template
                return
        if template is not None:
            template.stop()

    def replace_zygote(self) -> None:
        """The zygote died (killed from outside, say): start a new one. Caller holds the lock."""
        log.warning("the zygote process died; starting a new one")
        self._zygote = self._new_zygote()

    def _new_zygote(self) -> Forker:
        zygote = self._start_forker(self.settings)
        zygote.wait_ready()
        return zygote

    def _new_template(self, zygote: Forker, generation: int, requested: Forker | None = None) -> Forker | None:
        template, import_on_call = ready_template(zygote, generation, requested)
        if import_on_call is not None:
            self._import_on_call = import_on_call
        return template

    def _forker(self) -> Forker:
        """Where fresh children come from. Caller holds the lock.

        A template or zygote that died is replaced (the template in the background); meanwhile
        children come from whichever is still there.
        """
        if self._template is not None and not self._template.alive:
            self._template = None
            if not self._stopping:
                threading.Thread(target=self.replace_template, daemon=True).start()
        if self._zygote is not None and not self._zygote.alive and not self._stopping:
            self.replace_zygote()
        forker = self._template or self._zygote
        assert forker is not None
        return forker

    def _fresh_child(self) -> Child:
        """A fresh child of the current generation. Caller holds the lock."""
        forker = self._forker()
        import_on_call = self._import_on_call and self._template is None
        return forker.spawn(ChildMode.FRESH_IMPORT_ON_CALL if import_on_call else ChildMode.FRESH, self.generation)

    def spawn_task_child(self) -> TaskRun:
        """A child of the current code outside the pool, for one background task (RuntimeError when stopping)."""
        with self._lock:
            if self._zygote is None or self._stopping:
                raise RuntimeError("the engine is not running")
            run = TaskRun(self, self._zygote.spawn(ChildMode.PERSISTENT, self.generation))
        if self.memory is not None:
            self.memory.watch(run.child, before_kill=run.over_memory_limit)
        return run

    # -- calls ----------------------------------------------------------------------------------

    def call(
        self, call: Mapping[str, Any], caller: Caller, raw: bytes | None = None, offer: DirectResponse | None = None
    ) -> Reply:
        """Run one call; always returns a Reply (whose body the host sends as it is), never raises.

        `raw` is the call as the client sent it (JSON whose command, args, kwargs and objects are
        `call`'s): it travels as the frame's payload, so the call's data is not encoded again.
        `offer`: the child may write the HTTP response itself (`anvil_dev.engine.direct`); the
        reply then says whether it did (a persistent worker never does when calls have no
        timeout). The caller closes the offer once this returns.
        """
        head = call_frame(call, f"c{next(self._call_ids):x}", caller, with_args=raw is None)
        if offer is not None and not self._offers_responses:
            offer = None  # the host writes it (see __init__)
        if offer is not None:
            head.update(offer.frame_fields())
        payload = raw or b""
        if timeline.ON:
            timeline.host_mark("engine", head["id"])
        if self.persistent:
            reply = self._call_persistent(head, payload, offer)
        else:
            reply = self._call_fresh(head, payload, offer)
        if timeline.ON:
            timeline.host_mark("answered")
        return direct.settle(offer, reply)

    def _call_fresh(self, head: dict[str, Any], payload: bytes = b"", offer: DirectResponse | None = None) -> Reply:
        started = time.monotonic()
        top_up_after = False
        with self._lock:
            self._back_to_back = self._fresh_in_flight > 0 or started - self._last_fresh_end < BACK_TO_BACK_S
            self._fresh_in_flight += 1
        try:
            # A child that died before it could have read the call (never forked: its template died
            # first; or gone before we sent) did not run it: the call goes to another child.
            for _ in range(self.n_spares + MAX_UNDELIVERED):
                with self._lock:
                    if self._stopping or self._zygote is None:
                        return Reply.from_message(unavailable("The server is shutting down"))
                    child = self._spares.popleft() if self._spares else self._fresh_child()
                    # Replace the spare now only if none is left; otherwise after this call (or after
                    # its response, `hold_replacements`), so that the fork of the next child does not
                    # compete with this call for the CPU.
                    held = self._holding.get(threading.get_ident())
                    if not self._spares:
                        self.top_up()
                    elif held is None:
                        top_up_after = True  # else the holder's release tops up
                reply = fresh.run_on_child(child, head, payload, started, self, keep_open=held is not None, offer=offer)
                if reply is not None:
                    if held is not None:
                        held.append(child)  # its socket is closed, and so the child ends, at the release
                    return reply
                child.close()
            return Reply.from_message(terminated_error(None))
        finally:
            with self._lock:
                self._fresh_in_flight -= 1
                self._last_fresh_end = time.monotonic()
                if top_up_after:
                    self.top_up()

    def _call_persistent(
        self, head: dict[str, Any], payload: bytes = b"", offer: DirectResponse | None = None
    ) -> Reply:
        with self._lock:
            self.top_up()
            live = [w for w in self._workers if not w.dead and not w.retired]
            if not live:
                return Reply.from_message(unavailable("No server worker is available"))
            worker = min(live, key=lambda w: w.load)
            # Claimed while the lock is held: a reload that retires this worker now must let
            # this call finish on it rather than kill it before the call has even been sent.
            worker.claim()
        try:
            # A worker that is still importing the app (a replacement, say) counts against the call's time.
            started = time.monotonic()
            if not worker.ready.wait(self.timeout or 600):
                return Reply.from_message(timeout_error())
            if worker.dead:
                return Reply.from_message(terminated_error(worker.child.exit_code))
            if worker.import_error is not None:
                # A worker whose modules failed to import answers once and is replaced, as on Anvil.
                self.retire(worker)
                return Reply.from_message({"error": worker.import_error, "objects": []})
            remaining = None if self.timeout is None else max(0.001, self.timeout - (time.monotonic() - started))
            return worker.call(head, remaining, self.debugger, payload, offer)
        finally:
            worker.unclaim()

    def answer_nested(self, chan: Channel, frame: Frame) -> None:
        """A child's nested call that it cannot answer itself (an uplink function, say)."""
        answer_nested(chan, frame, self.outbound)

    # -- reload ---------------------------------------------------------------------------------

    def reload(self, paths: list[str] | None = None) -> None:
        """New code: the next call sees it. A new zygote starts when what it holds changed: the
        third-party imports, or anvil.yaml (which it has parsed for its children)."""
        preloads = loader.third_party_imports(self.app)
        yaml_changed = any(os.path.basename(p) == "anvil.yaml" for p in paths or [])
        new_zygote = None
        if preloads != self._preloads or yaml_changed:
            new_zygote = self._new_zygote()
            self._preloads = preloads
        self.swap_generation(new_zygote)

    def replace_workers(self) -> None:
        """New persistent workers for the same code, all of them, the old ones drained as a reload
        drains them. `serve --debug` asks for it when the editor has gone, so that the next editor
        debugs processes that never had a debugger: debugpy set up a second time in one process
        once stopped a call in `attach.debug_this_call` rather than at its breakpoint."""
        with self._lock:
            started = bool(self._workers)  # not before `start` has made the first ones
        if self.persistent and started and not self._stopping:
            self.swap_generation()

    def swap_generation(self, new_zygote: Forker | None = None) -> None:
        """Move every call to the next generation of the code: a new template and spares (the idle
        spares close), or new persistent workers pre-warmed while the old ones drain."""
        with self._swap_lock:
            self._swap_generation(new_zygote)

    def _swap_generation(self, new_zygote: Forker | None) -> None:
        assert self._zygote is not None
        if self._stopping:
            if new_zygote is not None:
                new_zygote.stop()  # a reload's, made as serve stopped
            return
        zygote = new_zygote or self._zygote
        new_template = None if self.persistent else self._new_template(zygote, self.generation + 1)
        with self._lock:
            self.generation += 1
            self._description = None
            old_zygote = None
            if new_zygote is not None:
                old_zygote, self._zygote = self._zygote, new_zygote
            old_template, self._template = self._template, new_template
            old_spares, self._spares = list(self._spares), collections.deque()
            old_workers = list(self._workers)
            if not self.persistent:
                self.top_up()
        for c in old_spares:
            c.close()  # an idle spare exits when its socket closes
        if self.persistent:
            fresh = [self.spawn_worker() for _ in range(self.n_workers)]
            for w in fresh:
                w.ready.wait(30)
            with self._lock:
                stopped = self._stopping  # `stop` came while they started: they go too
                if not stopped:
                    self._workers = [w for w in self._workers if w not in old_workers] + fresh
                    self._retiring.extend(old_workers)
                    for w in old_workers:
                        w.retired = True
            if stopped:
                for w in fresh:
                    w.stop()
            for w in old_workers:
                w.kill_when_idle()
        if old_template is not None:
            old_template.retire()  # it exits once the children it forked have
        if old_zygote is not None:
            old_zygote.retire()

    # -- describe -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The registered functions and any import error, from a child that imports the current code.

        Cached per generation: a description that a reload overtook is returned to its caller but
        never cached, and the next caller gets one of the new code.
        """
        for _ in range(3):
            with self._lock:
                if self._description is not None:
                    return self._description
                generation = self.generation
                child = (self._template or self._zygote or self._forker()).spawn(ChildMode.DESCRIBE, generation)
            desc = fresh.read_description(child)
            with self._lock:
                if self.generation == generation:
                    self._description = desc
                    return desc
        return desc


def _nothing() -> None:
    pass
