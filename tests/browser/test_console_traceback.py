"""A failed call's traceback in the dev console, in a real browser: most recent call last, each app frame with
its function and source line, anvil-dev's frames behind a toggle; the same in the live log."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, write_module

WAIT_MS = 15_000

TRACED = """
import anvil.server


def middle(x):
    return 10 // x


@anvil.server.callable
def outer(x):
    y = middle(x)
    return y
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


def app_frames(box: Any) -> list[str]:
    return [" ".join(t.split()) for t in box.locator(".trace li.frame-app").all_inner_texts()]


def test_a_failed_call_shows_its_traceback_most_recent_call_last(
    app_dir: Path, server_factory: Callable[..., ServerProcess], page: Any
) -> None:
    write_module(app_dir, "Traced", TRACED)
    srv = server_factory(app_dir)
    page.goto(srv.url + "/_/console")
    page.wait_for_selector("#live[data-state=live]")
    card = page.locator(".fn-card[data-name=outer]")
    card.locator(".card-head").click()
    card.locator("input[data-name=x]").fill("0")
    card.locator("button.call").click()
    result = card.locator(".result-error")
    result.locator(".traceback").wait_for()
    expected = [
        "server_code/Traced.py line 11, in outer y = middle(x)",
        "server_code/Traced.py line 6, in middle return 10 // x",
    ]
    assert app_frames(result) == expected
    assert "ZeroDivisionError" in result.locator(".error-line").inner_text()
    internal = result.locator(".trace li.frame-internal")
    assert internal.count() >= 1 and all(not internal.nth(i).is_visible() for i in range(internal.count()))
    result.locator(".frames-toggle").click()
    assert internal.first.is_visible() and "_engine_hooks.py" in internal.first.inner_text()

    logged = page.locator(".log-item[data-kind=call-error]", has_text="outer")
    logged.locator(".traceback").wait_for()
    assert app_frames(logged) == expected
