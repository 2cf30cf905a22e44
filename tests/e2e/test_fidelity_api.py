"""The probe: every public name of real Anvil's server-side `anvil` package, looked up inside a server
function of a real `anvil-dev serve`, with its call signature and its base classes.

tests/data/anvil_api.json lists the names, derived from anvil-works/anvil-runtime v1.17.0
(downlink/python/anvil/, with services/anvil/ linked in) by tests/data/make_anvil_api.py; the server
function runs that same script's `public_names` over our runtime, so both sides are described alike.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import ServerProcess, write_module

DATA = Path(__file__).resolve().parent.parent / "data"
ANVIL_API = json.loads((DATA / "anvil_api.json").read_text())["modules"]

PROBE = """
    import importlib
    import runpy

    import anvil.server

    _describe = runpy.run_path({script!r})

    @anvil.server.callable
    def probe(modules):
        out = {{}}
        for name in modules:
            try:
                mod = importlib.import_module(name)
            except Exception as e:
                out[name] = {{"error": f"{{type(e).__name__}}: {{e}}"}}
                continue
            out[name] = {{"names": _describe["public_names"](mod), "dir": sorted(dir(mod))}}
        return out
"""


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from anvil_dev.scaffold import scaffold

    app = scaffold(tmp_path_factory.mktemp("probe") / "ProbeApp")
    write_module(app, "Probe", PROBE.format(script=str(DATA / "make_anvil_api.py")))
    server = ServerProcess(app)
    try:
        yield server.client().call("probe", sorted(ANVIL_API))
    finally:
        server.stop()


def _params(sig: str) -> list[inspect.Parameter] | None:
    try:
        ns: dict[str, Any] = {}
        exec(f"def f{sig}: pass", ns)  # a signature string from the data file or our own runtime
        return list(inspect.signature(ns["f"]).parameters.values())
    except Exception:  # noqa: BLE001 - a default whose repr is no expression: compare the text instead
        return None


def same_signature(mine: str | None, theirs: str) -> bool:
    """Equal, or where Anvil's is a wrapper's `(name, *args, **kws)`: the same leading parameters, and
    ours takes at least what the wrapper passes on (more positional or keyword parameters)."""
    if mine == theirs:
        return True
    a, b = _params(theirs), _params(mine or "()")
    if a is None or b is None:
        return False
    var = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    head = [p for p in a if p.kind not in var]
    if len(head) == len(a) or [(p.name, p.default) for p in b[: len(head)]] != [(p.name, p.default) for p in head]:
        return False
    # A wrapper that takes **kws only (no *args) forwards any keyword: ours must take any keyword too.
    if [p.kind for p in a if p.kind in var] == [inspect.Parameter.VAR_KEYWORD] and not any(
        p.kind == inspect.Parameter.VAR_KEYWORD for p in b
    ):
        return False
    return True


def differences(module: str, ours: dict[str, Any]) -> list[str]:
    """What differs from Anvil in one module: missing names, other signatures, missing base classes."""
    found = ours[module]
    if "error" in found:
        return [f"import {module}: {found['error']}"]
    problems = []
    for name, theirs in ANVIL_API[module].items():
        if name not in found["dir"]:
            problems.append(f"{module}.{name} is missing")
            continue
        mine = found["names"].get(name)
        if mine is None:
            problems.append(f"{module}.{name} is there but not public (a module, or imported from outside anvil)")
            continue
        if theirs.get("signature") and not same_signature(mine.get("signature"), theirs["signature"]):
            problems.append(f"{module}.{name}{mine.get('signature')} should be {name}{theirs['signature']}")
        missing_bases = [b for b in theirs.get("bases", []) if not b.startswith("_") and b not in mine.get("bases", [])]
        if missing_bases:
            problems.append(f"{module}.{name} should derive from {', '.join(missing_bases)}")
        if (
            theirs["kind"] == "exception"
            and "AnvilWrappedError" not in theirs.get("bases", [])
            and "AnvilWrappedError" in mine.get("bases", [])
            and name != "AnvilWrappedError"
        ):
            problems.append(f"{module}.{name} must not derive from AnvilWrappedError (it does not on Anvil)")
    return problems


@pytest.mark.parametrize("module", sorted(ANVIL_API))
def test_every_public_name_of_anvil(module: str, ours: dict[str, Any]) -> None:
    # Anvil's list: downlink/python/anvil/<module>.py (and services/anvil/) at v1.17.0, see the data file.
    assert differences(module, ours) == []


def test_probe_counts(ours: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """One line with the figures for the note: names found with Anvil's signature, out of all."""
    total = sum(len(v) for v in ANVIL_API.values())
    bad = sum(len(differences(m, ours)) for m in ANVIL_API)
    with capsys.disabled():
        print(f"\nprobe: {total - bad} of {total} public names of Anvil's server side match ({bad} differ)")
    assert bad == 0
