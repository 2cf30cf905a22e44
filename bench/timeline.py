"""Where a call's time goes, leg by leg: `python bench/timeline.py [--mode fresh|persistent] [--paced] [--lean]`.

Serves the bench app with ANVIL_DEV_TIMELINE set (anvil_dev/timeline.py), makes calls over HTTP
back to back (or 20 ms apart), and prints the median and 90th percentile of each leg, from the
request reaching our route to the next request reaching it. `make bench` gives the ratios; this
says which leg to work on. The figures include the cost of writing the timeline's lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import LeanClient, Server, call, make_app

# (what, from, to): points of one call's host line ("request", "engine", "answered", "written": the
# host is done with the response, which the child may have written before its REPLY)
# and child line ("started", "replied"); "next request" is the following call's "request".
LEGS = [
    ("our route, up to the engine", "request", "engine"),
    ("engine -> the child starts the call", "engine", "started"),
    ("the call in the child", "started", "replied"),
    ("child's reply -> the engine returns", "replied", "answered"),
    ("engine returned -> host done with it", "answered", "written"),
    ("host done -> the next one arrives", "written", "next arrived"),
    ("it arrived -> our route (HTTP parse)", "arrived", "request"),
    ("in all, request to next request", "request", "next request"),
]


def joined(lines: list[str], skip: int = 0) -> list[dict[str, float]]:
    """One dict of points per call that has both a host and a child line, in request order."""
    host: dict[str, dict[str, float]] = {}
    child: dict[str, dict[str, float]] = {}
    for line in lines:
        entry = json.loads(line)
        (host if entry.pop("side") == "host" else child)[entry["id"]] = entry
    calls = sorted((dict(host[i], **child[i]) for i in host if i in child), key=lambda c: c["request"])
    for this, following in zip(calls, calls[1:], strict=False):
        this["next request"] = following["request"]
        if "arrived" in following:
            this["next arrived"] = following["arrived"]
    return calls[skip:]


def legs(calls: list[dict[str, float]]) -> list[tuple[str, float, float]]:
    """(leg, p50 ms, p90 ms) for each leg of LEGS over `calls`."""
    rows = []
    for name, start, end in LEGS:
        spans = [(c[end] - c[start]) * 1e3 for c in calls if start in c and end in c]
        if len(spans) >= 2:
            rows.append((name, statistics.median(spans), statistics.quantiles(spans, n=10)[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["fresh", "persistent"], default="fresh")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--paced", action="store_true", help="20 ms between calls, as a person clicking")
    parser.add_argument("--lean", action="store_true", help="over the lean client (http.client), not requests")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "timeline.jsonl"
        flag = "--fresh" if args.mode == "fresh" else "--keep-server-running"
        server = Server.anvil_dev(make_app(Path(tmp)), flag, env={"ANVIL_DEV_TIMELINE": str(record)})
        try:
            session = requests.Session()
            lean = LeanClient(server.url) if args.lean else None
            warm = 50
            for _ in range(warm + args.calls):
                if lean is not None:
                    lean.call("add", 1, 2)
                else:
                    call(session, server.url, "add", 1, 2)
                if args.paced:
                    time.sleep(0.02)
            time.sleep(0.2)  # the last child's line
        finally:
            server.stop()
        calls = joined(record.read_text().splitlines(), skip=warm)
    client = "the lean client" if args.lean else "requests"
    print(f"{args.mode}, {'paced 20 ms' if args.paced else 'back to back'}, over {client}: {len(calls)} calls")
    for name, p50, p90 in legs(calls):
        print(f"  {name:<38} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms")
    faults = [c["faults_during"] for c in calls]
    before = [c["faults_before"] for c in calls]
    print(
        f"  page faults in the child: {statistics.median(before):.0f} before its call, "
        f"{statistics.median(faults):.0f} during it"
    )


if __name__ == "__main__":
    main()
