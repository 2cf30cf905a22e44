"""Where server code runs: a zygote forks fresh children (or persistent workers) that import the app."""

from anvil_dev.engine._pool import Engine

__all__ = ["Engine"]
