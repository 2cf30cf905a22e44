"""A Plot in client code: plotly.js from the installed plotly package, loaded by the pages that
draw one, the `plotly.graph_objects` shim client code builds traces with, and Plot's events."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from anvil_dev.clientcode import plotly_js

from helpers import ServerProcess, wait_until, write_module

READY_MS = 90_000  # a first load compiles the Python modules; under a loaded machine that is slow

pytestmark = pytest.mark.skipif(plotly_js() is None, reason="the plotly package (a dependency) is not installed")

SERVER = """
import anvil.server

@anvil.server.callable
def monthly_sales():
    return {"months": ["Jan", "Feb", "Mar", "Apr"], "sales": [12, 30, 21, 44], "target": [20, 20, 25, 25]}
"""

TEMPLATE = """
container: {type: ColumnPanel}
components:
- type: Label
  name: picked
  properties: {text: ''}
  layout_properties: {grid_position: 'A,B'}
- type: Plot
  name: plot_1
  properties: {height: 380}
  event_bindings: {click: plot_1_click}
  layout_properties: {grid_position: 'C,D'}
"""

FORM = """
from ._anvil_designer import ChartTemplate
from anvil import *
import anvil.server
from plotly import graph_objects as go


class Chart(ChartTemplate):
  def __init__(self, **properties):
    self.init_components(**properties)
    d = anvil.server.call('monthly_sales')
    self.plot_1.data = [
      go.Bar(x=d['months'], y=d['sales'], name='Sales', marker=dict(color='rgb(16, 32, 77)')),
      go.Scatter(x=d['months'], y=d['target'], name='Target', line_dash='dot'),
    ]
    self.plot_1.layout.title = 'Sales by month'
    self.plot_1.layout.xaxis.title = 'month'
    self.plot_1.layout.yaxis_title_text = 'units'

  def plot_1_click(self, points, **event_args):
    p = points[0]
    self.picked.text = "curve %s point %s: %s=%s" % (p['curve_number'], p['point_number'], p['x'], p['y'])
"""


def _write(app: Path, rel: str, text: str) -> None:
    path = app / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.requested = []
    pg.on("request", lambda r: pg.requested.append(r.url))
    yield pg
    context.close()


@pytest.fixture
def plot_server(app_dir: Path, server_factory: Callable[..., ServerProcess]) -> ServerProcess:
    write_module(app_dir, "Sales", SERVER)
    _write(app_dir, "client_code/Chart/form_template.yaml", TEMPLATE)
    _write(app_dir, "client_code/Chart/__init__.py", FORM)
    cfg = (app_dir / "anvil.yaml").read_text().replace("startup_form: Form1", "startup_form: Chart")
    (app_dir / "anvil.yaml").write_text(cfg)
    return server_factory(app_dir)


def test_a_plot_draws_the_traces_a_server_call_returned(plot_server: ServerProcess, page: Any) -> None:
    page.goto(plot_server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)
    plot = page.locator(".anvil-plot")
    plot.locator("svg.main-svg").first.wait_for(timeout=READY_MS)
    # plotly.js drew one bar trace with four bars and one scatter trace, from the server's numbers.
    assert plot.locator(".barlayer .trace").count() == 1
    assert plot.locator(".barlayer .trace .point").count() == 4
    assert plot.locator(".scatterlayer .trace").count() == 1
    assert plot.locator(".gtitle").text_content() == "Sales by month"
    assert plot.locator(".xtitle").text_content() == "month"
    assert plot.locator(".ytitle").text_content() == "units"  # yaxis_title_text: plotly's magic underscores
    assert [t.strip() for t in plot.locator(".xtick text").all_text_contents()] == ["Jan", "Feb", "Mar", "Apr"]
    assert plot.bounding_box()["height"] == pytest.approx(380, abs=2)
    # From our host's copy of plotly.js, never a CDN.
    assert [u for u in page.requested if "plotly" in u] == [plot_server.url + "/_/client/plotly.min.js"]
    # A click on a bar reaches the Form's handler with the point's curve, index and values.
    bar = plot.locator(".barlayer .trace .point path").nth(3)
    box = bar.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.up()
    label = page.locator(".anvil-label", has_text="curve")
    label.wait_for()
    assert label.inner_text() == "curve 0 point 3: Apr=44"


def test_a_page_without_a_plot_never_loads_plotly(server: ServerProcess, page: Any) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-anvil-ready='1']", timeout=READY_MS)
    page.locator(".anvil-form[data-form=Form1]").wait_for()
    wait_until(lambda: page.evaluate("document.readyState") == "complete", what="the page's load")
    assert not [u for u in page.requested if "plotly" in u]
    assert "plotly" not in page.content()
