"""The accounting period a batch's energy is allocated over: the one asked for, or the calendar
month(s) containing the batch in the plant's time zone. The allocation never reaches outside its
period (idle energy at its edge becomes overhead), so a fixed period is what makes a batch's
published figure the same whenever it is asked for (docs/batches.md, "Which period")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collector.batches.energy_out import PeriodOut
from collector.batches.model import Batch


class PeriodError(ValueError):
    pass


def calendar_months(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """From the first instant of the month containing start to the first instant of the month
    after the one containing end's last instant, in tz; returned in UTC."""
    first = start.astimezone(tz).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = (end - timedelta(microseconds=1)).astimezone(tz)
    year, month = (last.year + 1, 1) if last.month == 12 else (last.year, last.month + 1)
    after = datetime(year, month, 1, tzinfo=tz)
    return first.astimezone(UTC), after.astimezone(UTC)


def requested_period(start: datetime, end: datetime) -> PeriodOut:
    for name, t in (("period_start", start), ("period_end", end)):
        if t.tzinfo is None or t.utcoffset() is None:
            raise PeriodError(f"{name} {t.isoformat()} has no time zone: give it in UTC (…Z)")
    if end <= start:
        raise PeriodError("period_end must be after period_start")
    return PeriodOut(start=start, end=end, basis="requested")


def choose_period(batch: Batch, start: datetime | None, end: datetime | None, tz: str) -> PeriodOut:
    if (start is None) != (end is None):
        raise PeriodError("give both period_start and period_end, or neither (calendar months)")
    if start is not None and end is not None:
        return requested_period(start, end)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PeriodError(
            f"unknown time zone {tz!r}; use an IANA name like Asia/Shanghai"
        ) from None
    lo, hi = calendar_months(batch.start, batch.end, zone)
    return PeriodOut(start=lo, end=hi, basis=f"calendar month(s) containing the batch, {tz}")
