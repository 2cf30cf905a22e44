"""`anvil.js` on the server: importable (shared modules import it), but it is the browser's.

As on Anvil's servers, `import anvil.js` works and reading any name from it raises ImportError.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise ImportError("anvil.js attributes are only available client-side")
