"""`make bench`: the engine's figures as ratios against baselines run side by side.

Baselines in the same run: a bare Flask route (the floor), a new `python` per call (what Anvil's
App Server does), and the previous anvil-dev (`--baseline REF`, main by default: a temporary git
worktree, removed afterwards; `--baseline ''` for none), marked "@base".
1. call latency: back to back and paced (a person clicking), over the same HTTP client (`requests`),
   and back to back for a larger result (500 dicts); 1d, back to back over a lean client
   (`LeanClient`, http.client alone), where the client's own time is a far smaller part of a call;
2. reload latency: from writing a changed module to the first call that returns the new result,
   and how many reloads an editor's save in several steps causes;
3. throughput with 8 concurrent callers (a process each, so the client's GIL is not the limit); 3b,
   over the lean client;
4. memory: host, zygote, a warm worker, and the extra memory of each fresh child;
5. JSON passes per call: every json.dumps/json.loads in the host and in the engine's processes
   (`--json-passes [--root TREE]` runs only this, against another source tree if given);
6. cold start: launching `anvil-dev serve` to its first answered call, the scaffold and a 20-module app;
7. soak: 8 callers until 100,000 calls are made (or `--soak-s` seconds pass) per mode; memory
   before and after, and how fast it grew over the last quarter of the calls (bytes a call).
Targets (issue 19) are printed beside the figures; no test asserts a time.
Other benches (tables, media, uplink) live beside this file and run with `python bench/NAME.py`;
`bench/timeline.py` breaks one call's time into its legs (host, engine, child, client), and
`bench/bench_anvil_persistent.py` times Anvil's own persistent worker beside ours.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    BENCH_MODULE,
    ROOT,
    LeanClient,
    Server,
    balanced_orders,
    baseline_tree,
    call,
    children,
    cmdline,
    cold_start,
    compile_bytecode,
    describe_tree,
    free_port,
    latencies,
    lean_latencies,
    make_app,
    make_big_app,
    memory_kb,
    ratio_interval,
    summary,
    throughput,
    tree_rss_kb,
)

# Calls per server, in 30 rounds of turns: enough rounds for a ratio's interval (`ratio_interval`).
N_CALLS = 900
N_PACED = 450
N_ROWS = 300
N_RELOADS = 15
N_COLD = 5
THROUGHPUT_S = 3.0
N_COUNTED = 20
ROWS = 500  # 1c: a result the size of a page of table rows
JSON_ARG = "x" * 10_000  # big enough that a pass over the call's data stands out from small headers


def paced_latencies(url: str, n: int = 150, gap_s: float = 0.02, warmup: int = 10) -> list[float]:
    """Calls 20 ms apart, as a person clicking or a page loading makes them: a fresh call then
    finds its spare child ready, where back-to-back calls measure how fast children can be made."""
    s = requests.Session()
    for _ in range(warmup):
        call(s, url, "add", 1, 2)
    out = []
    for _ in range(n):
        time.sleep(gap_s)
        t = time.perf_counter()
        call(s, url, "add", 1, 2)
        out.append((time.perf_counter() - t) * 1000)
    return out


def interleaved(
    servers: dict[str, Server], n: int, block: int, measure: Callable[..., list[float]]
) -> dict[str, list[list[float]]]:
    """`n` timings of each server, taken in turns of `block` calls, one list a turn (each round
    gives each server one turn): load from elsewhere on the machine (two shared cores) then falls
    on every server alike. The subprocess baseline gets a tenth as many.
    The turns' order changes each round so that each server follows each other one equally often
    (`balanced_orders`): the work a fresh or subprocess server leaves behind, exits and forks,
    lands on the next in line. (Reversing the order each round, as before, had "fresh" follow the
    subprocess baseline in half its turns and "fresh@base" never.)"""
    out: dict[str, list[list[float]]] = {k: [] for k in servers}
    turns = list(servers.items())
    orders = balanced_orders(len(turns))
    for i in range(max(1, n // block)):
        for k, srv in (turns[j] for j in orders[i % len(orders)]):
            count = max(1, block // 10) if k == "subprocess" else block
            out[k].append(measure(srv.url, count, warmup=1 if k == "subprocess" else 5))
    return out


def against_floor(turns: dict[str, list[list[float]]], goals: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each server's p50 and p95, and their ratio to the floor's p50 with its interval within the run
    (`ratio_interval`), printed with the target where `goals` has one; then each mode against its
    @base, when the run has one, so that a change is told from the run's noise."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in turns.items():
        s: dict[str, Any] = summary([x for turn in v for x in turn])
        ratio = s["p50"] / statistics.median(x for turn in turns["floor"] for x in turn)
        low, high = (ratio, ratio) if k == "floor" else ratio_interval(v, turns["floor"])
        s.update(ratio=ratio, interval=[low, high])
        goal = goals.get(k)
        spread = "" if k == "floor" else f" ({low:.2f}-{high:.2f})"
        verdict = target_within(ratio, low, high, goal) if goal else ""
        print(f"   {k:<16} {fmt(s)}  {ratio:6.2f}x floor{spread:<14}  {verdict}")
        out[k] = s
    for k in [k for k in turns if f"{k}@base" in turns]:
        ratio = out[k]["p50"] / out[f"{k}@base"]["p50"]
        low, high = ratio_interval(turns[k], turns[f"{k}@base"])
        out[k]["against_base"] = {"ratio": ratio, "interval": [low, high]}
        print(f"   {k + ' / ' + k + '@base':<32} {ratio:6.2f}x ({low:.2f}-{high:.2f})")
    return out


def throughput_in_turns(servers: dict[str, Server], lean: bool = False) -> dict[str, float]:
    """Each server's calls a second with 8 callers (`throughput`), over three turns each of a third of
    THROUGHPUT_S, so that a burst of load elsewhere hits every server."""
    tp = dict.fromkeys(servers, 0.0)
    for _ in range(3):
        for k, srv in servers.items():
            tp[k] += throughput([srv.url], seconds=THROUGHPUT_S / 3, lean=lean) / 3
    return tp


def reload_latency(
    app: Path, url: str, n: int = N_RELOADS, save: Callable[[Path, str], None] | None = None, start_at: int = 1
) -> list[float]:
    s = requests.Session()
    module = app / "server_code" / "Bench.py"
    out = []
    for i in range(start_at, start_at + n):
        time.sleep(0.2)  # let the previous reload settle, as between two saves
        start = time.perf_counter()
        (save or write_at_once)(module, BENCH_MODULE.replace("VERSION = 0", f"VERSION = {i}"))
        while call(s, url, "version") != i:
            if time.perf_counter() - start > 10:
                raise RuntimeError("reload not seen within 10 s")
        out.append((time.perf_counter() - start) * 1000)
    return out


def write_at_once(path: Path, text: str) -> None:
    path.write_text(text)


def write_in_chunks(path: Path, text: str) -> None:
    """An editor writing the file in place in several writes (truncate, write, flush, write, close)."""
    with open(path, "w") as f:
        half = len(text) // 2
        f.write(text[:half])
        f.flush()
        time.sleep(0.003)
        f.write(text[half:])


def write_atomic(path: Path, text: str) -> None:
    """An editor saving to a temporary file and renaming it over the original (VS Code, Emacs, gedit)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_vim(path: Path, text: str) -> None:
    """vim's default save: the original renamed to a backup, a new file written, the backup deleted."""
    backup = path.with_name(path.name + "~")
    os.replace(path, backup)
    path.write_text(text)
    backup.unlink()


