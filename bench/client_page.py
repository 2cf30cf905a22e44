"""Client code in the browser: page load to first Form (cold, warm), one call from client Python
against the same from anvil.js, and the bytes the page downloads. `python bench/client_page.py`."""

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


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(scaffold(Path(tmp) / "Bench"))
        try:
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                cold, warm, sizes = [], [], []
                for _ in range(3):
                    ctx = b.new_context()
                    pg = ctx.new_page()
                    got: list[int] = []
                    pg.on("response", lambda r, got=got: got.append(int(r.headers.get("content-length") or 0)))
                    pg.goto(server.url + "/")
                    pg.wait_for_function("window.anvilFormShown !== undefined")
                    cold.append(pg.evaluate("window.anvilFormShown"))
                    sizes.append(sum(got))
                    pg.reload()
                    pg.wait_for_function("window.anvilFormShown !== undefined")
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
    print(
        f"one call from client Python: {statistics.median(py):.1f} ms; from anvil.js: {statistics.median(js):.1f} ms "
        "(median of 20)"
    )


if __name__ == "__main__":
    main()
