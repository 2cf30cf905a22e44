"""`python -m anvil_dev ...` is `anvil-dev ...` (debuggers and `python -m` users start it this way)."""

from __future__ import annotations

from anvil_dev.cli import main

if __name__ == "__main__":
    main()
