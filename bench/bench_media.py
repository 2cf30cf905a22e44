"""Media figures: a 100 MB media round trip, its time and the peak memory (RSS) of host and worker.

Starts `anvil-dev serve` on a temporary app and sends a 100 MB file to server functions that read
it (streamed through anvil.media.open), pass it back unchanged, and build one of their own. The
worker's peak is read by the server function itself (VmHWM, which counts the pages it shares with
the zygote); the host's from /proc after the run. Linux only: `python bench/bench_media.py [--mb N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from anvil_dev.client import Media, connect

from _harness import Server, children, cmdline, make_app, memory_kb

MB = 1 << 20
BLOCK = bytes(range(256)) * 4096

MODULE = textwrap.dedent("""
    import hashlib

    import anvil
    import anvil.media
    import anvil.server

    BLOCK = bytes(range(256)) * 4096

    def peak_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))

    @anvil.server.callable
    def read(media):
        digest = hashlib.sha256()
        with anvil.media.open(media) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return [digest.hexdigest(), peak_mb()]

    @anvil.server.callable
    def echo(media):
        return [media, peak_mb()]

    @anvil.server.callable
    def make(n):
        with anvil.media.TempFile() as path:
            with open(path, "wb") as f:
                for i in range(0, n, len(BLOCK)):
                    f.write(BLOCK[:n - i])
            return [anvil.media.from_file(path, "application/octet-stream", "made.bin"), peak_mb()]
""")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100, help="media size in MiB")
    size = parser.parse_args().mb * MB
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), "MediaBench")
        (app / "server_code" / "MediaBench.py").write_text(MODULE)
        source = Path(tmp) / "big.bin"
        with open(source, "wb") as f:
            for i in range(0, size, len(BLOCK)):
                f.write(BLOCK[: size - i])
        expected = sha256(source)
        server = Server.anvil_dev(app)
        try:
            host_before = peak_rss_mb(server.proc.pid)
            zygotes = [p for p in children(server.proc.pid) if "engine.zygote" in cmdline(p)]
            zygote_rss = memory_kb(zygotes[0])["rss"] / 1024 if zygotes else 0.0
            conn = connect(server.url)
            t0 = time.perf_counter()
            digest, read_peak = conn.call("read", Media.from_file(str(source)))
            t_up = time.perf_counter() - t0
            assert digest == expected, "the server read different bytes"

            t0 = time.perf_counter()
            back, echo_peak = conn.call("echo", Media.from_file(str(source)))
            back.write_to_file(str(Path(tmp) / "back.bin"))
            t_round = time.perf_counter() - t0
            assert sha256(Path(tmp) / "back.bin") == expected, "the round trip changed the bytes"

            t0 = time.perf_counter()
            made, make_peak = conn.call("make", size)
            made.write_to_file(str(Path(tmp) / "made.bin"))
            t_down = time.perf_counter() - t0
            assert sha256(Path(tmp) / "made.bin") == expected, "the server made different bytes"
            host_peak = peak_rss_mb(server.proc.pid)
        finally:
            server.stop()
    client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mb = size / MB
    print(f"media round trip, {mb:.0f} MiB (peak RSS in MiB; a copy of the media would be {mb:.0f})")
    rows = [
        ("upload + read in a worker", t_up, mb, read_peak),
        ("round trip (echo)", t_round, 2 * mb, echo_peak),
        ("made in a worker + download", t_down, mb, make_peak),
    ]
    for what, seconds, moved, peak in rows:
        print(f"  {what:<28} {seconds:6.2f} s  {moved / seconds:6.0f} MiB/s   worker peak {peak:6.1f}")
    print(
        f"  host peak {host_peak:.1f} (before the media: {host_before:.1f}); zygote rss {zygote_rss:.1f}; "
        f"this client's peak {client_peak:.1f}"
    )


if __name__ == "__main__":
    main()
