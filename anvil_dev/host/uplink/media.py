"""Media over the uplink websocket: CHUNK_HEADER + binary frame pairs to and from media-store files.

Inside anvil-dev a media is a file in the media store and a wire entry
`{"type": ["DataMedia"], "id": <store id>, "mime-type", "name"}`. On the uplink websocket its bytes
follow the JSON message as pairs of frames (a CHUNK_HEADER text frame, then a binary frame of at
most 64 KiB), as the anvil-uplink client sends and expects them. Chunks are streamed to and from
disk one at a time, so a large media is never held whole in memory.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from anvil_dev.host.uplink.frames import MAX_ID_LEN, ProtocolError, check_id
from anvil_dev.services.mediastore import MediaStore

CHUNK_SIZE = 65536
MAX_MEDIA_PER_MESSAGE = 1000
MAX_AWAITING_MEDIA = 64


def is_data_media(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("type"), list) and "DataMedia" in entry["type"]


class _Part:
    """One media of an incoming message, written chunk by chunk to a temporary file."""

    def __init__(self, store: MediaStore) -> None:
        self.store_id = store.new_id()
        self.final = store.path(self.store_id)
        self.tmp = self.final.with_name(self.store_id + ".part")
        self.next_index = 0
        self.done = False
        self.entries: list[dict[str, Any]] = []


class IncomingMessage:
    """A message from an uplink whose media may still be arriving.

    Every DataMedia entry becomes a new store file (the uplink's own media ids are never used
    as store ids, so an uplink cannot name other media); `finish()` returns the message with the
    entries' ids rewritten to store ids.
    """

    def __init__(self, msg_id: str, msg: dict[str, Any], store: MediaStore) -> None:
        self.id = msg_id
        self.msg = msg
        self.parts: dict[str, _Part] = {}
        objects = msg.get("objects")
        if objects is None:
            return
        if not isinstance(objects, list):
            raise ProtocolError("'objects' is not a list")
        for entry in objects:
            if not is_data_media(entry):
                continue
            media_id = entry.get("id")
            if not isinstance(media_id, str) or not media_id or len(media_id) > MAX_ID_LEN:
                raise ProtocolError(f"a DataMedia entry has no valid id: {media_id!r:.80}")
            part = self.parts.get(media_id)
            if part is None:
                if len(self.parts) >= MAX_MEDIA_PER_MESSAGE:
                    raise ProtocolError(f"more than {MAX_MEDIA_PER_MESSAGE} media in one message")
                part = self.parts[media_id] = _Part(store)
            part.entries.append(entry)
        if self.parts:
            store.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def ready(self) -> bool:
        return all(p.done for p in self.parts.values())

    def add_chunk(self, header: dict[str, Any], data: bytes) -> None:
        media_id = header.get("mediaId")
        part = self.parts.get(media_id) if isinstance(media_id, str) else None
        if part is None:
            raise ProtocolError(f"a chunk for unknown media {media_id!r:.80} of {self.id!r:.80}")
        if part.done:
            raise ProtocolError(f"a chunk after the last one for media {media_id!r:.80}")
        if header.get("chunkIndex") != part.next_index:
            raise ProtocolError(
                f"chunk {header.get('chunkIndex')!r:.20} arrived where chunk {part.next_index} was expected"
            )
        # Append and close at once: no file stays open between frames, however many media an
        # uplink starts at the same time.
        with open(part.tmp, "ab") as f:
            f.write(data)
        part.next_index += 1
        if header.get("lastChunk"):
            os.replace(part.tmp, part.final)
            part.done = True

    def finish(self) -> dict[str, Any]:
        for part in self.parts.values():
            for entry in part.entries:
                entry["id"] = part.store_id
        return self.msg

    def discard(self) -> None:
        """Delete the files of a message that will never be used."""
        for part in self.parts.values():
            for p in (part.tmp, part.final):
                try:
                    p.unlink()
                except (FileNotFoundError, ValueError):
                    pass


class MediaInbox:
    """One connection's incoming messages whose media are still arriving, and the CHUNK_HEADER
    that announces the next binary frame. Used by the connection's receiving thread only."""

    def __init__(self, store: MediaStore) -> None:
        self.store = store
        self._waiting: dict[str, IncomingMessage] = {}
        self._next_header: dict[str, Any] | None = None

    def expects_binary(self) -> bool:
        """A CHUNK_HEADER came: the next frame must be its binary frame."""
        return self._next_header is not None

    def receive(self, msg_id: str, msg: dict[str, Any]) -> dict[str, Any] | None:
        """`msg` with store ids for its media if it has none to wait for, else None (it waits)."""
        incoming = IncomingMessage(msg_id, msg, self.store)
        if incoming.ready():
            return incoming.finish()
        if msg_id in self._waiting:
            incoming.discard()
            raise ProtocolError(f"two messages with the id {msg_id!r:.80}")
        if len(self._waiting) >= MAX_AWAITING_MEDIA:
            incoming.discard()
            raise ProtocolError(f"more than {MAX_AWAITING_MEDIA} messages waiting for their media")
        self._waiting[msg_id] = incoming
        return None

    def header(self, data: dict[str, Any]) -> None:
        """A CHUNK_HEADER: remember it for the binary frame that follows."""
        check_id(data.get("requestId"), "CHUNK_HEADER")
        self._next_header = data

    def chunk(self, data: bytes) -> dict[str, Any] | None:
        """A binary frame: store it; the message it completes, if it does, else None."""
        header = self._next_header
        if header is None:
            raise ProtocolError("a binary frame without a CHUNK_HEADER before it")
        self._next_header = None
        incoming = self._waiting.get(header["requestId"])
        if incoming is None:
            raise ProtocolError(f"a media chunk for unknown message {header['requestId']!r:.80}")
        try:
            incoming.add_chunk(header, data)
        except OSError as e:
            raise ProtocolError(f"cannot store media: {e}") from None
        if not incoming.ready():
            return None
        del self._waiting[header["requestId"]]
        return incoming.finish()

    def failed(self, request_id: Any) -> IncomingMessage | None:
        """A MEDIA_ERROR: the message whose media will not come (its files deleted), if one waits."""
        incoming = self._waiting.pop(request_id, None) if isinstance(request_id, str) else None
        if incoming is not None:
            incoming.discard()
        return incoming

    def discard_all(self) -> None:
        """The connection closed: delete the files of every half-received message."""
        for incoming in self._waiting.values():
            incoming.discard()
        self._waiting.clear()


