"""The recent calls of the console's log, kept so that any of them can be run again after an edit.

The Dispatcher records each call it logs (`CallRing.record`): a copy of the request message (command,
args, kwargs, objects) and of its Caller, under the id the console shows on the log entry. `run_again`
sends that message through the Dispatcher again, so a replay is logged, checked and run exactly as
the original was, against the code and data as they are now.

What a replay cannot reproduce, and says so (`Replayed.notes`, or a `ReplayRefused`):
- a login that rotated the session: a login moves its caller to a new session id, so the replay runs
  in the session the caller has now (it starts logged in, where the original may not have);
- a replay that logs in moves that session again, and the client that made the original call loses it;
- media that expired: media arguments are files in the store, deleted a day after their last use;
- arguments too large to keep (over MAX_ENTRY_BYTES), and calls from before the server started.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from anvil_dev.protocol import Caller, Message, Reply
from anvil_dev.services.mediastore import MediaStore

if TYPE_CHECKING:
    from anvil_dev.host.dispatch import Dispatcher

RING_SIZE = 200  # as many calls as the event bus keeps events, so every call a console can show
MAX_ENTRY_BYTES = 1 << 20  # a call's arguments, roughly as JSON; bigger ones are logged but not kept
MAX_RESULT_BYTES = 64 << 10  # the original's reply, kept to show beside a replay's
MAX_TOTAL_BYTES = 32 << 20
_MOVES_KEPT = 1000


_CALL_KEYS = ("command", "args", "kwargs", "objects")


class _TooBig(Exception):
    pass


@dataclass
class Recorded:
    """One logged call, as the console's log entry `id` names it."""

    id: int
    command: str
    message: Message | None  # None: the arguments were too large to keep, or are kept as `raw`
    caller: Caller
    scoped: bool
    time: float
    replay_of: int | None = None
    size: int = 0
    done: bool = False
    ok: bool | None = None
    user: str | None = None  # who the call ran as (the reply says)
    result: bytes | None = None  # the reply body, when small enough to keep
    result_size: int = 0
    kept: bool = True  # still in the ring (its bytes count against the ring's budget)
    error: dict[str, Any] | None = None  # Anvil's error, as the caller got it
    frames: list[dict[str, Any]] | None = None  # the error's traceback (anvil_dev.tracebacks), host-only
    # The call's JSON exactly as the client sent it, kept instead of a copy of `message` (bytes do
    # not change, and copying costs every call); parsed only when the call is replayed.
    raw: bytes | None = None

    @property
    def replayable(self) -> bool:
        return self.message is not None or self.raw is not None

    def call_message(self) -> Message | None:
        """The call as it was made (command, args, kwargs, objects); None if too large to keep."""
        if self.message is None and self.raw is not None:
            msg = json.loads(self.raw)
            self.message = {k: msg[k] for k in _CALL_KEYS if k in msg}
            self.raw = None
        return self.message

    def summary(self) -> dict[str, Any]:
        """What the console's and the CLI's listings show of it."""
        return {
            "id": self.id,
            "command": self.command,
            "time": self.time,
            "replay_of": self.replay_of,
            "client_type": self.caller.via or self.caller.client_type,
            "user": self.user or self.caller.user_email_override,
            "ok": self.ok,
            "replayable": self.replayable,
        }

    def failure(self) -> dict[str, Any]:
        """How the call failed, for `anvil-dev call` and the console: the error and its frames."""
        return {"id": self.id, "command": self.command, "ok": self.ok, "error": self.error, "frames": self.frames}


@dataclass
class Replayed:
    """A replay's outcome: its own log id, the reply, and what it could not reproduce."""

    id: int
    original: Recorded
    reply: Reply
    notes: list[str] = field(default_factory=list)


