"""Regenerate anvil_api.json: the public names of real Anvil's server-side `anvil` package.

Not a test. Run it by hand against a checkout of anvil-works/anvil-runtime (App Server v1.17.0 was
used) whose symlinks are resolved, with stand-ins for what the package needs from the platform:

    git archive HEAD downlink/python services/anvil | tar -x -C real
    cp -rL real/downlink/python flat
    git show HEAD:client/py/anvil/util.py > flat/anvil/util.py
    touch flat/anvil/_components.py     # generated docs file, not in the repository
    python tests/data/make_anvil_api.py flat stubs > tests/data/anvil_api.json

`stubs` holds empty `anvil_downlink_util.tracing` and `matplotlib.pyplot` modules. The script imports
each module, walks dir() and writes, for each public name (no leading underscore, not a module, not a
name imported from outside `anvil`), its kind and call signature. Only names and signatures are
recorded: facts to compare against, no code.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from typing import Any

MODULES = [
    "anvil",
    "anvil.server",
    "anvil.users",
    "anvil.tables",
    "anvil.tables.query",
    "anvil.tables.v2",
    "anvil.media",
    "anvil.email",
    "anvil.secrets",
    "anvil.http",
    "anvil.tz",
    "anvil.designer",
    "anvil.util",
    "anvil.mpl_util",
    "anvil.pdf",
    "anvil.history",
    "anvil.regex",
    "anvil.saml.auth",
]


# Names that are not API: a loop variable left behind at module level.
NOT_API = {("anvil.users", "n")}


def signature(obj: Any) -> str | None:
    """The call signature without annotations and without private parameters (`_task_prefix`)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    params = [
        p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values() if not p.name.startswith("_")
    ]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def describe(obj: Any) -> dict[str, Any]:
    if inspect.isclass(obj):
        kind = "exception" if issubclass(obj, BaseException) else "class"
        return {"kind": kind, "signature": signature(obj), "bases": [b.__name__ for b in obj.__mro__[1:-1]]}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismethod(obj):
        return {"kind": "function", "signature": signature(obj)}
    if callable(obj) and not isinstance(obj, (int, float, str)):
        return {"kind": "callable object", "signature": signature(obj)}
    return {"kind": "value", "type": type(obj).__name__}


def public_names(mod: Any) -> dict[str, Any]:
    out = {}
    for name in sorted(dir(mod)):
        if name.startswith("_") or (mod.__name__, name) in NOT_API:
            continue
        obj = mod.__dict__.get(name) if name in mod.__dict__ else getattr(mod, name)
        if type(obj).__name__ == "HttpRequest" or type(obj).__name__ == "_RequestProxy":
            # a proxy that refuses every attribute outside an endpoint call
            out[name] = {"kind": "value", "type": "request proxy"}
            continue
        if issubclass(type(obj), type(sys)):
            continue
        if type(obj) is functools.partial:
            out[name] = {"kind": "function", "signature": signature(obj)}
            continue
        if not issubclass(type(obj), (type, type(main))):
            # an instance (session, app_tables, ...): only its type is looked at, as some are lazy
            out[name] = {"kind": "value", "type": type(obj).__name__}
            continue
        origin = getattr(obj, "__module__", None)
        if origin is not None and not (origin == "anvil" or origin.startswith("anvil.")):
            continue
        out[name] = describe(obj)
    return out


def main() -> None:
    sys.path[:0] = sys.argv[1:3]
    api = {name: public_names(importlib.import_module(name)) for name in MODULES}
    json.dump(
        {"source": "anvil-works/anvil-runtime v1.17.0 (downlink/python/anvil)", "modules": api},
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
