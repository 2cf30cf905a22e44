"""Column values as server code sees them: media read from the database when first used, times in UTC."""

from __future__ import annotations

import datetime as _dt

import anvil
from anvil_dev import services
from anvil_dev.services.tables import RowDeleted

_UTC: _dt.tzinfo | None = None


def _utc() -> _dt.tzinfo:
    """Anvil's UTC (anvil.tz.tzutc), one instance for every value read: a row's datetimes are
    converted one by one, and a fixed offset is never changed."""
    global _UTC
    if _UTC is None:
        try:
            from anvil.tz import tzutc

            _UTC = tzutc()
        except ImportError:
            _UTC = _dt.timezone.utc
    return _UTC


class _TableMedia(anvil.BlobMedia):
    """A media value of a media column: its bytes are read from the database when first asked for."""

    def __init__(self, media_id: int) -> None:  # lazy: no super().__init__, nothing read yet
        self._media_id = media_id
        self._loaded: tuple[str | None, str | None, bytes] | None = None

    def _load(self) -> tuple[str | None, str | None, bytes]:
        if self._loaded is None:
            got = services.current().tables.load_media(self._media_id)
            if got is None:
                raise RowDeleted("This media object's row has been deleted or changed")
            self._loaded = got
        return self._loaded

    @property
    def content_type(self) -> str | None:
        return self._load()[0]

    @content_type.setter
    def content_type(self, value: str | None) -> None:
        self._loaded = (value, *self._load()[1:])

    @property
    def name(self) -> str | None:
        return self._load()[1]

    @name.setter
    def name(self, value: str | None) -> None:
        ct, _, data = self._load()
        self._loaded = (ct, value, data)

    def get_bytes(self) -> bytes:
        return self._load()[2]

    @property
    def length(self) -> int:
        return len(self._load()[2])
