"""A new `python` interpreter per call, importing the app's module: what Anvil's App Server does."""

from __future__ import annotations

import subprocess
import sys

from flask import Flask, Response, request
from werkzeug.serving import make_server

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import anvil.server, importlib
importlib.import_module("Bench")
msg = json.loads(sys.stdin.read())
fn = anvil.server.registrations[msg["command"]].fn
print(json.dumps({"response": fn(*msg["args"]), "objects": []}))
"""

app = Flask(__name__)
APP_DIR = ""
RUNTIME = ""


@app.get("/_/health")
def health() -> Response:
    return Response("{}", mimetype="application/json")


@app.post("/_/call")
def call() -> Response:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, APP_DIR + "/server_code"],
        input=request.get_data(),
        capture_output=True,
        env={"PYTHONPATH": RUNTIME + ":" + sys.argv[3]},
    )
    return Response(out.stdout, mimetype="application/json")


if __name__ == "__main__":
    APP_DIR, RUNTIME = sys.argv[2], sys.argv[3] + "/anvil_dev/runtime"
    make_server("127.0.0.1", int(sys.argv[1]), app, threaded=True).serve_forever()
