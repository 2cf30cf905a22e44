"""The dev console's event bus in-process: what a reconnecting console is replayed, and closing it."""

from __future__ import annotations

import threading

from anvil_dev.host.events import EventBus


def test_event_stream_replays_what_a_reconnecting_console_missed() -> None:
    bus = EventBus(history=3)
    for i in range(5):
        bus.publish("call", {"n": i})
    assert [e.data["n"] for e in bus.history()] == [2, 3, 4]  # only the newest are kept
    last = bus.history()[1]
    # A console that saw event 3 of this server gets only what came after; one that saw an
    # event of a previous server (another boot token) gets everything still remembered.
    assert [e.data["n"] for e in bus.history(bus.parse_last_id(f"{bus.boot}-{last.seq}"))] == [4]
    assert bus.parse_last_id("0123abcd-4") == 0
    chunks = bus.sse(after=last.seq, wait_step=0.05)
    assert next(chunks).startswith("retry:")
    assert f"id: {bus.boot}-{last.seq + 1}\nevent: call\n" in next(chunks)


def test_closing_the_event_bus_ends_waiting_streams_promptly() -> None:
    bus = EventBus()
    got_event = threading.Event()
    ended = threading.Event()

    def consume() -> None:
        for chunk in bus.sse(wait_step=0.1):
            if "event: reload" in chunk:
                got_event.set()  # the stream now waits for the next event
        ended.set()

    threading.Thread(target=consume, daemon=True).start()
    bus.publish("reload", {"file": "server_code/A.py"})
    assert got_event.wait(2)
    bus.close()
    assert ended.wait(2), "an SSE stream kept running after the bus closed"
