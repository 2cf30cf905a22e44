"""anvil_dev.tracebacks: frames taken from a real traceback, and printed as Python prints them."""

from __future__ import annotations

import os
import sys

from anvil_dev import tracebacks


def _recurse(n: int) -> int:
    return _recurse(n + 1)


def test_a_deep_traceback_keeps_its_ends_and_says_how_many_frames_were_left_out() -> None:
    try:
        _recurse(0)
    except RecursionError as e:
        frames = tracebacks.extract(e.__traceback__, [(os.path.dirname(__file__), "tests/")])
        depth = len(__import__("traceback").extract_tb(e.__traceback__))
    assert depth > tracebacks.MAX_FRAMES and len(frames) == tracebacks.MAX_FRAMES + 1
    omitted = [f for f in frames if "omitted" in f]
    assert omitted == [{"omitted": depth - tracebacks.MAX_FRAMES}]
    assert frames[0]["name"] == "test_a_deep_traceback_keeps_its_ends_and_says_how_many_frames_were_left_out"
    assert frames[-1] == {
        "file": "tests/" + os.path.basename(__file__),
        "line": 12,
        "name": "_recurse",
        "source": "return _recurse(n + 1)",
        "kind": "app",
    }
    lines = tracebacks.format_lines({"type": "RecursionError", "message": "too deep"}, frames)
    assert lines[0] == tracebacks.HEADER and lines[-1] == "RecursionError: too deep"
    assert f"  [... {depth - tracebacks.MAX_FRAMES} frames left out ...]" in lines


def test_frames_outside_the_app_are_hidden_between_and_after_its_own() -> None:
    frames = [
        {
            "file": "/x/anvil_dev/runtime/anvil/_engine_hooks.py",
            "line": 1,
            "name": "_run",
            "source": "",
            "kind": "anvil_dev",
        },
        {"file": "server_code/A.py", "line": 3, "name": "f", "source": "g()", "kind": "app"},
        {"file": sys.prefix + "/lib/json/__init__.py", "line": 9, "name": "loads", "source": "", "kind": "library"},
        {"file": "server_code/B.py", "line": 5, "name": "g", "source": "json.loads(x)", "kind": "app"},
        {"file": sys.prefix + "/lib/json/decoder.py", "line": 7, "name": "decode", "source": "", "kind": "library"},
        {"file": "/x/anvil_dev/x.py", "line": 7, "name": "h", "source": "", "kind": "anvil_dev"},
    ]
    error = {"type": "ValueError", "message": "bad"}
    assert tracebacks.format_lines(error, frames, hint="--all") == [
        tracebacks.HEADER,
        '  File "server_code/A.py", line 3, in f',
        "    g()",
        "  [1 frame of libraries hidden: --all]",
        '  File "server_code/B.py", line 5, in g',
        "    json.loads(x)",
        "  [2 frames of anvil-dev and libraries hidden: --all]",
        "ValueError: bad",
    ]
    assert len(tracebacks.format_lines(error, frames, internal=True)) == 1 + 6 + 2 + 1  # every frame, two sources


def test_the_wire_trace_alone_is_shown_outermost_first() -> None:
    error = {"type": "KeyError", "message": "'k'", "trace": [["server_code/In.py", 2], ["server_code/Out.py", 8]]}
    assert tracebacks.format_lines(error, None) == [
        tracebacks.HEADER,
        '  File "server_code/Out.py", line 8',
        '  File "server_code/In.py", line 2',
        "KeyError: 'k'",
    ]
    assert tracebacks.format_lines({"type": "TimeoutError", "message": "", "trace": []}, None) == ["TimeoutError"]
