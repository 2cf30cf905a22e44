"""Where server code runs: a zygote forks fresh children (or persistent workers) that import the app.

engine.py supervises them; workers.py holds the host's handles on persistent workers and task
children; forker.py the seam to the zygote (zygote.py) and the handle on each child; child.py
is what runs in a child; frames.py what travels between them; loader.py imports the app.

Nothing is imported here: the zygote runs inside this package (`python -m anvil_dev.engine.zygote`),
and the host's side (`engine.Engine` and what it uses) would cost it that import, and every child
forked from it the memory.
"""
