"""An in-process event bus: the host publishes what happens, the dev console streams it.

Publishing never blocks on subscribers: an event is appended to a bounded history and waiting
readers are woken. Each subscriber reads from that history by sequence number, so a slow or
gone browser costs nothing but the history slot it has not read yet (the oldest events are
simply dropped for it). Streams wait in bounded steps so they end soon after `close()` or a
server stop, and never hold shutdown up.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HISTORY = 200
KEEPALIVE_S = 15.0
WAIT_STEP_S = 1.0


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    data: dict[str, Any]
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "time": self.time, "data": self.data}


class EventBus:
    """Thread-safe publish/subscribe with a replayable history of the last `history` events."""

    def __init__(self, history: int = HISTORY) -> None:
        # The boot token tells a reconnecting browser whether its Last-Event-ID belongs to
        # this bus; after a server restart, sequence numbers start again from 1.
        self.boot = secrets.token_hex(4)
        self._events: deque[Event] = deque(maxlen=history)
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._closed = False

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        """Record an event and wake subscribers; cheap, and safe from any thread."""
        with self._cond:
            event = Event(next(self._seq), kind, dict(data or {}), time.time())
            self._events.append(event)
            self._cond.notify_all()
        return event

    def history(self, after: int = 0) -> list[Event]:
        """The remembered events with a sequence number above `after`, oldest first."""
        with self._cond:
            return [e for e in self._events if e.seq > after]

    def close(self) -> None:
        """End every stream (for server shutdown); later subscribers end at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def subscribe(
        self, after: int = 0, wait_step: float = WAIT_STEP_S, keepalive: float = KEEPALIVE_S
    ) -> Iterator[Event | None]:
        """Yield events newer than `after` as they come, and None every `keepalive` seconds of quiet.

        The None lets a streaming response write something, which is how a disconnected client
        is noticed. The iterator ends when the bus is closed.
        """
        last = after
        quiet_since = time.monotonic()
        while not self._closed:
            with self._cond:
                pending = [e for e in self._events if e.seq > last]
                if not pending and not self._closed:
                    self._cond.wait(wait_step)
                    pending = [e for e in self._events if e.seq > last]
            if pending:
                last = pending[-1].seq
                quiet_since = time.monotonic()
                yield from pending
            elif time.monotonic() - quiet_since >= keepalive:
                quiet_since = time.monotonic()
                yield None

    def parse_last_id(self, value: str | None) -> int:
        """The sequence number in an SSE Last-Event-ID of this bus ("boot-seq"), else 0 (replay all)."""
        if not value or "-" not in value:
            return 0
        boot, _, seq = value.partition("-")
        if boot != self.boot or not seq.isdigit():
            return 0
        return int(seq)

    def sse(self, after: int = 0, **kwargs: Any) -> Iterator[str]:
        """The subscription as text/event-stream chunks (`event:` is the kind, `data:` JSON)."""
        # Tell the browser to reconnect quickly after a server restart.
        yield "retry: 1000\n\n"
        for event in self.subscribe(after, **kwargs):
            if event is None:
                yield ": keepalive\n\n"
                continue
            payload = json.dumps(event.to_json(), default=str, separators=(",", ":"))
            yield f"id: {self.boot}-{event.seq}\nevent: {event.kind}\ndata: {payload}\n\n"