class ReplayRefused(Exception):
    """A call that cannot be replayed: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class CallRing:
    """The last `size` logged calls (and at most `max_bytes` of their arguments), safe from any thread."""

    def __init__(
        self, size: int = RING_SIZE, max_bytes: int = MAX_TOTAL_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES
    ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: deque[Recorded] = deque()
        self._bytes = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # Session id -> the id a login moved it to, so a replay finds where its caller is now.
        self._moves: OrderedDict[str, str] = OrderedDict()

    def record(
        self,
        msg: Message,
        caller: Caller,
        scoped: bool = False,
        replay_of: int | None = None,
        raw: bytes | None = None,
    ) -> Recorded:
        """Keep a copy of a call before it runs (handlers may change the message they are given).
        `raw` is the JSON `msg` was parsed from, when it was: that is kept, and parsed only for a replay."""
        budget = min(self.max_entry_bytes, self.max_bytes)
        message: Message | None = None
        if raw is not None:
            size = len(raw)
            if size > budget:
                raw, size = None, 0
        else:
            try:
                message, size = _copy({k: msg[k] for k in _CALL_KEYS if k in msg}, budget)
            except (_TooBig, RecursionError):
                message, size = None, 0
        entry = Recorded(
            id=0,
            command=str(msg.get("command")),
            message=message,
            scoped=scoped,
            time=time.time(),
            caller=_copy_caller(caller),
            replay_of=replay_of,
            size=size,
            raw=raw,
        )
        with self._lock:
            entry.id = next(self._ids)
            self._entries.append(entry)
            self._bytes += size
            self._trim()
        return entry

    def finish(self, entry: Recorded, reply: Reply) -> None:
        """Note how the call ended: ok or not, who it ran as, its result (when small), a session it moved."""
        keep = reply.body if len(reply.body) <= MAX_RESULT_BYTES else None
        with self._lock:
            entry.done, entry.ok, entry.user = True, reply.ok, reply.user
            entry.error, entry.frames = dict(reply.error) if reply.error else None, reply.frames
            entry.result, entry.result_size = keep, len(reply.body)
            if keep is not None and entry.kept:
                self._bytes += len(keep)
            if reply.session_id and entry.caller.session_id:
                self._moves[entry.caller.session_id] = reply.session_id
                while len(self._moves) > _MOVES_KEPT:
                    self._moves.popitem(last=False)
            self._trim()

    def _trim(self) -> None:
        while self._entries and (len(self._entries) > self.size or self._bytes > self.max_bytes):
            old = self._entries.popleft()
            old.kept = False
            self._bytes -= old.size + len(old.result or b"")

    def get(self, call_id: int) -> Recorded | None:
        with self._lock:
            return next((e for e in self._entries if e.id == call_id), None)

    def last(self, command: str) -> Recorded | None:
        """The newest call of `command` (a replay of it counts: it has the same arguments)."""
        with self._lock:
            return next((e for e in reversed(self._entries) if e.command == command), None)

    def recent(self, limit: int = RING_SIZE) -> list[Recorded]:
        """The newest calls first."""
        with self._lock:
            return list(itertools.islice(reversed(self._entries), limit))

    def session_now(self, session_id: str | None) -> str | None:
        """Where the caller of `session_id` is now, after the logins that moved it (or None if none did)."""
        with self._lock:
            moved = None
            seen = set()
            while session_id is not None and session_id in self._moves and session_id not in seen:
                seen.add(session_id)
                session_id = moved = self._moves[session_id]
            return moved

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def find(ring: CallRing, call_id: int | None = None, last: str | None = None) -> Recorded:
    """The recorded call by id, or the newest call of a name; ReplayRefused saying why there is none."""
    if call_id is not None:
        entry = ring.get(call_id)
        if entry is None:
            raise ReplayRefused(
                404,
                f"No call #{call_id} in the server's recent calls: it keeps the last "
                f"{ring.size} calls since it started (the console's log shows their ids)",
            )
        return entry
    if last:
        entry = ring.last(last)
        if entry is None:
            raise ReplayRefused(
                404,
                f'No call of "{last}" in the server\'s recent calls: make the call once '
                "(it keeps the last calls since the server started), then replay it",
            )
        return entry
    raise ReplayRefused(400, "Say which call to replay: a call id (--replay ID) or a function name (--last NAME)")


def run_again(dispatcher: Dispatcher, entry: Recorded, store: MediaStore) -> Replayed:
    """Run a recorded call again through the Dispatcher, as the same caller; refuses what cannot be rerun."""
    recorded = entry.call_message()
    if recorded is None:
        raise ReplayRefused(
            413,
            f"Call #{entry.id} ({entry.command}) had arguments over "
            f"{dispatcher.recent.max_entry_bytes >> 20} MiB, too large to keep for replay: pass "
            "large data as Media (media are kept as files, not in memory)",
        )
    for obj in recorded.get("objects") or []:
        if isinstance(obj, dict) and obj.get("type") == ["DataMedia"]:
            media_id = str(obj.get("id"))
            if not store.exists(media_id):
                where = "".join(f"[{p!r}]" for p in obj.get("path", [])[1:])
                raise ReplayRefused(
                    410,
                    f"Call #{entry.id} ({entry.command}) passed a media ("
                    f"{obj.get('name') or obj.get('mime-type')}) at {obj.get('path', ['?'])[0]}"
                    f"{where} that is no longer in the media store: media files are deleted a day "
                    "after their last use, so make the call again instead",
                )
            with contextlib.suppress(OSError):
                os.utime(store.path(media_id))  # used again: the sweep keeps it another day
    notes = []
    caller = _copy_caller(entry.caller)
    moved = dispatcher.recent.session_now(caller.session_id)
    if moved is not None:
        caller.session_id = moved
        notes.append(
            f"A login since call #{entry.id} moved its caller to a new session (each login gets a new "
            "session id); the replay runs in that session, so it sees the login as it is now"
        )
    message = {**recorded, "objects": [dict(o) for o in recorded.get("objects") or []]}
    reply, new = dispatcher.call_recorded(message, caller, scoped=entry.scoped, replay_of=entry.id)
    if entry.done and (entry.user or None) != (reply.user or None):
        notes.append(
            f"Call #{entry.id} ran as {entry.user or 'nobody logged in'}; the replay ran as "
            f"{reply.user or 'nobody logged in'} (the session's login has changed since)"
        )
    if reply.session_id:
        notes.append(
            "The replay logged in, which moved the session to a new id: the client that made call "
            f"#{entry.id} no longer has that session and starts a new one on its next call"
        )
    return Replayed(id=new.id if new is not None else 0, original=entry, reply=reply, notes=notes)


def _copy_caller(caller: Caller) -> Caller:
    return Caller(
        client_type=caller.client_type,
        ip=caller.ip,
        session_id=caller.session_id,
        trusted=caller.trusted,
        call_stack=[dict(f) for f in caller.call_stack],
        user_email_override=caller.user_email_override,
        background_task_id=caller.background_task_id,
        via=caller.via,
    )


def _copy(value: Any, budget: int) -> tuple[Any, int]:
    """A copy of JSON-like data and its rough size as JSON; _TooBig past `budget` bytes."""
    used = 0

    def walk(v: Any) -> Any:
        nonlocal used
        if isinstance(v, str):
            used += len(v) + 2
        elif isinstance(v, dict):
            used += 2
            out = {}
            for k, item in v.items():
                used += len(str(k)) + 4
                out[k] = walk(item)
            v = out
        elif isinstance(v, (list, tuple)):
            used += 2
            v = [walk(item) for item in v]
        else:
            used += 8
        if used > budget:
            raise _TooBig
        return v

    return walk(value), used
