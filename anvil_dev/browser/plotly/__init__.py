"""`plotly` in client code: the graph objects Anvil apps build Plots with (`from plotly import
graph_objects as go`). Dict-like objects only: plotly.js, in the page, does the drawing and the
validation; nothing here checks a property name."""
