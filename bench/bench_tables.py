"""Data tables figures: bulk writes, and searches over 100,000 rows with and without an index.

Runs anvil.tables in-process (as server code in a worker does) against an app in a temporary
directory: `python bench/bench_tables.py [--rows N]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "anvil_dev" / "runtime"))

import yaml  # noqa: E402

from anvil_dev import services  # noqa: E402
from anvil_dev.services.tables import store as svc  # noqa: E402

SCHEMA = {
    "items": {
        "title": "Items",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "name", "type": "string"},
            {"name": "cat_a", "type": "string"},
            {"name": "cat_b", "type": "string"},
            {"name": "n", "type": "number"},
            {"name": "note", "type": "string"},
        ],
    },
    "log": {
        "title": "Log",
        "client": "none",
        "server": "full",
        "columns": [
            {"name": "msg", "type": "string"},
            {"name": "n", "type": "number"},
            {"name": "ok", "type": "bool"},
        ],
    },
}


def make_app(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "anvil.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "Bench",
                "services": [
                    {"source": "/runtime/services/tables.yml", "server_config": {"auto_create_missing_columns": False}}
                ],
                "db_schema": SCHEMA,
            }
        )
    )
    return path


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of `repeat` runs, and the last result."""
    times = []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the searched table")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        services.open(make_app(Path(tmp) / "app"))
        import anvil.tables
        import anvil.tables.query as q
        from anvil.tables import app_tables

        log = app_tables.log
        print("anvil.tables on SQLite - bench/bench_tables.py")

        t0 = time.perf_counter()
        with anvil.tables.Transaction():
            for i in range(10_000):
                log.add_row(msg=f"message {i}", n=i, ok=i % 2 == 0)
        bulk = time.perf_counter() - t0
        print(f"10,000 add_row in one transaction:   {bulk:8.3f} s  ({10_000 / bulk:,.0f} rows/s)")

        t0 = time.perf_counter()
        for i in range(1_000):
            log.add_row(msg=f"own {i}", n=i, ok=True)
        single = (time.perf_counter() - t0) / 1_000
        print(f"add_row, each its own transaction:   {ms(single)} a row")

        items = app_tables.items
        n = opts.rows
        t0 = time.perf_counter()
        with anvil.tables.Transaction():
            items.add_rows(
                {
                    "name": f"item-{i:06}",
                    "cat_a": f"c{i % 100}",
                    "cat_b": f"c{i % 100}",
                    "n": i,
                    "note": f"note {i} of the bench",
                }
                for i in range(n)
            )
        print(f"{n:,} rows with add_rows (one transaction): {time.perf_counter() - t0:6.2f} s")

        # The first search on cat_a builds its index (the table is large enough for one to pay).
        t0 = time.perf_counter()
        first = len(items.search(cat_a="c42"))
        print(f"first search on cat_a (builds its index): {ms(time.perf_counter() - t0)}  -> {first} rows")

        svc.AUTO_INDEX_MIN_ROWS = 10**12  # leave cat_b without an index, for the comparison
        print(f"\nsearch over {n:,} rows                     indexed (cat_a)   unindexed (cat_b)")
        for label, run in [
            ("len(search(col='c42'))       ", lambda col: len(items.search(**{col: "c42"}))),
            ("list(search(col='c42'))      ", lambda col: len(list(items.search(**{col: "c42"})))),
            ("search(col='c42')[0]         ", lambda col: items.search(**{col: "c42"})[0]["name"]),
            ("get(col='c42', n=4242)       ", lambda col: items.get(**{col: "c42"}, n=4242)["name"]),
        ]:
            t_a, r_a = timed(lambda run=run: run("cat_a"))
            t_b, r_b = timed(lambda run=run: run("cat_b"))
            assert r_a == r_b, (label, r_a, r_b)
            print(f"{label}  {ms(t_a)}     {ms(t_b)}   ({t_b / t_a:5.1f}x)")

        print("\nother scans over the same table")
        for label, run in [
            ("search(name=q.ilike('%-04242'))", lambda: len(items.search(name=q.ilike("%-04242")))),
            ("search(note=q.full_text_match('4242'))", lambda: len(items.search(note=q.full_text_match("4242")))),
            ("search(order_by('n', False))[0]", lambda: items.search(anvil.tables.order_by("n", False))[0]["n"]),
            ("len(search())", lambda: len(items.search())),
        ]:
            t, _ = timed(run, repeat=3)
            print(f"{label:40} {ms(t)}")


if __name__ == "__main__":
    main()
