"""The floor: the same function in a bare Flask route, over the same HTTP client and server (werkzeug
with anvil-dev's keep-alive request handler, as `anvil-dev serve` runs it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from flask import Flask, Response, request
from werkzeug.serving import make_server

from anvil_dev.host.keepalive import KeepAliveRequestHandler


def add(a: int, b: int) -> int:
    return a + b


def rows(n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"row {i}", "score": i * 1.5, "tags": ["a", "b"]} for i in range(n)]


FUNCTIONS: dict[str, Callable[..., object]] = {"add": add, "rows": rows}


app = Flask(__name__)


@app.get("/_/health")
def health() -> Response:
    return Response("{}", mimetype="application/json")


@app.post("/_/call")
def call() -> Response:
    msg = json.loads(request.get_data())
    result = FUNCTIONS[msg["command"]](*msg["args"])
    return Response(json.dumps({"response": result, "objects": []}), mimetype="application/json")


if __name__ == "__main__":
    make_server(
        "127.0.0.1", int(sys.argv[1]), app, threaded=True, request_handler=KeepAliveRequestHandler
    ).serve_forever()
