"""Length-prefixed JSON frames over a stream socket, between the host and its workers."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from typing import Any

_HEADER = struct.Struct("!I")
MAX_FRAME = 1 << 30


class FrameTimeout(Exception):
    pass


def encode(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
    return _HEADER.pack(len(body)) + body


class Channel:
    """One end of a socket carrying frames; sends are thread-safe, reads belong to one thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()
        self._send_lock = threading.Lock()

    def send(self, obj: Any) -> int:
        """Send one frame; returns its size in bytes."""
        data = encode(obj)
        self.send_raw(data)
        return len(data)

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self.sock.sendall(data)

    def recv(self, deadline: float | None = None) -> Any:
        """The next frame, None at EOF; FrameTimeout if the monotonic deadline passes first."""
        header = self._read(_HEADER.size, deadline)
        if header is None:
            return None
        (n,) = _HEADER.unpack(header)
        if n > MAX_FRAME:
            raise ValueError(f"frame of {n} bytes is over the limit")
        body = self._read(n, deadline)
        if body is None:
            return None
        return json.loads(body)

    def _read(self, n: int, deadline: float | None) -> bytes | None:
        while len(self._buf) < n:
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FrameTimeout()
                self.sock.settimeout(remaining)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(max(65536, n - len(self._buf)))
            except TimeoutError:
                raise FrameTimeout() from None
            except OSError:
                return None
            if not chunk:
                return None
            self._buf += chunk
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
