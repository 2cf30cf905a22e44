"""The `/_/uplink` websocket for the real anvil-uplink client: `UplinkHub` is what the host uses.

`hub.py` keeps the connections and routes calls, `connection.py` is one connection's state and
threads, `frames.py` what its frames mean, `media.py` media chunks, `rows.py` data table rows.
"""

from __future__ import annotations

from anvil_dev.host.uplink.hub import UplinkHub

__all__ = ["UplinkHub"]
