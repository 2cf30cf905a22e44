"""Where server code runs: a zygote forks fresh children (or persistent workers) that import the app.

engine.py supervises them; workers.py holds the host's handles on persistent workers and task
children; forker.py the seam to the zygote (zygote.py) and the handle on each child; child.py
is what runs in a child; frames.py what travels between them; loader.py imports the app.
"""

from anvil_dev.engine.engine import Engine

__all__ = ["Engine"]
