"""Builders for the allocation tests: batches in hours from T0, meters with known consumption."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from collector.allocation.counters import CounterEvent, CounterReadings, quality_codes
from collector.allocation.topology import MeterAssignment
from collector.allocation.uncertainty import MeterUncertainty
from collector.batches.model import Batch

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = 3600.0


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def batch(id: str, line: str, start_h: float, end_h: float, qty: float = 100.0, **kw: Any) -> Batch:
    kw.setdefault("declared_unit", "kilogram")
    return Batch(
        id=id,
        product_id=f"prod-{id}",
        product_name=f"product of {id}",
        line=line,
        start=at(start_h),
        end=at(end_h),
        produced_quantity=qty,
        **kw,
    )


def steady(
    meter: str,
    per_hour: float,
    *,
    hours: float = 8.0,
    poll_s: float = 10.0,
    medium: str = "electricity",
    unit: str = "kWh",
    start: float = 1000.0,
) -> CounterReadings:
    """A counter rising at a constant rate: linear interpolation is exact, so are expectations."""
    t = T0.timestamp() + np.arange(0.0, hours * H + poll_s / 2, poll_s)
    v = start + per_hour * (t - t[0]) / H
    return CounterReadings(meter, medium, unit, t, v, np.zeros(t.size, np.uint8), poll_s)


def readings(
    meter: str,
    points: Sequence[tuple[float, float | None, str]],
    *,
    events: Sequence[CounterEvent] = (),
    poll_s: float = 3600.0,
    unit: str = "kWh",
) -> CounterReadings:
    """Hand-written readings: (hours from T0, value or None, wire quality)."""
    t = np.array([T0.timestamp() + h * H for h, _, _ in points])
    v = np.array([np.nan if x is None else x for _, x, _ in points], dtype=np.float64)
    return CounterReadings(
        meter, "electricity", unit, t, v, quality_codes([q for _, _, q in points]), poll_s,
        tuple(events),
    )  # fmt: skip


def assign(meter: str, rule: str, lines: Sequence[str], **kw: Any) -> MeterAssignment:
    kw.setdefault("valid_from", T0)
    return MeterAssignment(meter_id=meter, rule=rule, lines=tuple(lines), **kw)


def class_1(*meters: str, resolution: float = 0.01) -> dict[str, MeterUncertainty]:
    return {
        m: MeterUncertainty.from_accuracy_class(m, resolution=resolution, class_percent=1.0)
        for m in meters
    }
