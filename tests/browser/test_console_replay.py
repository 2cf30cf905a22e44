"""Replay in the dev console, in a real browser: a call is logged with its id, the function is edited, and
the entry's Replay button shows the new result beside the original one; the replay is logged as such."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from helpers import ServerProcess, write_module

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WAIT_MS = 15_000

PRICES = """
import anvil.server

@anvil.server.callable
def price(item, quantity=1):
    return {"item": item, "total": 3 * quantity}
"""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_replay_button_shows_the_new_result_beside_the_original(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    write_module(app_dir, "Prices", PRICES)
    srv = server_factory(app_dir)
    # A call made elsewhere (the Python client) before the console is even open: the log's history has it.
    assert srv.client().call("price", "pear", quantity=2) == {"item": "pear", "total": 6}
    page.goto(srv.url + "/_/console")
    page.wait_for_selector("#live[data-state=live]")
    entry = page.wait_for_selector(".log-item[data-kind=call]:has(.log-fn:text-is('price'))")
    call_id = entry.get_attribute("data-call-id")
    assert call_id and entry.query_selector(".log-id").inner_text() == f"#{call_id}"

    mark = srv.mark()
    write_module(app_dir, "Prices", PRICES.replace("3 * quantity", "5 * quantity"))
    srv.wait_for_output("reloaded server_code/Prices.py", after=mark)

    entry.query_selector("button.replay-btn").click()
    grid = page.wait_for_selector(f".log-item[data-call-id='{call_id}'] .replay-grid")
    original, replay = grid.query_selector_all(".replay-col")
    assert original.query_selector(".section-label").inner_text().lower() == f"original #{call_id}"
    assert "'total': 6" in original.query_selector(".value").inner_text()
    replay_label = replay.query_selector(".section-label").inner_text()
    assert replay_label.lower().startswith("replay #")
    assert "'total': 10" in replay.query_selector(".value").inner_text()
    assert "'item': 'pear'" in replay.query_selector(".value").inner_text()  # the same arguments
    holder = page.query_selector(f".log-item[data-call-id='{call_id}'] .replay")
    assert holder.inner_text().strip().endswith("}"), holder.inner_text()  # nothing below the results
    assert holder.query_selector(".replay-notes") is None  # same session, same user: nothing to warn about
    # The replay has its own log entry, marked as a replay of the original.
    replay_id = replay_label.split("#")[1]
    logged = page.wait_for_selector(f".log-item[data-call-id='{replay_id}']")
    assert logged.query_selector(".tag-replay").inner_text() == f"replay of #{call_id}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-replay.png"), animations="disabled")


def test_replay_that_cannot_run_says_why_in_the_entry(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    srv = server_factory(app_dir)
    page.goto(srv.url + "/_/console")
    page.wait_for_selector("#live[data-state=live]")
    with requests.post(
        srv.url + "/_/call",
        files={
            "json": (
                None,
                '{"command": "echo", "args": [null], "objects": [{"path": ["args", 0], '
                '"type": ["DataMedia"], "id": "p0", "mime-type": "text/plain", "name": "note.txt"}]}',
            ),
            "p0": ("note.txt", b"hello", "text/plain"),
        },
    ) as resp:
        assert resp.status_code == 200
    entry = page.wait_for_selector(".log-item[data-kind=call]:has(.log-fn:text-is('echo'))")
    for media in (app_dir / ".anvil-dev" / "media").iterdir():
        media.unlink()  # what the sweep does to media unused for a day
    entry.query_selector("button.replay-btn").click()
    error = page.wait_for_selector(".log-item[data-kind=call] .replay-error")
    text = error.inner_text()
    assert "note.txt" in text and "no longer in the media store" in text
