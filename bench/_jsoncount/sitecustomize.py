"""Bench only (`bench/run.py --json-passes`): record every json.dumps/json.loads in every process of a serve,
and every JSONEncoder.encode called other than through json.dumps (an encoder built once, as
`anvil_dev.engine.frames` keeps, is one pass as well).

On PYTHONPATH only for that run; each call appends "pid kind bytes module:function" to the file
named by ANVIL_DEV_BENCH_JSON_LOG. Forked children inherit the patched module from the zygote.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

_LOG = os.environ.get("ANVIL_DEV_BENCH_JSON_LOG")


def _record(kind: str, size: int) -> None:
    frame = sys._getframe(2)
    line = f"{os.getpid()} {kind} {size} {frame.f_globals.get('__name__')}:{frame.f_code.co_name}\n"
    fd = os.open(str(_LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


if _LOG:
    _dumps, _loads = json.dumps, json.loads

    def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
        out = _dumps(obj, *args, **kwargs)
        _record("dumps", len(out))
        return out

    def loads(s: Any, *args: Any, **kwargs: Any) -> Any:
        _record("loads", len(s))
        return _loads(s, *args, **kwargs)

    _encode = json.JSONEncoder.encode

    def encode(self: json.JSONEncoder, o: Any) -> str:
        out = _encode(self, o)
        if sys._getframe(1).f_code is not _dumps.__code__:  # else json.dumps records it
            _record("dumps", len(out))
        return out

    json.dumps, json.loads = dumps, loads  # type: ignore[assignment]
    json.JSONEncoder.encode = encode  # type: ignore[method-assign]