SAVES: dict[str, Callable[[Path, str], None]] = {
    "in chunks": write_in_chunks,
    "temp + rename": write_atomic,
    "vim backup": write_vim,
}


def reloads_per_save(app: Path, url: str, log: Path, n: int = 5) -> dict[str, float]:
    """Reload lines the server prints per save, for each way an editor writes a file: 1.0 is right."""
    out = {}
    at = 1000
    for name, save in SAVES.items():
        # The line of the reload before is printed once it is done, which can be after its first
        # call saw the new code: wait for it, or it is counted against this way of saving.
        time.sleep(0.3)
        before = log.read_text().count("reloaded ")
        reload_latency(app, url, n, save=save, start_at=at)
        at += n
        time.sleep(0.3)  # a late second reload would show up now
        out[name] = (log.read_text().count("reloaded ") - before) / n
    return out


def json_passes(root: Path, tmp: Path) -> dict[str, dict[str, Any]]:
    """JSON work per call of add(10 kB, 10 kB), per mode: json calls in the host and in the engine's
    processes (zygote, template, children), and how many of them went over the call's data."""
    out: dict[str, dict[str, Any]] = {}
    for mode in ("--fresh", "--keep-server-running"):
        app = make_app(tmp, "Json" + mode.strip("-").replace("-", "_"))
        log = tmp / f"json{mode}.log"
        env = {
            "PYTHONPATH": os.pathsep.join([str(root), str(ROOT / "bench" / "_jsoncount")]),
            "ANVIL_DEV_BENCH_JSON_LOG": str(log),
        }
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
        print(
            f"   {mode:<20} data passes {data:4.1f}   json calls: host {v.get('host_calls', 0)}, "
            f"engine {v.get('engine_calls', 0)}"
        )
        for site, n in v["all_sites" if every else "data_pass_sites"].items():
            print(f"      {n:4.1f}  {site}")


