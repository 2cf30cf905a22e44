"""Client code run as Python in the browser: the Feedback Form tutorial, and Forms built like real apps'.

Playwright drives Debian's chromium against a real `anvil-dev serve`; one browser for the module.
"""

from __future__ import annotations

import json
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, wait_until, write_module

WAIT_MS = 15_000
READY_MS = 90_000  # a first load compiles the Python modules; under a loaded machine that is slow


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    pg.console_messages = []
    pg.on("console", lambda m: pg.console_messages.append(m.text))
    yield pg
    context.close()


def _write(app: Path, rel: str, text: str) -> None:
    path = app / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def open_app(page: Any, server: ServerProcess) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)


# ---- the tutorial ---------------------------------------------------------------------------


def test_the_scaffold_is_the_feedback_form_tutorial(server: ServerProcess, page: Any) -> None:
    open_app(page, server)
    form = page.locator(".anvil-form[data-form=Form1]")
    form.wait_for()
    page.fill("input[placeholder='Your name']", "Ann Example")
    page.fill("input[placeholder='you@example.org']", "ann@example.org")
    page.fill("textarea", "Lovely little app.")
    page.click("button:has-text('Submit')")
    note = page.locator(".anvil-notification", has_text="Thanks!")
    note.wait_for()
    assert "We have recorded your feedback" in note.inner_text()
    # The handler cleared the boxes after the call returned.
    assert page.input_value("input[placeholder='Your name']") == ""
    stored = server.client().call("list_feedback")
    assert [(f["name"], f["feedback"]) for f in stored] == [("Ann Example", "Lovely little app.")]
    outbox = _get_json(server.url + "/_/console/api/outbox")
    subjects = [m.get("subject") for m in (outbox.get("messages") if isinstance(outbox, dict) else outbox)]
    assert "Feedback from Ann Example" in subjects
    # The server's print() reached the browser console, and the console's live log has the call.
    assert any("Feedback from Ann Example" in m for m in page.console_messages)
    page.goto(server.url + "/_/console")
    page.locator(".log-item[data-kind=call]", has_text="add_feedback").first.wait_for()


def test_a_server_error_is_shown_with_the_client_file_and_line(server: ServerProcess, page: Any) -> None:
    open_app(page, server)
    page.click("button:has-text('Submit')")  # empty name: add_feedback raises ValueError
    box = page.locator("#anvil-error")
    box.wait_for()
    text = box.inner_text()
    assert "ValueError: Please give your name and email" in text
    assert "client_code/Form1/__init__.py, line 18" in text
    assert "server_code/ServerModule1.py" in text
    page.goto(server.url + "/_/console")
    item = page.locator(".log-item[data-kind=client-error]").first
    item.wait_for()
    assert "client_code/Form1/__init__.py line 18" in item.inner_text()


def test_saving_a_client_file_reloads_the_page(app_dir: Path, server: ServerProcess, page: Any) -> None:
    open_app(page, server)
    page.evaluate("window.beforeReload = 1")
    init = app_dir / "client_code" / "Form1" / "__init__.py"
    init.write_text(init.read_text().replace("# Any code you write here", "print('hello from Form1')\n    #"))
    # The new document may have no body yet when the check runs: an error there ends the wait.
    page.wait_for_function(
        "window.beforeReload === undefined && document.body !== null && document.body.dataset.anvilReady === '1'"
    )
    wait_until(lambda: any("hello from Form1" in m for m in page.console_messages), what="the print")
    page.goto(server.url + "/_/console")
    page.locator(".log-item[data-kind=output]", has_text="hello from Form1").first.wait_for()


# ---- Forms as real apps build them ----------------------------------------------------------

SERVER = """
import anvil.server
import anvil.users

class Overdrawn(Exception):
    pass

@anvil.server.callable
def list_rows(n):
    return [{"name": "Item %d" % i, "qty": i} for i in range(1, n + 1)]

@anvil.server.callable
def overdraw():
    raise anvil.server.PermissionDenied("not your account")

@anvil.server.callable
def whoami():
    u = anvil.users.get_user()
    return u["email"] if u else None

@anvil.server.callable
def save_item(item):
    return "saved %s x%s" % (item["name"], item["qty"])
"""

