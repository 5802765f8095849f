"""Which stored readings measure a counter: the one definition the counter reads, the rollups
and the evidence bundle share."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from collector.allocation.counters import UNUSABLE
from collector.db.schema import readings
from metertrace.wire import Quality

# Good and counter_reset (the first reading at a confirmed new level). comm_error/not_available
# carry no value, out_of_range is suspect.
USABLE = tuple(q.value for q in Quality if q not in UNUSABLE)


def usable(meter: str, qty: str) -> ColumnElement[bool]:
    r = readings.c
    return (r.device == meter) & (r.quantity == qty) & r.quality.in_(USABLE) & r.value.is_not(None)
