"""Calls per second served by one host and by two, on SQLite and on PostgreSQL (`python bench/bench_hosts.py`).

8 callers, each with its own session, call `add(1, 2)` for THROUGHPUT_S seconds. Configurations:
the dev server (werkzeug) on SQLite; `serve --production` (gunicorn) on SQLite and on Postgres,
with one gunicorn process (one engine) and with two (an engine per gunicorn process); and two
`--production` hosts on one Postgres with the callers split between them. Both engine modes
(fresh interpreter per call, and --keep-server-running). It starts a PostgreSQL server of its own
(Debian's postgresql package, as the tests do). On a 2-core machine, two hosts share the same two
cores: the figure says what a second host costs or gains there, not what a second machine would.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _harness import Server, make_app, throughput
from helpers import PostgresServer, postgres_bin

THROUGHPUT_S = 5.0
CALLERS = 8


def main() -> None:
    bindir = postgres_bin()
    if bindir is None:
        sys.exit("bench_hosts needs PostgreSQL (apt-get install postgresql)")
    pg = PostgresServer(bindir)
    root = Path(tempfile.mkdtemp(prefix="anvil-dev-bench-hosts-"))
    results: dict[str, dict[str, float]] = {}
    try:
        for mode in ("--fresh", "--keep-server-running"):
            row: dict[str, float] = {}
            url = pg.new_database()
            apps = [make_app(root / f"{mode}-a"), make_app(root / f"{mode}-b")]
            configs: list[tuple[str, list[list[str]]]] = [
                ("dev server, SQLite", [[]]),
                ("production, SQLite, 1 process", [["--production"]]),
                ("production, Postgres, 1 host", [["--production", "--database", url]]),
                (
                    "production, Postgres, 1 host of 2 processes",
                    [["--production", "--database", url, "--processes", "2"]],
                ),
                ("production, Postgres, 2 hosts", [["--production", "--database", url]] * 2),
            ]
            for name, hosts in configs:
                servers = [Server.anvil_dev(apps[i], mode, *args) for i, args in enumerate(hosts)]
                try:
                    row[name] = round(throughput([s.url for s in servers], CALLERS, THROUGHPUT_S), 1)
                finally:
                    for s in servers:
                        s.stop()
                print(f"{mode:22} {name:45} {row[name]:8.1f} calls/s", flush=True)
            results[mode] = row
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