FORMS = {
    "client_code/Main/form_template.yaml": """
        is_package: true
        container:
          type: HtmlTemplate
          properties: {html: '@theme:standard-page.html'}
        components:
        - type: Label
          properties: {text: My App}
          name: title_label
          layout_properties: {slot: title}
        - type: ColumnPanel
          properties: {}
          name: content_panel
          layout_properties: {slot: default}
          components:
          - type: FlowPanel
            name: buttons
            layout_properties: {grid_position: 'A,B'}
            components:
            - {type: Button, properties: {text: Ask}, name: ask_button, event_bindings: {click: ask_click}}
            - {type: Button, properties: {text: Overdraw}, name: overdraw_button,
               event_bindings: {click: overdraw_click}}
            - {type: Button, properties: {text: Log in}, name: login_button, event_bindings: {click: login_click}}
            - {type: Button, properties: {text: Edit}, name: edit_button, event_bindings: {click: edit_click}}
          - type: Label
            properties: {text: ''}
            name: result_label
            layout_properties: {grid_position: 'C,D'}
          - type: RepeatingPanel
            properties: {item_template: Main.ItemRow}
            name: items_panel
            layout_properties: {grid_position: 'E,F'}
          - type: DataGrid
            properties:
              rows_per_page: 3
              columns:
              - {id: N, title: Name, data_key: name}
              - {id: Q, title: Qty, data_key: qty}
            name: grid
            layout_properties: {grid_position: 'G,H'}
            components:
            - type: RepeatingPanel
              properties: {item_template: Main.GridRow}
              name: grid_panel
        """,
    "client_code/Main/__init__.py": """
        from ._anvil_designer import MainTemplate
        from anvil import *
        import anvil.server
        import anvil.users
        from .EditForm import EditForm


        class Main(MainTemplate):
          def __init__(self, **properties):
            self.init_components(**properties)
            rows = anvil.server.call('list_rows', 7)
            self.items_panel.items = rows[:2]
            self.grid_panel.items = rows

          def ask_click(self, **event_args):
            if confirm("Really?"):
              self.result_label.text = "confirmed"
            else:
              self.result_label.text = "declined"

          def overdraw_click(self, **event_args):
            try:
              anvil.server.call('overdraw')
            except anvil.server.PermissionDenied as e:
              self.result_label.text = "caught PermissionDenied: " + str(e)

          def login_click(self, **event_args):
            user = anvil.users.login_with_form()
            self.result_label.text = "logged in as " + anvil.server.call('whoami')

          def edit_click(self, **event_args):
            item = {"name": "Widget", "qty": 1}
            choice = alert(EditForm(item=item), title="Edit item", buttons=[("Save", "save"), ("Cancel", None)])
            if choice == "save":
              self.result_label.text = anvil.server.call('save_item', item)
        """,
    "client_code/Main/ItemRow/form_template.yaml": """
        is_package: true
        container: {type: ColumnPanel}
        components:
        - type: Label
          name: name_label
          layout_properties: {grid_position: 'R,S'}
          data_bindings:
          - {property: text, code: "self.item['name']"}
        """,
    "client_code/Main/ItemRow/__init__.py": """
        from ._anvil_designer import ItemRowTemplate


        class ItemRow(ItemRowTemplate):
          def __init__(self, **properties):
            self.init_components(**properties)
        """,
    "client_code/Main/GridRow/form_template.yaml": """
        is_package: true
        container: {type: DataRowPanel}
        components: []
        """,
    "client_code/Main/GridRow/__init__.py": """
        from ._anvil_designer import GridRowTemplate


        class GridRow(GridRowTemplate):
          def __init__(self, **properties):
            self.init_components(**properties)
        """,
    "client_code/Main/EditForm/form_template.yaml": """
        is_package: true
        container: {type: ColumnPanel}
        components:
        - type: TextBox
          name: name_box
          layout_properties: {grid_position: 'A,B'}
          data_bindings:
          - {property: text, code: "self.item['name']", writeback: true}
        - type: TextBox
          name: qty_box
          properties: {type: number}
          layout_properties: {grid_position: 'C,D'}
          data_bindings:
          - {property: text, code: "self.item['qty']", writeback: true}
        """,
    "client_code/Main/EditForm/__init__.py": """
        from ._anvil_designer import EditFormTemplate


        class EditForm(EditFormTemplate):
          def __init__(self, **properties):
            self.init_components(**properties)
        """,
    "theme/assets/standard-page.html": """
        <div class="structure">
          <div class="app-bar"><div class="title" anvil-slot="title"></div></div>
          <div class="content"><div anvil-slot-repeat="default"></div>
            <div anvil-if-slot-empty="default">Nothing here</div></div>
        </div>
        """,
}


