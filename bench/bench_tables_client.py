"""Data tables from client code and under contention, through a real `anvil-dev serve`:

- a 1,000-row search of a `client: search` table, read page by page by the Python client
  (first-page latency, and the whole search), at page sizes 100 and 1,000;
- conflict and retry: 20 concurrent writers each incrementing one counter in an
  `@anvil.tables.in_transaction` fresh-mode call; the wall time, the throughput and how many
  attempts the conflicts cost.

`python bench/bench_tables_client.py` (figures for the note; no test asserts on time).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from anvil_dev.client import Connection  # noqa: E402
from anvil_dev.scaffold import scaffold  # noqa: E402

from _harness import Server  # noqa: E402

MODULE = """
import anvil.server
import anvil.tables
from anvil.tables import app_tables

_attempts = []


@anvil.server.callable
def reset(n):
    app_tables.notes.delete_all_rows()
    app_tables.notes.add_rows([{"n": i, "owner": "ann" if i % 2 else "bob"} for i in range(n)])
    app_tables.counters.delete_all_rows()
    app_tables.counters.add_row(name="hits", value=0)


@anvil.server.callable
def all_notes():
    return app_tables.notes.search()


@anvil.server.callable
def value():
    return app_tables.counters.get(name="hits")["value"]


@anvil.server.callable
@anvil.tables.in_transaction
def increment():
    _attempts.append(1)
    row = app_tables.counters.get(name="hits")
    row["value"] = row["value"] + 1
    return len(_attempts)
"""


def make_app(root: Path) -> Path:
    app = scaffold(root / "ClientBench")
    config = yaml.safe_load((app / "anvil.yaml").read_text())
    config["db_schema"]["notes"] = {
        "title": "Notes",
        "client": "search",
        "server": "full",
        "columns": [{"name": "n", "type": "number"}, {"name": "owner", "type": "string"}],
    }
    config["db_schema"]["counters"] = {
        "title": "Counters",
        "client": "none",
        "server": "full",
        "columns": [{"name": "name", "type": "string"}, {"name": "value", "type": "number"}],
    }
    (app / "anvil.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (app / "server_code" / "Bench.py").write_text(MODULE)
    return app


def paged(c: Connection, page_size: int) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    found = c.app_tables.notes.search(page_size=page_size)
    it = iter(found)
    next(it)
    first = time.perf_counter() - t0
    n = 1 + sum(1 for _ in it)
    assert n == 1000, n
    return first, time.perf_counter() - t0, found.pages_loaded


def returned(c: Connection) -> tuple[float, float]:
    t0 = time.perf_counter()
    found = c.call("all_notes")
    it = iter(found)
    next(it)
    first = time.perf_counter() - t0
    assert 1 + sum(1 for _ in it) == 1000
    return first, time.perf_counter() - t0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server.anvil_dev(make_app(Path(tmp)))
        try:
            c = Connection(server.url)
            c.call("reset", 1000)
            print("client-side data tables and conflicts - bench/bench_tables_client.py")
            print("\n1,000-row search of a client: search table, Python client, median of 5")
            for size in (100, 1000):
                paged(c, size)  # warm
                runs = [paged(c, size) for _ in range(5)]
                first = statistics.median(r[0] for r in runs) * 1000
                total = statistics.median(r[1] for r in runs) * 1000
                print(
                    f"  page size {size:5}: first page {first:7.1f} ms, all 1,000 rows {total:7.1f} ms "
                    f"({runs[0][2]} pages)"
                )
            returned(c)
            runs2 = [returned(c) for _ in range(5)]
            print(
                f"  returned by a server function (pages of 100): first page "
                f"{statistics.median(r[0] for r in runs2) * 1000:7.1f} ms, all 1,000 rows "
                f"{statistics.median(r[1] for r in runs2) * 1000:7.1f} ms"
            )
            print("\n20 concurrent writers, one counter, @in_transaction, fresh mode")
            for rnd in range(3):
                c.call("reset", 0)
                t0 = time.perf_counter()
                with ThreadPoolExecutor(20) as pool:
                    attempts = list(pool.map(lambda _: Connection(server.url).call("increment"), range(20)))
                wall = time.perf_counter() - t0
                assert c.call("value") == 20
                print(
                    f"  round {rnd + 1}: {wall:6.2f} s, {20 / wall:6.1f} commits/s, attempts {sum(attempts)} "
                    f"for 20 commits (max {max(attempts)} for one call)"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
