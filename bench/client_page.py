"""Client code in the browser: page load to first Form (cold, warm), one call from client Python
against the same from anvil.js, and the bytes the page downloads. `python bench/client_page.py`.

`--plot` puts a Plot on the scaffold's Form and also times it until plotly.js has drawn it, and
the bytes plotly.js adds."""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from playwright.sync_api import sync_playwright

from anvil_dev.scaffold import scaffold

from helpers import ServerProcess

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


PLOT = "- {type: Plot, name: plot_1, properties: {height: 300}, layout_properties: {grid_position: 'PLOT,P'}}\n"
PLOT_CODE = """
    from plotly import graph_objects as go
    self.plot_1.data = [go.Scatter(x=[1, 2, 3], y=[3, 1, 6])]
"""
DRAWN = "window.anvilFormShown !== undefined && (!window.benchPlot || !!document.querySelector('.main-svg'))"


def _add_plot(app: Path) -> None:
    form = app / "client_code" / "Form1"
    (form / "form_template.yaml").write_text((form / "form_template.yaml").read_text() + PLOT)
    init = form / "__init__.py"
    init.write_text(
        init.read_text().replace(
            "    self.init_components(**properties)\n", "    self.init_components(**properties)\n" + PLOT_CODE, 1
        )
    )


def main() -> None:
    plot = "--plot" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        app = scaffold(Path(tmp) / "Bench")
        if plot:
            _add_plot(app)
        server = ServerProcess(app)
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                cold, warm, sizes, plotly_sizes, drawn_cold, drawn_warm = [], [], [], [], [], []
                for _ in range(3):
                    ctx = b.new_context()
                    ctx.add_init_script(f"window.benchPlot = {'true' if plot else 'false'};")
                    pg = ctx.new_page()
                    got: list[tuple[str, int]] = []
                    pg.on("response", lambda r, got=got: got.append((r.url, int(r.headers.get("content-length") or 0))))
                    pg.goto(server.url + "/")
                    pg.wait_for_function(DRAWN, polling=5)
                    drawn_cold.append(pg.evaluate("performance.now()"))
                    cold.append(pg.evaluate("window.anvilFormShown"))
                    sizes.append(sum(n for _, n in got))
                    plotly_sizes.append(sum(n for u, n in got if "plotly" in u))
                    pg.reload()
                    pg.wait_for_function(DRAWN, polling=5)
                    drawn_warm.append(pg.evaluate("performance.now()"))
                    warm.append(pg.evaluate("window.anvilFormShown"))
                    ctx.close()
                ctx = b.new_context()
                pg = ctx.new_page()
                pg.goto(server.url + "/")
                pg.wait_for_function("window.anvilFormShown !== undefined")
                py = [pg.evaluate("window.anvilDevTimeCall('add', 1, 2)") for _ in range(20)]
                js = [
                    pg.evaluate("""async () => { const t = performance.now();
                        await window.anvil.server.call('add', 1, 2); return performance.now() - t; }""")
                    for _ in range(20)
                ]
                b.close()
        finally:
            server.stop()
    print(f"first Form shown, cold: {statistics.median(cold):.0f} ms (median of 3, from navigation start)")
    print(f"first Form shown, warm: {statistics.median(warm):.0f} ms")
    print(f"bytes downloaded, cold: {statistics.median(sizes) / 1e6:.2f} MB")
    if plot:
        print(f"of which plotly.js: {statistics.median(plotly_sizes) / 1e6:.2f} MB (gzipped)")
        print(
            f"Plot drawn, cold: {statistics.median(drawn_cold):.0f} ms; warm: {statistics.median(drawn_warm):.0f} ms "
            "(polled every 5 ms)"
        )
    print(
        f"one call from client Python: {statistics.median(py):.1f} ms; from anvil.js: {statistics.median(js):.1f} ms "
        "(median of 20)"
    )


if __name__ == "__main__":
    main()