def prepare_outgoing(msg: dict[str, Any], store: MediaStore) -> tuple[dict[str, Any], list[tuple[str, Path | None]]]:
    """A copy of `msg` whose DataMedia entries carry per-message ids, and the files to send.

    Each entry gets its own wire id (the client keys media by id, so two entries for the same
    store file must not share one). A path is None where the store id is invalid.
    """
    objects = msg.get("objects") or []
    out_objects = []
    media: list[tuple[str, Path | None]] = []
    for entry in objects:
        if is_data_media(entry):
            entry = dict(entry)
            try:
                path: Path | None = store.path(entry.get("id", ""))
            except ValueError:
                path = None
            wire_id = f"m{len(media)}"
            entry["id"] = wire_id
            media.append((wire_id, path))
        out_objects.append(entry)
    out = dict(msg)
    out["objects"] = out_objects
    return out, media


def chunks(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(index, data, last) for a file; an empty file is one empty last chunk, as Anvil sends it."""
    with open(path, "rb") as f:
        data = f.read(CHUNK_SIZE)
        index = 0
        while True:
            nxt = f.read(CHUNK_SIZE)
            yield index, data, not nxt
            if not nxt:
                return
            data = nxt
            index += 1


def send_media(
    request_id: str,
    media: list[tuple[str, Path | None]],
    send_pair: Callable[[dict[str, Any], bytes], None],
    send_text: Callable[[dict[str, Any]], None],
) -> None:
    """Stream each media as header+binary pairs; a missing file becomes a MEDIA_ERROR.

    The senders must not raise OSError (the connection wraps its own failures), so that only
    errors reading a file are reported to the uplink as media errors.
    """
    for wire_id, path in media:
        try:
            if path is None:
                raise FileNotFoundError(wire_id)
            for index, data, last in chunks(path):
                send_pair(
                    {
                        "type": "CHUNK_HEADER",
                        "requestId": request_id,
                        "mediaId": wire_id,
                        "chunkIndex": index,
                        "lastChunk": last,
                    },
                    data,
                )
        except OSError as e:
            send_text(
                {
                    "type": "MEDIA_ERROR",
                    "requestId": request_id,
                    "mediaIds": [wire_id],
                    "cause": {
                        "type": "anvil.server.InternalError",
                        "message": f"Media is no longer available on the server ({type(e).__name__})",
                    },
                }
            )
