"""A Python client for a running anvil-dev server: `connect(url).call(name, *args, **kwargs)`.

Values cross the wire with the same portable types as in server code. Portable classes the client
has no class for come back as `PortableObject`s that keep their type name and data (and go back
to the server unchanged), data table rows as `Row`s, media as `Media` downloaded on demand.
"""

from __future__ import annotations

from anvil_dev.client.connection import DEFAULT_URL, Connection, connect
from anvil_dev.client.errors import ConnectionFailed, ConnectionLost, ServerError, check_url, failure
from anvil_dev.client.media import BlobMedia, Media, _MultipartBody
from anvil_dev.client.portable import PortableObject
from anvil_dev.client.tables import AppTables, ClientSearch, Row, SearchIterator, Table, order_by

__all__ = [
    "DEFAULT_URL",
    "AppTables",
    "BlobMedia",
    "ClientSearch",
    "Connection",
    "ConnectionFailed",
    "ConnectionLost",
    "Media",
    "PortableObject",
    "Row",
    "SearchIterator",
    "ServerError",
    "Table",
    "_MultipartBody",
    "check_url",
    "connect",
    "failure",
    "order_by",
]
