"""The HTTP socket, bound before anything else starts, with one line a user can act on when it cannot be.

werkzeug's own binding prints two bare lines and calls sys.exit(1); binding here and handing werkzeug
the socket (`make_server(fd=...)`) keeps the wording ours: which address, why, and how to pick another.
"""

from __future__ import annotations

import errno
import socket

_PORT_HINT = "choose another with --port N or ANVIL_DEV_PORT=N (`make demo ANVIL_DEV_PORT=N` for the demo)"
_HOST_HINT = "give --host (or ANVIL_DEV_HOST) an address of this machine, such as 127.0.0.1 or 0.0.0.0"


class ListenError(OSError):
    """The server cannot listen where it was told to; the message says where, why and what to do."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or ListenError."""
    if not 0 <= port < 65536:
        raise ListenError(f"port {port} is not a TCP port (0-65535) - {_PORT_HINT}")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ListenError(
            f"cannot listen on {host}:{port}: {host!r} is not an address or a host name this "
            f"machine can find ({getattr(e, 'strerror', None) or e}) - {_HOST_HINT}"
        ) from None
    family, _type, _proto, _name, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As werkzeug does: a port left in TIME_WAIT by the last run can be bound again at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ListenError(_why(e, host, port)) from None
    return sock


def _why(e: OSError, host: str, port: int) -> str:
    where = f"{host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return f"port {port} is already in use on {host} (another anvil-dev serve, or another program) - {_PORT_HINT}"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {host} is not an address of this machine - {_HOST_HINT}"
    if e.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied (ports below 1024 need root) - {_PORT_HINT}"
    return f"cannot listen on {where}: {e.strerror or e} - {_PORT_HINT}, or {_HOST_HINT}"