def fmt(s: dict[str, float]) -> str:
    return f"p50 {s['p50']:7.2f} ms  p95 {s['p95']:7.2f} ms  (n={s['n']})"


def target(value: float, limit: float, higher_is_better: bool = False) -> str:
    ok = value >= limit if higher_is_better else value <= limit
    return f"[target {'>=' if higher_is_better else '<='} {limit:g}: {'met' if ok else 'MISSED'}]"


def target_within(ratio: float, low: float, high: float, limit: float) -> str:
    """A latency ratio's verdict (lower is better), said outright only where its interval within the
    run lies on one side of the limit."""
    if high <= limit:
        return f"[target <= {limit:g}: met]"
    if low > limit:
        return f"[target <= {limit:g}: MISSED]"
    at_p50 = "met" if ratio <= limit else "missed"
    return f"[target <= {limit:g}: {at_p50} at p50; the interval spans it]"


def soak(url: str, pid: int, seconds: float, max_calls: int = 100_000, callers: int = 8) -> dict[str, Any]:
    """8 callers until `max_calls` are made or `seconds` pass; RSS of the host and engine before and after.

    RSS is sampled every second while the calls run, with the calls made so far (not after them:
    the callers' connections then close, and what they held is freed), so that growth can be told
    from warm-up: a leak keeps growing in the last quarter of the calls, where caches, rings and the
    allocator's arenas have filled in the first. A call that fails stops the soak (its verdict is
    then void): a server that leaks until it dies must not read as one that stopped growing.
    """
    for _ in range(200):
        call(requests.Session(), url, "add", 1, 2)
    time.sleep(0.5)
    before = tree_rss_kb(pid)
    done = [0] * callers
    errors: list[str] = []
    stop = time.monotonic() + seconds
    samples: list[dict[str, int]] = [{"calls": 0, **before}]
    finished = threading.Event()

    def run(i: int) -> None:
        s = requests.Session()
        try:
            while time.monotonic() < stop and sum(done) < max_calls and not errors:
                call(s, url, "add", 1, 2)
                done[i] += 1
        except Exception as e:  # noqa: BLE001 - reported with the figures, and the soak stops
            errors.append(f"{type(e).__name__}: {e}")

    def sample() -> None:
        while not finished.wait(1.0):
            samples.append({"calls": sum(done), **tree_rss_kb(pid)})

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    finished.set()
    sampler.join()
    time.sleep(0.5)  # the last spares report in
    after = tree_rss_kb(pid)
    calls = sum(done)
    return {
        "calls": calls,
        "max_calls": max_calls,
        "errors": errors,
        "before": before,
        "after": after,
        "samples": samples,
    }