@pytest.fixture
def forms_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    for rel, text in FORMS.items():
        _write(app_dir, rel, text)
    write_module(app_dir, "Accounts", SERVER)
    cfg = (app_dir / "anvil.yaml").read_text().replace("startup_form: Form1", "startup: {type: form, module: Main}")
    (app_dir / "anvil.yaml").write_text(cfg)
    return server_factory(app_dir)


def test_a_theme_page_with_slots_nested_panels_and_repeating_rows(forms_server: ServerProcess, page: Any) -> None:
    open_app(page, forms_server)
    page.locator(".app-bar .title", has_text="My App").wait_for()
    # The standard page's repeat slot holds the content panel; its empty-slot text is hidden.
    assert page.locator(".content .anvil-columnpanel .anvil-flowpanel button").count() == 4
    assert not page.locator("text=Nothing here").is_visible()
    rows = page.locator(".anvil-repeatingpanel >> nth=0").locator(".anvil-form[data-form=ItemRow]")
    assert rows.all_inner_texts() == ["Item 1", "Item 2"]


def test_a_data_grid_pages_rows_from_a_server_call(forms_server: ServerProcess, page: Any) -> None:
    open_app(page, forms_server)
    grid = page.locator(".anvil-datagrid")
    assert grid.locator(".data-grid-header").inner_text().split() == ["Name", "Qty"]
    visible = grid.locator(".data-grid-body .data-grid-row:visible")
    assert [r.split("\t")[0].strip() for r in visible.all_inner_texts()] == ["Item 1", "Item 2", "Item 3"] or [
        t.splitlines()[0] for t in visible.all_inner_texts()
    ] == ["Item 1", "Item 2", "Item 3"]
    assert grid.locator(".data-grid-page-info").inner_text() == "1-3 of 7"
    grid.locator(".data-grid-next").click()
    grid.locator(".data-grid-next").click()
    assert grid.locator(".data-grid-page-info").inner_text() == "7-7 of 7"
    assert "Item 7" in visible.first.inner_text()


def test_a_server_exception_is_caught_in_client_code_as_its_anvil_type(forms_server: ServerProcess, page: Any) -> None:
    open_app(page, forms_server)
    page.click("button:has-text('Overdraw')")
    page.locator(".anvil-label", has_text="caught PermissionDenied: not your account").wait_for()
    assert page.locator("#anvil-error").count() == 0


def test_an_alert_with_a_content_form_writes_back_and_returns_the_button(
    forms_server: ServerProcess, page: Any
) -> None:
    open_app(page, forms_server)
    page.click("button:has-text('Edit')")
    modal = page.locator(".anvil-modal")
    modal.locator(".anvil-modal-title", has_text="Edit item").wait_for()
    name = modal.locator("input").nth(0)
    assert name.input_value() == "Widget"  # the binding read self.item
    name.fill("Gadget")
    name.press("Tab")
    modal.locator("input").nth(1).fill("4")
    modal.locator("input").nth(1).press("Enter")
    modal.locator("button:has-text('Save')").click()
    # alert() returned "save", and the item the form wrote back reached the server.
    page.locator(".anvil-label", has_text="saved Gadget x4").wait_for()
    assert page.locator(".anvil-modal").count() == 0


def test_confirm_and_login_with_form_block_until_answered(forms_server: ServerProcess, page: Any) -> None:
    forms_server.client().signup("bo@example.org", "a long secret phrase")
    open_app(page, forms_server)
    page.click("button:has-text('Ask')")
    page.locator(".anvil-modal button:has-text('OK')").click()
    page.locator(".anvil-label", has_text="confirmed").wait_for()
    page.click("button:has-text('Log in')")
    login = page.locator(".anvil-login")
    login.locator("input[name=email]").fill("bo@example.org")
    login.locator("input[name=password]").fill("wrong")
    login.locator(".anvil-login-submit").click()
    login.locator(".anvil-login-error").filter(has_text="password").wait_for()
    login.locator("input[name=password]").fill("a long secret phrase")
    login.locator(".anvil-login-submit").click()
    page.locator(".anvil-label", has_text="logged in as bo@example.org").wait_for()
