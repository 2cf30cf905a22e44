"""`make bench`: the engine's figures as ratios against baselines run side by side.

1. call latency: fresh mode, persistent mode, a bare Flask route (the floor) and a new `python`
   per call (what Anvil's App Server does), over the same HTTP client;
2. reload latency: from writing a changed module to the first call that returns the new result;
3. throughput with 8 concurrent callers;
4. memory: host, zygote, a warm worker, and the extra memory of each fresh child;
5. JSON passes per call: every json.dumps/json.loads in the host and in the engine's processes
   (`--json-passes [--root TREE]` runs only this, against another source tree if given).
Other benches (tables, media, uplink) live beside this file and run with `python bench/NAME.py`.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BENCH_MODULE,
    ROOT,
    Server,
    call,
    children,
    cmdline,
    free_port,
    latencies,
    make_app,
    memory_kb,
    summary,
)

N_CALLS = 300
N_SUBPROCESS = 40
N_RELOADS = 15
THROUGHPUT_S = 3.0
N_COUNTED = 20
JSON_ARG = "x" * 10_000  # big enough that a pass over the call's data stands out from small headers


def paced_latencies(url: str, n: int = 150, gap_s: float = 0.02) -> list[float]:
    """Calls 20 ms apart, as a person clicking or a page loading makes them: a fresh call then
    finds its spare child ready, where back-to-back calls measure how fast children can be made."""
    s = requests.Session()
    for _ in range(10):
        call(s, url, "add", 1, 2)
    out = []
    for _ in range(n):
        time.sleep(gap_s)
        t = time.perf_counter()
        call(s, url, "add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    return out


def throughput(url: str, callers: int = 8, seconds: float = THROUGHPUT_S) -> float:
    done = [0] * callers
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        s = requests.Session()
        while time.monotonic() < stop:
            call(s, url, "add", 1, 2)
            done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def reload_latency(app: Path, url: str, n: int = N_RELOADS) -> list[float]:
    s = requests.Session()
    module = app / "server_code" / "Bench.py"
    out = []
    for i in range(1, n + 1):
        time.sleep(0.2)  # let the previous reload settle, as between two saves
        start = time.perf_counter()
        module.write_text(BENCH_MODULE.replace("VERSION = 0", f"VERSION = {i}"))
        while call(s, url, "version") != i:
            if time.perf_counter() - start > 10:
                raise RuntimeError("reload not seen within 10 s")
        out.append((time.perf_counter() - start) * 1000)
    return out


def json_passes(root: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """JSON work per call of add(10 kB, 10 kB), per mode: json calls in the host and in the engine's
    processes (zygote, template, children), and how many of them went over the call's data."""
    out: dict[str, dict[str, Any]] = {}
    for mode in ("--fresh", "--keep-server-running"):
        app = make_app(tmp, "Json" + mode.strip("-").replace("-", "_"))
        log = tmp / f"json{mode}.log"
        env = {"PYTHONPATH": os.pathsep.join([str(root), str(ROOT / "bench" / "_jsoncount")]),
               "ANVIL_DEV_BENCH_JSON_LOG": str(log)}
        srv = Server.anvil_dev(app, mode, env=env, root=root)
        try:
            s = requests.Session()
            for _ in range(10):
                call(s, srv.url, "add", JSON_ARG, JSON_ARG)
            time.sleep(0.5)  # spares forked after the last call report in
            log.write_text("")
            for _ in range(N_COUNTED):
                call(s, srv.url, "add", JSON_ARG, JSON_ARG)
                time.sleep(0.05)  # each call's spare replacement is counted with it
            time.sleep(0.5)
            lines = [line.split() for line in log.read_text().splitlines()]
        finally:
            srv.stop()
        host = str(srv.proc.pid)
        counts: collections.Counter[str] = collections.Counter()
        sites: collections.Counter[str] = collections.Counter()
        every: collections.Counter[str] = collections.Counter()
        for pid, kind, size, site in lines:
            where = "host" if pid == host else "engine"
            counts[f"{where}_calls"] += 1
            every[f"{where} {kind} {site}"] += 1
            if int(size) >= len(JSON_ARG):
                counts[f"{where}_data_passes"] += 1
                sites[f"{where} {kind} {site}"] += 1
        out[mode.strip("-")] = {k: round(v / N_COUNTED, 2) for k, v in sorted(counts.items())}
        out[mode.strip("-")]["data_pass_sites"] = {k: round(v / N_COUNTED, 2) for k, v in sorted(sites.items())}
        out[mode.strip("-")]["all_sites"] = {k: round(v / N_COUNTED, 2) for k, v in sorted(every.items())}
    return out


