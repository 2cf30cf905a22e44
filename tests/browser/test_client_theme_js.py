"""The theme's colour scheme (theme/parameters.yaml) as CSS variables in the page, and anvil.js from
client Python: calling the page's JavaScript, waiting for its promises, importing a module."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ServerProcess

READY_MS = 90_000

PARAMETERS = """
roles: []
color_scheme:
  colors:
  - {name: Primary 500, color: '#E91E63'}
  - {name: Secondary 500, color: 'rgb(0, 150, 136)'}
  - {name: On Primary, color: '#FFFFFF'}
"""

THEME_CSS = """
.app-title { color: %color:Primary 500%; background-color: %color:On Primary%; }
.unknown { color: %color:No Such Colour%; }
"""

HEAD_HTML = """
<script>
window.jsCalls = 0;
window.later = (v) => { window.jsCalls += 1; return new Promise((ok) => setTimeout(() => ok(v + "!"), 30)); };
window.refuse = () => Promise.reject(new Error("no thanks"));
window.shout = { loud: (s) => s.toUpperCase() };
</script>
"""

MODULE_JS = "export function twice(x) { return 2 * x; }\n"

TEMPLATE = """
container: {type: ColumnPanel}
components:
- {type: Label, name: title, properties: {text: Title, role: null}, layout_properties: {grid_position: 'A,B'}}
- {type: Label, name: tinted, properties: {text: Tinted, foreground: 'theme:Secondary 500'},
   layout_properties: {grid_position: 'C,D'}}
- {type: Label, name: untinted, properties: {text: Untinted, foreground: 'theme:Nope'},
   layout_properties: {grid_position: 'C,E'}}
- {type: Button, name: go, properties: {text: Go}, event_bindings: {click: go_click},
   layout_properties: {grid_position: 'E,F'}}
- {type: Label, name: result, properties: {text: ''}, layout_properties: {grid_position: 'G,H'}}
"""

FORM = """
import json
from ._anvil_designer import ThemedTemplate
import anvil
import anvil.js
import anvil.server


class Themed(ThemedTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    anvil.js.get_dom_node(self.title).classList.add("app-title")

  def go_click(self, **event_args):
    out = {"colours": anvil.app.theme_colors}
    out["later"] = anvil.js.call("later", "ready")
    out["sync"] = anvil.js.call("shout.loud", "hi")
    try:
      anvil.js.call("refuse")
      out["refused"] = None
    except anvil.js.ExternalError as e:
      out["refused"] = str(e)
    out["twice"] = anvil.js.import_from("/_/theme/mod.js").twice(21)
    out["window"] = anvil.js.window.jsCalls
    out["server"] = anvil.server.call("add", 2, 3)
    self.result.text = json.dumps(out)
"""


def _write(app: Path, rel: str, text: str) -> None:
    path = app / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def themed_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    _write(app_dir, "theme/parameters.yaml", PARAMETERS)
    _write(app_dir, "theme/assets/theme.css", THEME_CSS)
    _write(app_dir, "theme/assets/mod.js", MODULE_JS)
    _write(app_dir, "client_code/Themed/form_template.yaml", TEMPLATE)
    _write(app_dir, "client_code/Themed/__init__.py", FORM)
    config = yaml.safe_load((app_dir / "anvil.yaml").read_text())
    config["startup_form"] = "Themed"
    config["native_deps"] = {"head_html": HEAD_HTML}
    (app_dir / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return server_factory(app_dir)


def test_theme_colours_become_css_variables_and_anvil_js_waits_for_promises(
    themed_server: ServerProcess, browser: Any
) -> None:
    context = browser.new_context()
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(themed_server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)
    style = page.evaluate("""() => {
        const s = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
        return {title: s('.app-title', 'color'), title_bg: s('.app-title', 'backgroundColor'),
                button: s('.btn', 'backgroundColor'),
                variable: getComputedStyle(document.documentElement).getPropertyValue('--anvil-color-Primary-500')};
    }""")
    # %color:Primary 500% in theme.css, anvil.css's own Primary 500, and the variable itself.
    assert style["title"] == "rgb(233, 30, 99)"
    assert style["title_bg"] == "rgb(255, 255, 255)"
    assert style["button"] == "rgb(233, 30, 99)"
    assert style["variable"].strip() == "#E91E63"
    tinted = page.get_by_text("Tinted", exact=True).evaluate("e => getComputedStyle(e).color")
    untinted = page.get_by_text("Untinted", exact=True).evaluate("e => getComputedStyle(e).color")
    body = page.evaluate("getComputedStyle(document.body).color")
    assert tinted == "rgb(0, 150, 136)"  # a component's theme:Secondary 500
    assert untinted == body  # an unknown theme colour sets none, as on Anvil

    page.click("button:has-text('Go')")
    label = page.locator(".anvil-label .label-text").filter(has_text="colours")
    label.wait_for()
    got = json.loads(label.inner_text())
    assert got == {
        "colours": {"Primary 500": "#E91E63", "Secondary 500": "rgb(0, 150, 136)", "On Primary": "#FFFFFF"},
        "later": "ready!",
        "sync": "HI",
        "refused": "no thanks",
        "twice": 42,
        "window": 1,  # each JavaScript call ran once, though the handler replayed to wait for promises
        "server": 5,
    }
    context.close()
