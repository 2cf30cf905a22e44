"""The older name of plotly.graph_objects, which Anvil apps still import."""

from plotly.graph_objects import *  # noqa: F401,F403
from plotly.graph_objects import Figure, Layout, Obj  # noqa: F401
