"""Consumption from counter readings, at any instants, vectorised.

The counter is "unwrapped" into cumulative consumption since the first usable reading:
wraps, resets and replacements are corrected from the agent's events (counters.py gives their
meaning), and a step whose consumption is unknown (across a reset, an unexplained backward
step, evidence that does not fit) counts only its known part, its time counts as uncovered,
and it is reported as an anomaly. The corrections are sparse, so the cumulative series is never
materialised: cum[i] = v[i] − v[0] + offset(i), and the counter at any instant is the linear
interpolation between the two readings around it (the same as np.interp on the materialised
series, which the tests check).

A gap (no usable reading for longer than gap_factor × poll interval) is time without data: it
lowers coverage. When the counter survived the gap its delta is still known, so it is used and
flagged as estimated in time (the amount is measured; only its spread over time is assumed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from collector.allocation.counters import CounterReadings, EventKind
from collector.allocation.timebase import from_epoch_s

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
# A step longer than this many poll intervals is a gap. The ledger's rollups thin out only
# buckets without one (collector/ledger/rollups.py), so both must use the same factor.
GAP_FACTOR = 3.0
_EMPTY = np.zeros(0)


class CounterError(ValueError):
    def __init__(self, meter_id: str, detail: str) -> None:
        self.meter_id, self.detail = meter_id, detail
        super().__init__(f"meter {meter_id}: {detail}")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A step of the counter whose consumption is (partly) unknown: its time is uncovered."""

    meter_id: str
    t_from: float
    t_to: float
    detail: str

    def __str__(self) -> str:
        return (
            f"meter {self.meter_id} {from_epoch_s(self.t_from).isoformat()} → "
            f"{from_epoch_s(self.t_to).isoformat()}: {self.detail}"
        )


@dataclass(frozen=True, slots=True)
class Intervals:
    """Per interval between consecutive instants: consumption and its quality."""

    quantity: F64  # consumption (measured + estimated in time)
    estimated: F64  # the part that fell in gaps (delta known, time spread assumed)
    uncovered_s: F64  # seconds without data (gaps, unknown steps, outside the readings)
    length_s: F64


def _ramp(kx: F64, ky: F64, x: F64) -> F64:
    """A non-decreasing piecewise-linear function given by knots (0 before the first)."""
    if kx.size == 0:
        return np.zeros_like(x)
    return np.interp(x, kx, ky, left=0.0, right=float(ky[-1]))


def _knots(start: F64, end: F64, amount: F64) -> tuple[F64, F64]:
    """Knots of the ramp that rises by amount[j] over [start[j], end[j]] (disjoint, sorted)."""
    after = np.cumsum(amount)
    kx = np.column_stack((start, end)).ravel()
    ky = np.column_stack((after - amount, after)).ravel()
    keep = np.ones(kx.size, dtype=bool)
    keep[1:] = (kx[1:] != kx[:-1]) | (ky[1:] != ky[:-1])  # joined neighbours: one knot
    return kx[keep], ky[keep]


@dataclass(frozen=True, slots=True)
class CounterSeries:
    meter_id: str
    medium: str
    unit: str
    t: F64
    v: F64
    corr_idx: I64  # reading indices from which an offset applies, ascending
    corr_off: F64  # the cumulative offset from that index on
    est_x: F64 = field(repr=False)
    est_y: F64 = field(repr=False)
    unc_x: F64 = field(repr=False)
    unc_y: F64 = field(repr=False)
    anomalies: tuple[Anomaly, ...] = ()

    @property
    def has_data(self) -> bool:
        return self.t.size >= 2

    def cum(self, idx: I64) -> F64:
        """Cumulative consumption at reading indices."""
        base: F64 = self.v[idx] - self.v[0]
        if self.corr_idx.size == 0:
            return base
        j = np.searchsorted(self.corr_idx, idx, side="right") - 1
        offset: F64 = np.where(j >= 0, self.corr_off[np.maximum(j, 0)], 0.0)
        return base + offset

    def at(self, x: F64) -> F64:
        """Cumulative consumption at instants x, interpolated; flat outside the readings."""
        if not self.has_data:
            return np.zeros_like(x)
        n = self.t.size
        i = np.searchsorted(self.t, x, side="right")
        lo = np.clip(i - 1, 0, n - 1)
        hi = np.clip(i, 0, n - 1)
        c_lo, c_hi = self.cum(lo), self.cum(hi)
        t_lo, t_hi = self.t[lo], self.t[hi]
        span = t_hi - t_lo
        frac = np.divide(x - t_lo, span, out=np.zeros_like(x), where=span > 0)
        return c_lo + frac * (c_hi - c_lo)

    def uncovered_before(self, x: F64) -> F64:
        """Seconds without data before x, relative to the first reading (negative before it)."""
        if not self.has_data:
            return x.copy()
        t0, tn = float(self.t[0]), float(self.t[-1])
        return _ramp(self.unc_x, self.unc_y, x) + np.minimum(x - t0, 0.0) + np.maximum(x - tn, 0.0)

    def intervals(self, cuts: F64) -> Intervals:
        """Consumption in each [cuts[k], cuts[k+1]); cuts ascending."""
        length = np.diff(cuts)
        unc = np.clip(np.diff(self.uncovered_before(cuts)), 0.0, length)
        return Intervals(
            quantity=np.diff(self.at(cuts)),
            estimated=np.diff(_ramp(self.est_x, self.est_y, cuts)),
            uncovered_s=unc,
            length_s=length,
        )

    def cumulative(self) -> F64:
        """The materialised cumulative series (for checks and baselines; allocation avoids it)."""
        return self.cum(np.arange(self.t.size))


