"""Which stored readings measure a counter: the one definition the counter reads, the rollups
and the evidence bundle share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_

from collector.db.schema import USABLE, USABLE_VALUE, readings


def usable(meter: Any, qty: Any) -> ColumnElement[bool]:
    """The readings of a meter's counter that carry its value (meter, qty: values or bound
    parameters)."""
    r = readings.c
    return and_(r.device == meter, r.quantity == qty, USABLE_VALUE)


__all__ = ["USABLE", "usable"]
