"""Reading and message times as stored: integer microseconds since the Unix epoch, UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


def to_micros(ts: datetime) -> int:
    """Exact: integer arithmetic on the timedelta, no float seconds."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: MeterTrace only handles timezone-aware UTC times")
    return (ts - _EPOCH) // _US


def from_micros(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))
