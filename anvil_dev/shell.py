"""`anvil-dev shell`: a REPL whose every line runs as server code of the app.

The whole session is one call context (an uplink-like, trusted caller with a session of its
own), so `anvil.users.force_login(row)` logs that user in for the lines that follow and
`anvil.users.get_user()` returns them; server functions are in the namespace by name and run
directly, `call(name, ...)` runs one as anvil.server.call does (with require_user checks).
"""

from __future__ import annotations

import secrets
from typing import Any

from anvil_dev.appdir import AppDir


def namespace(app: AppDir) -> tuple[dict[str, Any], str]:
    """The shell's globals and its banner; starts the shell's call context on this thread."""
    import sys

    import anvil
    import anvil.server
    import anvil.tables
    import anvil.tables.query
    import anvil.users
    from anvil import _context
    from anvil.tables import app_tables

    _context.push(
        _context.CallState(
            call_id="shell",
            command="shell",
            session_id=secrets.token_urlsafe(24),
            client_type="uplink",
            remote_trusted=True,
            call_stack=[{"type": "uplink"}],
        )
    )
    ns: dict[str, Any] = {
        "anvil": anvil,
        "app_tables": app_tables,
        "q": anvil.tables.query,
        "tables": anvil.tables,
        "call": anvil.server.call,
    }
    package = app.package_name
    modules = sorted(
        n[len(package) + 1 :] for n in sys.modules if n.startswith(package + ".") and "." not in n[len(package) + 1 :]
    )
    for name in modules:
        ns.setdefault(name, sys.modules[f"{package}.{name}"])
    functions = []
    for name, reg in anvil.server.registrations.items():
        if name.isidentifier() and not name.startswith("anvil") and name not in ns:
            ns[name] = reg.fn
            functions.append(name)
    banner = (
        f"anvil-dev shell: {app.path.name} (its own .anvil-dev/ data)\n"
        f"  app_tables, anvil, q (anvil.tables.query), call(name, ...)\n"
        f"  modules: {', '.join(modules) or '-'}\n"
        f"  server functions: {', '.join(sorted(functions)) or '-'}\n"
        "  anvil.users.force_login(app_tables.users.get(email=...)) to act as a user"
    )
    return ns, banner


def run(ns: dict[str, Any], banner: str, plain: bool = False) -> None:
    if not plain:
        try:
            import IPython
        except ImportError:
            pass
        else:
            print(banner)
            IPython.start_ipython(argv=[], user_ns=ns)
            return
    import code

    try:
        import readline  # noqa: F401 - line editing and history in code.interact
    except ImportError:
        pass
    code.interact(banner=banner, local=ns, exitmsg="")
