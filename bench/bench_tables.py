"""Data tables figures on SQLite and on PostgreSQL side by side: add_row, searches over 100,000 rows
with and without an index, and 10 writers in conflicting transactions.

Runs anvil.tables in-process (as server code in a worker does) against an app in a temporary
directory: `python bench/bench_tables.py [--rows N] [--sqlite-only]`. PostgreSQL is a real server
started for the run (Debian's postgresql package, as the tests do), on loopback.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "anvil_dev" / "runtime"))

import yaml  # noqa: E402

from anvil_dev import config, services  # noqa: E402
from anvil_dev.services.tables import indexes  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from helpers import PostgresServer, postgres_bin  # noqa: E402

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


def measure(app: Path, database: str | None, n: int) -> dict[str, Any]:
    """Every figure on one backend, by label: seconds, or (seconds, text) for the conflicts."""
    settings = config.build(app, database=database)
    services.open(app, settings)
    import anvil.tables
    import anvil.tables.query as q
    from anvil.tables import app_tables

    out: dict[str, Any] = {}
    log = app_tables.log
    t0 = time.perf_counter()
    with anvil.tables.Transaction():
        for i in range(2_000):
            log.add_row(msg=f"message {i}", n=i, ok=i % 2 == 0)
    out["add_row x2,000 in one transaction (a row)"] = (time.perf_counter() - t0) / 2_000
    t0 = time.perf_counter()
    for i in range(500):
        log.add_row(msg=f"own {i}", n=i, ok=True)
    out["add_row, each its own transaction (a row)"] = (time.perf_counter() - t0) / 500

    items = app_tables.items
    t0 = time.perf_counter()
    with anvil.tables.Transaction():
        items.add_rows(
            {"name": f"item-{i:06}", "cat_a": f"c{i % 100}", "cat_b": f"c{i % 100}", "n": i, "note": f"note {i} of it"}
            for i in range(n)
        )
    out[f"add_rows x{n:,} (one transaction, all)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    len(items.search(cat_a="c42"))  # builds cat_a's index: the table is big enough for one to pay
    out["first search on cat_a (builds its index)"] = time.perf_counter() - t0
    mid = (n // 2) // 100 * 100 + 42  # a row that exists, whatever --rows says
    saved, indexes.AUTO_INDEX_MIN_ROWS = indexes.AUTO_INDEX_MIN_ROWS, 10**12  # cat_b stays unindexed
    try:
        for label, run in [
            ("len(search(col='c42'))", lambda col: len(items.search(**{col: "c42"}))),
            ("list(search(col='c42'))", lambda col: len(list(items.search(**{col: "c42"})))),
            ("get(col='c42', n=...)", lambda col: items.get(**{col: "c42"}, n=mid)["name"]),
        ]:
            t_a, r_a = timed(lambda run=run: run("cat_a"))
            t_b, r_b = timed(lambda run=run: run("cat_b"))
            assert r_a == r_b, (label, r_a, r_b)
            out[f"{label}, indexed"] = t_a
            out[f"{label}, unindexed"] = t_b
        for label, run in [
            ("search(name=q.ilike('%-04242'))", lambda: len(items.search(name=q.ilike("%-04242")))),
            ("search(note=q.full_text_match('4242'))", lambda: len(items.search(note=q.full_text_match("4242")))),
            ("search(order_by('n', False))[0]", lambda: items.search(anvil.tables.order_by("n", False))[0]["n"]),
        ]:
            out[label] = timed(run, repeat=3)[0]
    finally:
        indexes.AUTO_INDEX_MIN_ROWS = saved
        services.current().tables._index_checked.clear()  # look again at once, not in 5 s
    fts = lambda: len(items.search(note=q.full_text_match("4242")))  # noqa: E731
    t0 = time.perf_counter()
    fts()
    out["full_text_match, first with indexing on"] = time.perf_counter() - t0
    out["full_text_match, then (GIN index on Postgres)"] = timed(fts, repeat=3)[0]
    out["10 writers x20 in_transaction increments"] = conflicts(anvil.tables, app_tables)
    services.current().tables.db.close()
    return out


def conflicts(tables: Any, app_tables: Any, writers: int = 10, each: int = 20) -> tuple[float, str]:
    """`writers` threads each incrementing one counter `each` times in in_transaction: all conflict."""
    app_tables.log.add_row(msg="counter", n=0, ok=True)
    attempts = [0]
    lock = threading.Lock()

    @tables.in_transaction
    def bump() -> None:
        with lock:
            attempts[0] += 1
        row = app_tables.log.get(msg="counter")
        row["n"] = row["n"] + 1

    def writer() -> None:
        for _ in range(each):
            bump()

    threads = [threading.Thread(target=writer) for _ in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    total = writers * each
    assert app_tables.log.get(msg="counter")["n"] == total
    return took, f"{total / took:6.0f} commits/s, {attempts[0] - total} retries"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the searched table")
    parser.add_argument("--sqlite-only", action="store_true", help="skip PostgreSQL")
    opts = parser.parse_args()
    os.environ.pop("ANVIL_DEV_DATABASE", None)
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["SQLite"] = measure(make_app(Path(tmp) / "sqlite"), None, opts.rows)
        bindir = postgres_bin()
        if opts.sqlite_only or bindir is None:
            print("(PostgreSQL not measured: " + ("--sqlite-only" if opts.sqlite_only else "not installed") + ")")
        else:
            pg = PostgresServer(bindir)
            try:
                results["PostgreSQL"] = measure(make_app(Path(tmp) / "pg"), pg.new_database(), opts.rows)
            finally:
                pg.stop()
    names = list(results)
    print(f"anvil.tables, {opts.rows:,} rows searched - bench/bench_tables.py")
    print(f"{'':48}" + "".join(f"{n:>22}" for n in names))
    for label in results["SQLite"]:
        values = [results[n][label] for n in names]
        if isinstance(values[0], tuple):
            print(f"{label}:")
            for n, v in zip(names, values, strict=True):
                print(f"    {n:12} {v[0]:7.2f} s  ({v[1].strip()})")
        else:
            print(f"{label:48}" + "".join(f"{ms(v):>22}" for v in values))


if __name__ == "__main__":
    main()
