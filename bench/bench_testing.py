"""The pytest plugin's costs: session start, the per-test database reset, and a call from a test.

    python bench/bench_testing.py

Figures: the reset (a template copied into the live database with SQLite's backup API) per test,
a call through the test server (HTTP, a fresh child per call) and in-process (`anvil_local`), and
the whole per-test overhead as pytest sees it (N tests that each make one call, minus N empty tests).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median_ms(fn: object, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def _pytest_seconds(app: Path, n: int, body: str, fixtures: str) -> float:
    (app / "tests" / "test_bench.py").write_text(
        f"import pytest\n\n@pytest.mark.parametrize('i', range({n}))\ndef test_one(i{fixtures}):\n    {body}\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",  # the plugin comes in by its entry point (pytest11): `-p` as well registers it twice
            "-p",
            "no:cacheprovider",
            "tests/test_bench.py",
        ],
        cwd=app,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def main() -> None:
    from anvil_dev.scaffold import scaffold

    with tempfile.TemporaryDirectory() as tmp:
        app = scaffold(Path(tmp) / "benchapp")
        (app / "tests" / "test_server.py").unlink()

        from anvil_dev.inprocess import use_runtime
        from anvil_dev.testing._env import TestData

        use_runtime()
        t = time.perf_counter()
        data = TestData(app, Path(tmp) / "data")
        template_ms = (time.perf_counter() - t) * 1000
        from anvil.tables import app_tables

        from anvil_dev.host.server import BackgroundServer
        from anvil_dev.inprocess import import_app
        from anvil_dev.testing._calls import CallLog, HttpCaller, LocalCaller

        t = time.perf_counter()
        server = BackgroundServer(data.app_dir, data.settings.replace(port=0, reload=False, scheduled_tasks=False))
        start_ms = (time.perf_counter() - t) * 1000
        try:
            call = HttpCaller(server.url, app, data.app_dir.cli_token(), CallLog())
            call("add", 1, 2)
            import_app(data.app_dir)
            local = LocalCaller(app, CallLog())

            def seeded_reset() -> None:
                for i in range(20):
                    app_tables.feedback.add_row(name=f"n{i}", email="x@y.org", feedback="f")
                data.reset()

            reset_ms = _median_ms(data.reset, 200)
            t_seed = _median_ms(
                lambda: [app_tables.feedback.add_row(name="n", email="e", feedback="f") for _ in range(20)], 50
            )
            seeded_ms = _median_ms(seeded_reset, 50) - t_seed
            http_ms = _median_ms(lambda: call("add", 1, 2), 200)
            local_ms = _median_ms(lambda: local("add", 1, 2), 500)
        finally:
            server.stop()
        n = 100
        empty = _pytest_seconds(app, n, "pass", "")
        with_call = _pytest_seconds(app, n, "assert anvil_call('add', i, 1) == i + 1", ", anvil_call")
        with_local = _pytest_seconds(app, n, "assert anvil_local('add', i, 1) == i + 1", ", anvil_local")
    print(f"template build (schema synced, copied):      {template_ms:7.1f} ms once per session")
    print(f"server start (in-process host + zygote):     {start_ms:7.1f} ms once per session")
    print(f"database reset per test (empty db):          {reset_ms:7.2f} ms")
    print(f"database reset per test (after 20 rows):     {seeded_ms:7.2f} ms")
    print(f"anvil_call('add') through the server:        {http_ms:7.2f} ms per call")
    print(f"anvil_local('add') in-process:               {local_ms:7.3f} ms per call")
    print(
        f"pytest, {n} tests with one anvil_call each:  {(with_call - empty) / n * 1000:7.2f} ms per test "
        f"over an empty test (session start included)"
    )
    print(
        f"pytest, {n} tests with one anvil_local each: {(with_local - empty) / n * 1000:7.2f} ms per test "
        f"over an empty test (session start included)"
    )


if __name__ == "__main__":
    main()
