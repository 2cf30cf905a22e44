"""`python -m anvil_dev ...` is `anvil-dev ...` (debuggers and `-X importtime` like it)."""

from anvil_dev.cli import main

if __name__ == "__main__":
    main()
