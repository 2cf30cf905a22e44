"""Server functions of __APP_NAME__. Edit and save: anvil-dev reloads them at once.

Call them from client code (client_code/Form1 does) with anvil.server.call("add_feedback", ...), from the shell with
`anvil-dev call add_feedback Ann ann@example.org "Nice app"`, or from Python with
anvil_dev.client.connect("http://127.0.0.1:3030").call("add_feedback", ...).
"""

import datetime

import anvil.email
import anvil.server
from anvil.tables import app_tables

from .Shapes import Point


@anvil.server.callable
def add_feedback(name, email, feedback):
    """Store one piece of feedback from the Feedback Form."""
    if not name or not email:
        raise ValueError("Please give your name and email")
    app_tables.feedback.add_row(
        name=name, email=email, feedback=feedback, created=datetime.datetime.now(datetime.timezone.utc)
    )
    # The app's owner (put your address here) gets an email; locally it lands in the outbox.
    anvil.email.send(
        to="owner@example.org",
        from_name="Feedback Form",
        subject="Feedback from " + name,
        text=f"Feedback from {name} <{email}>:\n\n{feedback}",
    )
    print(f"Feedback from {name} <{email}>")
    return f"Thanks, {name}!"


@anvil.server.callable
def list_feedback():
    """Every piece of feedback so far, newest first."""
    import anvil.tables

    return [
        dict(name=r["name"], feedback=r["feedback"], created=r["created"])
        for r in app_tables.feedback.search(anvil.tables.order_by("created", ascending=False))
    ]


@anvil.server.callable
def add(a, b):
    """Add two numbers."""
    return a + b


@anvil.server.callable
def echo(value):
    """Return its argument unchanged: every portable type survives the round trip."""
    return value


@anvil.server.callable
def portable_types():
    """One value of each portable type."""
    return {
        "text": "héllo",
        "int": 42,
        "big": 2**70,
        "float": 1.5,
        "inf": float("inf"),
        "bool": True,
        "none": None,
        "list": [1, "two", [3]],
        "dict": {"nested": {"ok": True}},
        "date": datetime.date(2024, 5, 6),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc),
        "point": Point(1, 2),
    }


@anvil.server.callable
def move(point, dx, dy):
    """Takes and returns a portable class defined in client_code/Shapes.py."""
    return point.moved(dx, dy)


_calls = 0


@anvil.server.callable
def count_calls():
    """Each call runs in a fresh interpreter, so this is always 1 (unless server_persist is on)."""
    global _calls
    _calls += 1
    return _calls
