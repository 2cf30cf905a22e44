"""Client code in the browser: the newer form-template layout, a dependency's Form, Media uploaded
from a FileLoader to a server function, and `anvil.media.download` of a server's Media.

Playwright drives Debian's chromium against a real `anvil-dev serve`; one browser for the module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, write_module

WAIT_MS = 20_000
READY_MS = 90_000  # a first load compiles the Python modules; under a loaded machine that is slow


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    yield pg
    context.close()


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


FRAME = """
container: {type: ColumnPanel}
components:
- name: frame_title
  type: Label
  properties: {text: The frame}
- name: content_panel
  type: ColumnPanel
slots:
  body:
    target: {type: container, name: content_panel}
    index: 0
"""

FORM1 = """
layout:
  type: form:Frame
components_by_slot:
  body:
  - name: hello
    type: Label
    properties: {text: inside the slot}
  - name: badge
    type: form:dep_wid1:Badge
  - name: loader
    type: FileLoader
    event_bindings: {change: loader_change}
  - name: get_file
    type: Button
    properties: {text: Get file}
    event_bindings: {click: get_file_click}
  - name: result
    type: Label
"""

FORM1_PY = """
from ._anvil_designer import Form1Template
import anvil.media
import anvil.server


class Form1(Form1Template):
    def __init__(self, **properties):
        self.init_components(**properties)

    def loader_change(self, file, **event_args):
        self.result.text = anvil.server.call("size_of", file)

    def get_file_click(self, **event_args):
        anvil.media.download(anvil.server.call("make_file"))
"""

SERVER = """
import anvil
import anvil.server


@anvil.server.callable
def size_of(media):
    return "%s %d bytes %s: %s" % (media.name, len(media.get_bytes()), media.content_type,
                                   media.get_bytes().decode())


@anvil.server.callable
def make_file():
    return anvil.BlobMedia("text/plain", b"hello from the server", name="greeting.txt")
"""

DEPENDENCY = """
dependencies:
- app_id: wid1
  version: {dev: true}
  resolution_hints: {app_id: wid1, name: Widgets, package_name: Widgets}
"""


@pytest.fixture
def media_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    _write(app_dir, "client_code/Frame/form_template.yaml", FRAME)
    _write(
        app_dir,
        "client_code/Frame/__init__.py",
        """
        from ._anvil_designer import FrameTemplate


        class Frame(FrameTemplate):
            def __init__(self, **properties):
                self.init_components(**properties)
        """,
    )
    _write(app_dir, "client_code/Form1/form_template.yaml", FORM1)
    _write(app_dir, "client_code/Form1/__init__.py", FORM1_PY)
    write_module(app_dir, "Files", SERVER)
    cfg = app_dir / "anvil.yaml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + DEPENDENCY, encoding="utf-8")
    dep = app_dir.parent / "Widgets"
    _write(dep, "anvil.yaml", "name: Widgets\npackage_name: Widgets\n")
    _write(
        dep,
        "client_code/Badge/form_template.yaml",
        """
        container: {type: FlowPanel}
        components:
        - name: badge_label
          type: Label
          properties: {text: a badge from Widgets}
        """,
    )
    _write(
        dep,
        "client_code/Badge/__init__.py",
        """
        from ._anvil_designer import BadgeTemplate


        class Badge(BadgeTemplate):
            def __init__(self, **properties):
                self.init_components(**properties)
                self.badge_label.text += " (built)"
        """,
    )
    return server_factory(app_dir)


def open_app(page: Any, server: ServerProcess) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)


def test_the_newer_layout_puts_components_in_the_layout_forms_slot(media_server: ServerProcess, page: Any) -> None:
    open_app(page, media_server)
    frame = page.locator(".anvil-form[data-form=Frame]")
    frame.locator(".anvil-label", has_text="The frame").wait_for()
    # The slot's target is the frame's content panel: the Label is inside it, after the title.
    assert frame.locator(".anvil-label", has_text="inside the slot").count() == 1


def test_a_dependencys_form_is_built_from_its_own_client_code(media_server: ServerProcess, page: Any) -> None:
    open_app(page, media_server)
    page.locator(".anvil-label", has_text="a badge from Widgets (built)").wait_for()


def test_a_file_loaders_media_reaches_a_server_function(media_server: ServerProcess, page: Any, tmp_path: Path) -> None:
    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"twelve bytes")
    open_app(page, media_server)
    page.locator("input[type=file]").set_input_files(str(upload))
    page.locator(".anvil-label", has_text="notes.txt 12 bytes text/plain: twelve bytes").wait_for()


def test_media_download_saves_the_servers_media(media_server: ServerProcess, page: Any, tmp_path: Path) -> None:
    open_app(page, media_server)
    with page.expect_download(timeout=WAIT_MS) as got:
        page.click("button:has-text('Get file')")
    download = got.value
    assert download.suggested_filename == "greeting.txt"
    saved = tmp_path / "saved.txt"
    download.save_as(saved)
    assert saved.read_bytes() == b"hello from the server"
