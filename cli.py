"""From a checkout, `python cli.py ...` is `anvil-dev ...`."""

from anvil_dev.cli import main

if __name__ == "__main__":
    main()
