"""The loading spinner of client Python's server calls is painted while the call blocks the page
(the call is a synchronous request): it is drawn by a sandboxed frame in a renderer process of its
own, which the page tells "show" over a MessagePort before the request goes out."""

from __future__ import annotations

import base64
import re
import struct
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, write_module

READY_MS = 90_000

SERVER = """
import time
import anvil.server

@anvil.server.callable
def slow(seconds):
    time.sleep(seconds)
    return "slept %s" % seconds
"""

TEMPLATE = """
container: {type: ColumnPanel}
components:
- {type: Spacer, properties: {height: 80}, layout_properties: {grid_position: 'TOP,T'}}
- {type: Button, name: call_button, properties: {text: Call}, event_bindings: {click: call_click},
   layout_properties: {grid_position: 'A,B'}}
- {type: Button, name: quiet_button, properties: {text: Quiet}, event_bindings: {click: quiet_click},
   layout_properties: {grid_position: 'A,C'}}
- {type: Button, name: scoped_button, properties: {text: Scoped}, event_bindings: {click: scoped_click},
   layout_properties: {grid_position: 'A,D'}}
- {type: Label, name: result, properties: {text: ''}, layout_properties: {grid_position: 'B,E'}}
"""

FORM = """
from ._anvil_designer import SlowTemplate
import anvil.server


class Slow(SlowTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    self.n = 0

  def _done(self, how, answer):
    self.n += 1
    self.result.text = "%s %d: %s" % (how, self.n, answer)

  def call_click(self, **event_args):
    self._done("call", anvil.server.call('slow', 1.0))

  def quiet_click(self, **event_args):
    self._done("call_s", anvil.server.call_s('slow', 1.0))

  def scoped_click(self, **event_args):
    with anvil.server.no_loading_indicator:
      self._done("scoped", anvil.server.call('slow', 1.0))
"""


def _write(app: Path, rel: str, text: str) -> None:
    path = app / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def slow_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    write_module(app_dir, "Slow", SERVER)
    _write(app_dir, "client_code/Slow/form_template.yaml", TEMPLATE)
    _write(app_dir, "client_code/Slow/__init__.py", FORM)
    cfg = (app_dir / "anvil.yaml").read_text().replace("startup_form: Form1", "startup_form: Slow")
    (app_dir / "anvil.yaml").write_text(cfg)
    return server_factory(app_dir)


def _png_pixels(png: bytes) -> tuple[int, int, list[bytearray], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit RGB/RGBA PNG, as Chromium's screencast sends."""
    pos, idat, width, height, bpp = 8, b"", 0, 0, 3
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, body = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, _depth, colour = struct.unpack(">IIBB", body[:10])
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows = zlib.decompress(idat), width * bpp, []
    prev = bytearray(stride)
    for y in range(height):
        kind_, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind_ == 1:
                line[i] = (line[i] + a) & 255
            elif kind_ == 2:
                line[i] = (line[i] + b) & 255
            elif kind_ == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind_ == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return width, height, rows, bpp


def _spinner_pixels(png: bytes) -> int:
    """How many pixels of the spinner's place (top centre, 44 px square) are the spinner's blue."""
    width, _height, rows, bpp = _png_pixels(png)
    left = width // 2 - 22
    count = 0
    for y in range(8, 52):
        for x in range(left, left + 44):
            r, _g, b = rows[y][x * bpp : x * bpp + 3]
            count += b - r > 25
    return count


def _click_later(page: Any, text: str) -> None:
    """Click a button from a timer, so this returns while the handler's call blocks the page."""
    page.evaluate(
        """(text) => setTimeout(() => [...document.querySelectorAll('button')]
                                   .find((b) => b.textContent.includes(text)).click(), 0)""",
        text,
    )


def test_the_spinner_paints_during_a_blocking_call_but_not_for_call_s(slow_server: ServerProcess, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 480, "height": 320})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(slow_server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)
    page.wait_for_selector("iframe#anvil-spinner", state="attached")
    frame = page.frame(url=re.compile(r"/_/client/spinner\.html$"))
    assert frame is not None
    frame.wait_for_function("window.anvilSpinner && window.anvilSpinner.connected === true")
    # The spinner's frame runs apart from the page: Chromium gave it a process of its own.
    assert frame.evaluate("window.origin") == "null"

    cdp = context.new_cdp_session(page)
    shots: list[tuple[float, bytes]] = []

    def on_frame(ev: dict[str, Any]) -> None:
        shots.append((ev["metadata"]["timestamp"], base64.b64decode(ev["data"])))
        cdp.send("Page.screencastFrameAck", {"sessionId": ev["sessionId"]})

    # Chromium's screencast: what the screen shows, frame by frame, with each frame's time.
    cdp.on("Page.screencastFrame", on_frame)
    cdp.send("Page.startScreencast", {"format": "png", "everyNthFrame": 1})

    _click_later(page, "Call")
    # While the page is blocked in the call (the frame has not been told "hide"), the frame shows
    # the spinner and its renderer keeps drawing frames with it.
    frame.wait_for_function("window.anvilSpinner.visible && window.anvilSpinner.frames >= 3")
    assert frame.evaluate("getComputedStyle(document.getElementById('spinner')).display") != "none"
    page.locator(".anvil-label", has_text="call 1: slept 1").wait_for()
    frame.wait_for_function("!window.anvilSpinner.visible")
    assert frame.evaluate("window.anvilSpinner.shows") == 1
    (_, shown_at), (_, hidden_at) = frame.evaluate("window.anvilSpinner.log")
    # The screen showed the spinner between "show" and "hide", while the page was blocked.
    during = [_spinner_pixels(png) for at, png in shots if shown_at + 0.15 < at < hidden_at]
    before = [_spinner_pixels(png) for at, png in shots if at < shown_at]
    assert during and max(during) > 50, (during, before)
    assert all(n == 0 for n in before)

    for how, button in (("call_s", "Quiet"), ("scoped", "Scoped")):
        first = len(shots)
        _click_later(page, button)
        page.locator(".anvil-label", has_text=f"{how} ").wait_for()
        # The frame was never told to show it: no spinner for call_s or inside no_loading_indicator.
        assert frame.evaluate("[window.anvilSpinner.shows, window.anvilSpinner.visible]") == [1, False]
        assert all(_spinner_pixels(png) == 0 for _, png in shots[first:])
    assert page.locator(".anvil-label", has_text="scoped 3: slept 1").count() == 1
    cdp.send("Page.stopScreencast")
    context.close()