# A leak of a pointer's worth a call (one object kept in a list) is 8 bytes. Without one, the host
# still settles for a while: over the four quarters of 250,000 persistent calls its RSS grew 12.9,
# 1.4, 0.0 and 0.1 bytes a call (slopes; +4 KiB from call 130,000 to 240,000), and over the second
# half of 100,000 calls 1.2 (fresh) and 2.3 (persistent), the last quarter 0.7 and 1.1. So the
# last quarter is judged.
SOAK_LIMIT_B_PER_CALL = 2.0
SOAK_JUDGED_FROM = 0.75  # of the calls made


def soak_growth(result: dict[str, Any], key: str) -> tuple[float | None, str]:
    """How one RSS figure (`host`; `zygote_children_rss`: the template, or the persistent worker)
    grew over the soak's last quarter, in bytes a call (the least-squares slope of its samples
    there, None when it cannot be judged), and the verdict to print."""
    if result["errors"]:
        return None, f"void: a call failed ({result['errors'][0][:80]})"
    judged = [s for s in result["samples"] if s["calls"] >= result["calls"] * SOAK_JUDGED_FROM]
    if any(not s.get(key) for s in judged) or len({s.get("zygote_children") for s in judged}) > 1:
        return None, "void: a process was missing or replaced in the last quarter"
    if len(judged) < 3 or judged[-1]["calls"] == judged[0]["calls"]:
        return None, "void: too few samples"
    xs, ys = [s["calls"] for s in judged], [s[key] * 1024 for s in judged]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    if result["calls"] < result["max_calls"]:
        return slope, f"no verdict: {result['calls']:,} of {result['max_calls']:,} calls in the time allowed"
    ok = slope <= SOAK_LIMIT_B_PER_CALL
    return slope, f"[target <= {SOAK_LIMIT_B_PER_CALL:g} B/call: {'met' if ok else 'MISSED'}]"