def _event_steps(r: CounterReadings, t: F64, v: F64) -> tuple[dict[int, float], dict[int, str]]:
    """Per step i (from reading i−1 to i): the correction added to v[i] − v[i−1], and, for
    steps whose consumption is (partly) unknown, why."""
    n = t.size
    corr: dict[int, float] = {}
    unknown: dict[int, str] = {}
    for ev in r.events:
        if ev.kind in (EventKind.BACKWARD_STEP, EventKind.JUMP):
            continue  # their readings are out_of_range and not used
        # the reading the event is attached to: the first at or after ts (datetime keeps µs)
        i = int(np.searchsorted(t, ev.ts.timestamp() - 1e-6, side="left"))
        if i == 0 or i >= n:
            continue  # no step of these readings spans it
        prev, cur = float(v[i - 1]), float(v[i])
        d = cur - prev
        if i in corr:
            corr[i], unknown[i] = -d, "several counter events in one step"
            continue
        delta: float | None = None
        if ev.kind is EventKind.WRAP:
            assert ev.wrap is not None
            if d < 0 <= d + ev.wrap:
                delta = d + ev.wrap
        elif ev.kind is EventKind.RESET:
            assert ev.after is not None
            if cur >= ev.after:
                delta = cur - ev.after
                unknown[i] = (
                    f"reset: consumption from the last trusted reading {ev.before} to the first "
                    f"at the new level {ev.after:g} is unknown"
                )
        else:  # replacement
            assert ev.before is not None and ev.after is not None
            if ev.before >= prev and cur >= ev.after:
                delta = (ev.before - prev) + (cur - ev.after)
        if delta is None:
            unknown[i] = f"{ev.kind} evidence {ev.before}/{ev.after}/{ev.wrap} does not fit " + (
                f"the readings {prev:g} → {cur:g}"
            )
            delta = 0.0
        corr[i] = delta - d
    for i in (np.flatnonzero(v[1:] < v[:-1]) + 1).tolist():
        drop = float(v[i - 1] - v[i])
        if i in corr or drop <= max(r.jitter, r.jitter_rel * abs(float(v[i - 1]))):
            continue  # explained by an event, or the meter's rounding (it comes back)
        corr[i], unknown[i] = drop, f"backward step {v[i - 1]:g} → {v[i]:g} with no counter event"
    return corr, unknown


def prepare(readings: CounterReadings, *, gap_factor: float = GAP_FACTOR) -> CounterSeries:
    """Unwrap a meter's counter and locate its gaps and unknown steps (O(n), a few passes)."""
    r = readings
    t, v = r.usable()
    n = t.size
    none = np.zeros(0, dtype=np.int64)
    if n < 2:
        return CounterSeries(
            r.meter_id, r.medium, r.unit, t, v, none, _EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY
        )
    dt = np.diff(t)
    bad = np.flatnonzero(~(dt > 0))
    if bad.size:
        k = int(bad[0])
        raise CounterError(
            r.meter_id,
            f"reading times must strictly increase; {from_epoch_s(float(t[k])).isoformat()} is "
            f"followed by {from_epoch_s(float(t[k + 1])).isoformat()} (de-duplicate and sort)",
        )
    # a step the store thinned out (rollups) is known to hold no gap, whatever its length
    gap_steps = np.flatnonzero((dt > gap_factor * r.poll_interval_s) & ~r.continuous_steps()[1:])
    gap_steps += 1
    del dt
    corr, unknown = _event_steps(r, t, v)
    steps = np.array(sorted(corr), dtype=np.int64)
    offsets = np.cumsum([corr[i] for i in steps.tolist()]) if steps.size else _EMPTY
    series = CounterSeries(
        r.meter_id,
        r.medium,
        r.unit,
        t,
        v,
        steps,
        np.asarray(offsets, float),
        _EMPTY,
        _EMPTY,
        _EMPTY,
        _EMPTY,
    )
    unknown_steps = np.array(sorted(unknown), dtype=np.int64)
    est_steps = np.setdiff1d(gap_steps, unknown_steps)
    unc_steps = np.union1d(gap_steps, unknown_steps)
    est_amount = series.cum(est_steps) - series.cum(est_steps - 1)
    est_x, est_y = _knots(t[est_steps - 1], t[est_steps], est_amount)
    unc_x, unc_y = _knots(t[unc_steps - 1], t[unc_steps], t[unc_steps] - t[unc_steps - 1])
    anomalies = tuple(
        Anomaly(r.meter_id, float(t[i - 1]), float(t[i]), unknown[i])
        for i in unknown_steps.tolist()
    )
    return CounterSeries(
        r.meter_id,
        r.medium,
        r.unit,
        t,
        v,
        steps,
        series.corr_off,
        est_x,
        est_y,
        unc_x,
        unc_y,
        anomalies,
    )
