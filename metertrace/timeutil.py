"""UTC, timezone-aware time, ISO 8601 on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_wire(ts: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a Z suffix: '2026-11-23T19:40:00.123456Z'."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: MeterTrace only handles timezone-aware UTC times")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str, *, field: str = "timestamp") -> datetime:
    """Parse ISO 8601 with an explicit offset; a naive time is refused, never guessed."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{field}: {text!r} is not ISO 8601; write e.g. 2026-01-01T00:00:00Z"
        ) from None
    if ts.tzinfo is None:
        raise ValueError(f"{field}: {text!r} has no timezone; append Z for UTC")
    return ts.astimezone(UTC)
