"""Instants as float seconds since the Unix epoch (UTC), the time axis of every numpy array here.

A year of 10-second readings fits float64 with sub-microsecond resolution, so arrays of epoch
seconds lose nothing the meters can tell apart, and np.searchsorted/np.interp work on them.
"""

from __future__ import annotations

from datetime import UTC, datetime


def epoch_s(instant: datetime) -> float:
    """Seconds since the epoch of an aware datetime; a naive one is refused (no guessed zone)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(
            f"naive datetime {instant.isoformat()}: give a timezone (UTC, e.g. '...Z' or +00:00)"
        )
    return instant.timestamp()


def from_epoch_s(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