def engine_memory(pid: int) -> dict[str, dict[str, int]]:
    mem = {"host": memory_kb(pid)}
    zyg = [p for p in children(pid) if "engine.zygote" in cmdline(p)]
    if zyg:
        mem["zygote"] = memory_kb(zyg[0])
        kids = children(zyg[0])
        spares = [g for k in kids for g in children(k)]  # fresh children are forked by the template
        if spares:
            mem["template"] = memory_kb(kids[0])
            per = [memory_kb(p)["uss"] for p in spares]
            mem["fresh_spare_each"] = {"uss": int(statistics.mean(per)), "rss": memory_kb(spares[0])["rss"]}
        elif kids:
            mem["warm_worker"] = memory_kb(kids[0])
    return mem


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-passes", action="store_true", help="only count the JSON passes of a call (5.)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the source tree to count them in")
    parser.add_argument("--every-site", action="store_true", help="list every json call's site, not only data passes")
    parser.add_argument("--baseline", default="main", help="git ref of the previous anvil-dev to run beside ('' none)")
    parser.add_argument("--soak-s", type=float, default=420.0, help="most seconds of the soak in each mode (0: none)")
    parser.add_argument(
        "--only",
        default="calls,reload,cold,soak,json",
        help="comma-separated sections to run: calls (1, 3, 4), reload, cold, soak, json",
    )
    args = parser.parse_args()
    if args.json_passes:
        with tempfile.TemporaryDirectory() as tmp:
            print_json_passes(json_passes(args.root.resolve(), Path(tmp)), every=args.every_site)
        return
    only = set(args.only.split(","))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name, baseline_tree(args.baseline) as base:
        tmp = Path(tmp_name)
        compile_bytecode(ROOT)  # the baseline's tree is compiled alike
        print("anvil-dev's bytecode compiled in each tree compared, as an installed wheel has it")
        if base is not None:
            print(f"baseline (@base): {args.baseline} = {describe_tree(base)}")
            results["baseline"] = describe_tree(base)
        if "calls" in only:
            app = make_app(tmp)
            floor_port, sub_port = free_port(), free_port()
            servers: dict[str, Server] = {}
            try:
                servers["floor"] = Server(
                    [sys.executable, str(ROOT / "bench" / "_floor_app.py"), str(floor_port)], floor_port
                )
                servers["subprocess"] = Server(
                    [sys.executable, str(ROOT / "bench" / "_subprocess_app.py"), str(sub_port), str(app), str(ROOT)],
                    sub_port,
                )
                # An app directory each: serve holds a lock on its app, so that two never share one.
                servers["fresh"] = Server.anvil_dev(make_app(tmp, "Fresh"), "--fresh")
                servers["persistent"] = Server.anvil_dev(make_app(tmp, "Persistent"), "--keep-server-running")
                if base is not None:
                    servers["fresh@base"] = Server.anvil_dev(make_app(tmp, "FreshBase"), "--fresh", root=base)
                    servers["persistent@base"] = Server.anvil_dev(
                        make_app(tmp, "PersistentBase"), "--keep-server-running", root=base
                    )
                modes = [k for k in servers if k not in ("floor", "subprocess")]

                print("1. call latency, back to back (same HTTP client, same function; servers take turns in blocks)")
                lat = against_floor(
                    interleaved(servers, N_CALLS, block=30, measure=latencies), {"fresh": 2.5, "persistent": 1.1}
                )
                print(f"   subprocess/fresh {lat['subprocess']['p50'] / lat['fresh']['p50']:6.2f}x")
                results["latency_ms"] = lat

                print("1b. paced call latency (calls 20 ms apart)")
                paced_servers = {k: servers[k] for k in ["floor", *modes]}
                paced = against_floor(
                    interleaved(paced_servers, N_PACED, block=15, measure=paced_latencies),
                    {"fresh": 1.3, "persistent": 1.1},
                )
                results["paced_latency_ms"] = paced

                print(f"1c. a larger result, back to back: {ROWS} dicts of four fields (~34 kB of JSON)")
                rows_servers = {k: servers[k] for k in ["floor", *modes]}

                def rows_latencies(url: str, n: int, warmup: int) -> list[float]:
                    return latencies(url, n, warmup=warmup, command="rows", args=(ROWS,))

                big = against_floor(interleaved(rows_servers, N_ROWS, block=10, measure=rows_latencies), {})
                results["rows_latency_ms"] = big

                print(
                    "1d. back to back over a lean HTTP client (http.client alone, the cookie as a header; no target:"
                    " the targets were set over `requests`, whose own ~1 ms a call is here left out)"
                )
                lean_servers = {k: servers[k] for k in ["floor", *modes]}
                clients = {srv.url: LeanClient(srv.url) for srv in lean_servers.values()}

                def lean_turn(url: str, n: int, warmup: int) -> list[float]:
                    return lean_latencies(clients[url], n, warmup)

                leaned = against_floor(interleaved(lean_servers, N_CALLS, block=30, measure=lean_turn), {})
                for client in clients.values():
                    client.close()
                results["lean_latency_ms"] = leaned

                print("3. throughput, 8 concurrent callers, a process each (calls/s)")
                tp = throughput_in_turns({k: servers[k] for k in ["floor", *modes]})
                for k, v in tp.items():
                    goal = {"fresh": 0.5, "persistent": 0.9}.get(k)
                    print(
                        f"   {k:<16} {v:8.0f}/s  {v / tp['floor']:5.2f} of floor  "
                        f"{target(v / tp['floor'], goal, True) if goal else ''}"
                    )
                results["throughput_per_s"] = tp

                print("3b. throughput, 8 callers over the lean HTTP client (calls/s; no target, as 1d)")
                tp_lean = throughput_in_turns({k: servers[k] for k in ["floor", *modes]}, lean=True)
                for k, v in tp_lean.items():
                    print(f"   {k:<16} {v:8.0f}/s  {v / tp_lean['floor']:5.2f} of floor")
                results["lean_throughput_per_s"] = tp_lean

                print("4. memory (KiB; USS = private memory, what a process adds)")
                mem = {k: engine_memory(servers[k].proc.pid) for k in modes}
                for k, m in mem.items():
                    for role, v in m.items():
                        print(f"   {k + ' ' + role:<34} rss {v['rss']:7d}  uss {v['uss']:7d}")
                results["memory_kib"] = mem
            finally:
                for srv in servers.values():
                    srv.stop()

        if "reload" in only:
            print("2. reload latency (write a changed module -> first call returning the new result)")
            rl: dict[str, Any] = {}
            for tree, suffix in ((ROOT, ""), (base, "@base")):
                if tree is None:
                    continue
                for mode in ("--fresh", "--keep-server-running"):
                    name = mode.strip("-") + suffix
                    app2 = make_app(tmp, "Reload" + mode.strip("-").replace("-", "_") + suffix.strip("@"))
                    log = tmp / f"reload-{name}.log"
                    srv = Server.anvil_dev(app2, mode, root=tree, stderr=log)
                    try:
                        rl[name] = summary(reload_latency(app2, srv.url))
                        rl[name]["reloads_per_save"] = reloads_per_save(app2, srv.url, log)
                    finally:
                        srv.stop()
            for k, v in rl.items():
                per = ", ".join(f"{s} {n:.1f}" for s, n in v["reloads_per_save"].items())
                print(f"   {k:<30} {fmt(v)}  {target(v['p50'], 75)}  reloads per save: {per}")
            results["reload_ms"] = rl

        if "cold" in only:
            print("6. cold start (launch `anvil-dev serve` -> first answered call; in turns)")
            apps = {"scaffold": make_big_app(tmp, 1), "20 modules": make_big_app(tmp, 20)}
            cs: dict[str, Any] = {}
            trees = [(tree, suffix) for tree, suffix in ((ROOT, ""), (base, "@base")) if tree is not None]
            for _ in range(N_COLD):  # in turns, so that load elsewhere falls on both trees alike
                for tree, suffix in trees:
                    for app_name, app_path in apps.items():
                        for mode in ("--fresh", "--keep-server-running"):
                            key = f"{app_name} {mode.strip('-')}{suffix}"
                            cs.setdefault(key, []).extend(cold_start(app_path, mode, root=tree, n=1))
            cs = {k: summary(v) for k, v in cs.items()}
            for k, v in cs.items():
                print(f"   {k:<38} {fmt(v)}  {target(v['p50'], 500) if 'scaffold' in k else ''}")
            results["cold_start_ms"] = cs

        if "soak" in only and args.soak_s > 0:
            print(f"7. soak: 8 callers, 100,000 calls (at most {args.soak_s:g} s); RSS before -> after, growth")
            sk: dict[str, Any] = {}
            for mode in ("--fresh", "--keep-server-running"):
                app3 = make_app(tmp, "Soak" + mode.strip("-").replace("-", "_"))
                srv = Server.anvil_dev(app3, mode)
                try:
                    sk[mode.strip("-")] = soak(srv.url, srv.proc.pid, args.soak_s)
                finally:
                    srv.stop()
            for k, v in sk.items():
                b, a = v["before"], v["after"]
                print(f"   {k:<20} {v['calls']:6d} calls")
                engine = "worker" if k == "keep-server-running" else "template"
                for key, label in (("host", "host"), ("zygote_children_rss", engine)):
                    slope, verdict = soak_growth(v, key)
                    growth = "" if slope is None else f"last quarter {slope:+.2f} B/call  "
                    print(f"     {label:<8} {b.get(key)} -> {a.get(key)} KiB  {growth}{verdict}")
                print(
                    f"     zygote {b.get('zygote')} -> {a.get('zygote')}  engine children "
                    f"{b.get('zygote_children')}+{b.get('template_children')} -> "
                    f"{a.get('zygote_children')}+{a.get('template_children')}"
                )
            results["soak"] = sk

        if "json" in only:
            passes = {"": json_passes(ROOT, tmp)}
            if base is not None:
                passes["@base"] = json_passes(base, tmp)
            for suffix, p in passes.items():
                print_json_passes({k + suffix: v for k, v in p.items()})
            results["json_passes_per_call"] = passes
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"figures saved to {out / 'latest.json'}")


if __name__ == "__main__":
    main()