def print_json_passes(passes: dict[str, dict[str, Any]], every: bool = False) -> None:
    print("5. JSON passes per call (json.dumps/loads calls; data passes: those over the 20 kB call or reply)")
    for mode, v in passes.items():
        data = v.get("host_data_passes", 0) + v.get("engine_data_passes", 0)
        print(f"   {mode:<20} data passes {data:4.1f}   json calls: host {v.get('host_calls', 0)}, "
              f"engine {v.get('engine_calls', 0)}")
        for site, n in v["all_sites" if every else "data_pass_sites"].items():
            print(f"      {n:4.1f}  {site}")


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f} ms  (n={s['n']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-passes", action="store_true", help="only count the JSON passes of a call (5.)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the source tree to count them in")
    parser.add_argument("--every-site", action="store_true", help="list every json call's site, not only data passes")
    args = parser.parse_args()
    if args.json_passes:
        with tempfile.TemporaryDirectory() as tmp:
            print_json_passes(json_passes(args.root.resolve(), Path(tmp)), every=args.every_site)
        return
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp))
        floor_port, sub_port = free_port(), free_port()
        floor = Server([sys.executable, str(ROOT / "bench" / "_floor_app.py"), str(floor_port)], floor_port)
        sub = Server([sys.executable, str(ROOT / "bench" / "_subprocess_app.py"), str(sub_port), str(app),
                      str(ROOT)], sub_port)
        fresh = Server.anvil_dev(app, "--fresh")
        warm = Server.anvil_dev(app, "--keep-server-running")
        try:
            print("1. call latency (same HTTP client, same function)")
            lat = {
                "floor": summary(latencies(floor.url, N_CALLS)),
                "fresh": summary(latencies(fresh.url, N_CALLS)),
                "persistent": summary(latencies(warm.url, N_CALLS)),
                "subprocess": summary(latencies(sub.url, N_SUBPROCESS, warmup=3)),
            }
            for k, v in lat.items():
                print(f"   {k:<11} {fmt(v)}")
            ratios = {
                "fresh/floor": lat["fresh"]["p50"] / lat["floor"]["p50"],
                "persistent/floor": lat["persistent"]["p50"] / lat["floor"]["p50"],
                "subprocess/fresh": lat["subprocess"]["p50"] / lat["fresh"]["p50"],
            }
            for k, v in ratios.items():
                print(f"   {k:<17} {v:6.2f}x")
            results["latency_ms"], results["latency_ratios"] = lat, ratios

            print("1b. paced call latency (calls 20 ms apart)")
            paced = {"floor": summary(paced_latencies(floor.url)), "fresh": summary(paced_latencies(fresh.url)),
                     "persistent": summary(paced_latencies(warm.url))}
            for k, v in paced.items():
                print(f"   {k:<11} {fmt(v)}   ({v['p50'] / paced['floor']['p50']:.2f}x floor)")
            results["paced_latency_ms"] = paced

            print("3. throughput, 8 concurrent callers (calls/s)")
            tp = {"floor": throughput(floor.url), "fresh": throughput(fresh.url),
                  "persistent": throughput(warm.url)}
            for k, v in tp.items():
                print(f"   {k:<11} {v:8.0f}/s  ({v / tp['floor']:.2f} of floor)")
            results["throughput_per_s"] = tp

            print("4. memory (KiB; USS = private memory, what a process adds)")
            mem = {"host": memory_kb(fresh.proc.pid)}
            zyg = [p for p in children(fresh.proc.pid) if "engine.zygote" in cmdline(p)]
            if zyg:
                mem["zygote"] = memory_kb(zyg[0])
                spares = children(zyg[0])
                if spares:
                    per = [memory_kb(p)["uss"] for p in spares]
                    mem["fresh_child_extra"] = {"uss": int(statistics.mean(per)), "rss": memory_kb(spares[0])["rss"]}
            wzyg = [p for p in children(warm.proc.pid) if "engine.zygote" in cmdline(p)]
            if wzyg and children(wzyg[0]):
                mem["warm_worker"] = memory_kb(children(wzyg[0])[0])
            for k, v in mem.items():
                print(f"   {k:<18} rss {v['rss']:7d}  uss {v['uss']:7d}")
            results["memory_kib"] = mem
        finally:
            for s in (floor, sub, fresh, warm):
                s.stop()

        print("2. reload latency (write a changed module -> first call returning the new result)")
        rl = {}
        for mode in ("--fresh", "--keep-server-running"):
            app2 = make_app(Path(tmp), "Reload" + mode.strip("-").replace("-", "_"))
            srv = Server.anvil_dev(app2, mode)
            try:
                rl[mode.strip("-")] = summary(reload_latency(app2, srv.url))
            finally:
                srv.stop()
        for k, v in rl.items():
            print(f"   {k:<20} {fmt(v)}")
        results["reload_ms"] = rl

        passes = json_passes(ROOT, Path(tmp))
        print_json_passes(passes)
        results["json_passes_per_call"] = passes
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"figures saved to {out / 'latest.json'}")


if __name__ == "__main__":
    main()
