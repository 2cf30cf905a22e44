"""`anvil.tz`: fixed-offset time zones, as Anvil stamps datetimes that cross the wire."""

from __future__ import annotations

import datetime as _dt
import time as _time

__all__ = ["UTC", "tzlocal", "tzoffset", "tzutc"]

_ZERO = _dt.timedelta(0)


class tzoffset(_dt.tzinfo):
    """A fixed offset from UTC, given as at most one of hours, minutes or seconds; none is UTC.

    As Anvil's (downlink/python/anvil/tz.py line 8): any size of offset is accepted here (Python's
    datetime refuses one of 24 hours or more when it is used).
    """

    def __init__(self, **kwargs: float) -> None:
        if len(kwargs) > 1 or (len(kwargs) == 1 and next(iter(kwargs)) not in ("hours", "minutes", "seconds")):
            raise TypeError(
                "tzoffset must be initialised with precisely one of 'seconds', 'minutes' or 'hours' keyword arguments"
            )
        self._offset = _dt.timedelta(**kwargs)

    def utcoffset(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return self._offset

    def dst(self, dt: _dt.datetime | None) -> _dt.timedelta:
        return _ZERO

    def tzname(self, dt: _dt.datetime | None) -> str | None:
        return None

    def fromutc(self, dt: _dt.datetime) -> _dt.datetime:
        return (dt + self._offset).replace(tzinfo=self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, tzoffset):
            return self._offset == other._offset
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._offset)

    def __reduce__(self) -> tuple[object, ...]:
        return (_from_seconds, (self._offset.total_seconds(),))

    def _hours(self) -> float:
        return self._offset.total_seconds() / 3600

    def __repr__(self) -> str:
        return f"<anvil.tz.tzoffset ({self._hours()} hour offset)>"


class tzutc(tzoffset):
    """UTC."""

    def __init__(self) -> None:
        super().__init__(seconds=0)

    def __reduce__(self) -> tuple[object, ...]:
        return (tzutc, ())

    def __repr__(self) -> str:
        return "<anvil.tz.tzutc>"


class tzlocal(tzoffset):
    """This machine's offset from UTC when the object is made (a fixed offset, as in Anvil)."""

    def __init__(self) -> None:
        super().__init__(seconds=_local_offset_seconds())

    def __reduce__(self) -> tuple[object, ...]:
        return (tzlocal, ())

    def __repr__(self) -> str:
        return f"<anvil.tz.tzlocal ({self._hours()} hour offset)>"


def _local_offset_seconds() -> int:
    # localtime() knows whether DST is in force now; timezone/altzone alone do not.
    return _time.localtime().tm_gmtoff


def _from_seconds(seconds: float) -> tzoffset:
    return tzoffset(seconds=seconds)


def as_anvil_tz(value: _dt.datetime) -> _dt.datetime:
    """The same instant with its tzinfo as a `tzoffset`, as Anvil's decoder gives a DateTime.

    Naive values are returned unchanged. The engine may apply this to datetimes decoded from the
    wire so that server code sees `anvil.tz.tzoffset` as on Anvil.
    """
    offset = value.utcoffset()
    if offset is None or isinstance(value.tzinfo, tzoffset):
        return value
    return value.replace(tzinfo=tzoffset(minutes=offset.total_seconds() / 60))


UTC = tzutc()
