"""Counter rollups: a meter's usable readings summarised per 15 minutes, so that a year's batch
figures need the raw readings only where they change the result.

Pure: no I/O. The ledger keeps one row per (device, quantity, bucket) in step with ingest
(collector/ledger/store.py merges each batch's readings into it in SQL) and can rebuild every
row from the raw readings (`summarise`); `metertrace collector db rollups --check` compares the
two.

Why the result is the same as from every raw reading. The allocation evaluates a meter's
counter only at the batch boundaries ("cuts"), by linear interpolation between the readings on
either side, and judges each step between consecutive readings for gaps, counter events and
backward steps (collector/allocation/consumption.py). Between two readings of one bucket with no
gap, no event and no backward step, the consumption is the difference of their values, whatever
lies between. So the store gives, in order:
- every usable reading of the buckets that are not clean (a step longer than the gap threshold,
  a backward or zero-length step, a counter event, readings merged out of order, or the edge of
  the requested range), and
- of each clean bucket its first and last reading and the readings on either side of each cut,
with `continuous` set on the steps inside a clean bucket (they hold no gap, however long the
thinned step looks). Steps between buckets are real steps between raw neighbours and are judged
as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

BUCKET_US = 15 * 60 * 1_000_000
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Rollup:
    """One bucket of one meter's counter (times in µs since the epoch, UTC).

    max_dt: the longest step between consecutive readings in the bucket (0 for one reading);
    min_dv: the smallest value step (None for one reading); dirty: merged out of order, so the
    step figures are unknown and the bucket is read raw."""

    bucket: int
    first_ts: int
    first_value: float
    last_ts: int
    last_value: float
    n: int
    max_dt: int
    min_dv: float | None
    dirty: bool = False


def bucket_of(ts_us: int) -> int:
    return ts_us - ts_us % BUCKET_US


def summarise(ts_us: I64, values: F64) -> list[Rollup]:
    """The rollups of usable readings sorted by time (the rebuild, and each ingest batch's)."""
    if ts_us.size == 0:
        return []
    buckets = ts_us - ts_us % BUCKET_US
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    last = np.r_[starts[1:], ts_us.size] - 1
    # the steps inside each bucket: step k goes from reading k to k+1, inside if k < last
    dt = np.diff(ts_us)
    dv = np.diff(values)
    inside = np.ones(dt.size, dtype=bool)
    inside[last[:-1]] = False  # the step from a bucket's last reading into the next bucket
    big = np.iinfo(np.int64).min
    dt_in = np.where(inside, dt, big)
    dv_in = np.where(inside, dv, np.inf)
    zero_in = np.where(inside, dt <= 0, False)
    has_steps = last > starts
    # reduceat over [start, last): an empty slice would give one element, so mask by has_steps
    idx = np.minimum(starts, max(dt.size - 1, 0))
    if dt.size:
        max_dt = np.maximum.reduceat(dt_in, idx)
        min_dv = np.minimum.reduceat(dv_in, idx)
        zero = np.logical_or.reduceat(zero_in, idx)
    else:
        max_dt = np.zeros(starts.size, np.int64)
        min_dv = np.full(starts.size, np.inf)
        zero = np.zeros(starts.size, bool)
    return [
        Rollup(
            bucket=int(buckets[s]),
            first_ts=int(ts_us[s]),
            first_value=float(values[s]),
            last_ts=int(ts_us[e]),
            last_value=float(values[e]),
            n=int(e - s + 1),
            max_dt=int(mx) if steps else 0,
            min_dv=float(mn) if steps else None,
            # a zero or negative time step cannot be thinned: the raw path must see it
            dirty=bool(steps and z),
        )
        for s, e, steps, mx, mn, z in zip(
            starts.tolist(), last.tolist(), has_steps.tolist(), max_dt.tolist(),
            min_dv.tolist(), zero.tolist(), strict=True,
        )
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rollups:
    """A meter's rollups in time order, as columns (a year is 35,040 buckets per meter: arrays,
    not objects). min_dv is NaN where a bucket has one reading."""

    bucket: I64
    first_ts: I64
    first_value: F64
    last_ts: I64
    last_value: F64
    n: I64
    max_dt: I64
    min_dv: F64
    dirty: NDArray[np.bool_]

    @classmethod
    def of(cls, rows: Sequence[Rollup] | Sequence[Sequence[Any]]) -> Rollups:
        """From Rollup objects or from rows (bucket, first_ts, ..., min_dv, dirty)."""
        if not rows:
            return cls.from_matrix(np.zeros((0, 9)))
        tuples = [astuple(r) if isinstance(r, Rollup) else tuple(r) for r in rows]
        return cls.from_matrix(
            np.array([[np.nan if x is None else x for x in r] for r in tuples], np.float64)
        )

    @classmethod
    def from_matrix(cls, m: F64) -> Rollups:
        """From an (n, 9) float array of the columns in order, min_dv NaN for none (times in
        µs stay exact as float64 up to 2⁵³ µs, the year 2255)."""
        i64 = np.int64
        return cls(
            m[:, 0].astype(i64), m[:, 1].astype(i64), m[:, 2].copy(), m[:, 3].astype(i64),
            m[:, 4].copy(), m[:, 5].astype(i64), m[:, 6].astype(i64), m[:, 7].copy(),
            m[:, 8] != 0,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.bucket.size)

    def rows(self) -> list[Rollup]:
        return [
            Rollup(int(b), int(ft), float(fv), int(lt), float(lv), int(n), int(dt),
                   None if dv != dv else float(dv), bool(d))
            for b, ft, fv, lt, lv, n, dt, dv, d in zip(
                self.bucket.tolist(), self.first_ts.tolist(), self.first_value.tolist(),
                self.last_ts.tolist(), self.last_value.tolist(), self.n.tolist(),
                self.max_dt.tolist(), self.min_dv.tolist(), self.dirty.tolist(), strict=True,
            )
        ]  # fmt: skip


def poll_interval_s(r: Rollups) -> float | None:
    """The meter's poll interval in seconds: the median of each bucket's mean step and of the
    steps from one bucket's last reading to the next one's first (None: fewer than two
    readings). Computed from the rollups alone, for the raw and the thinned counter alike, so
    the collector and an offline verifier judge gaps by the same interval; a bucket's mean step
    is its median step when the meter polls regularly, and a failed read among ~90 lengthens it
    by about 1 %, which only moves the gap threshold (3 × the interval) by as much."""
    several = r.n >= 2
    inner = (r.last_ts[several] - r.first_ts[several]) / (r.n[several] - 1)
    across = (r.first_ts[1:] - r.last_ts[:-1]).astype(np.float64)
    steps = np.concatenate((inner, across))
    return float(np.median(steps)) / 1e6 if steps.size else None


@dataclass(frozen=True, slots=True)
class Plan:
    """What to read for a counter over [lo, hi] (µs): raw ranges, and the clean buckets."""

    raw: list[tuple[int, int]]  # [from, to) ranges read in full, merged
    rollups: Rollups
    clean: NDArray[np.bool_]  # per rollup: thinned to first/last and the cut neighbours

    @property
    def clean_buckets(self) -> list[int]:
        return [int(b) for b in self.rollups.bucket[self.clean]]


def plan(
    rollups: Rollups, lo: int, hi: int, event_ts_us: Sequence[int], gap_threshold_us: float
) -> Plan:
    """Which buckets over [lo, hi] are read raw and which are thinned. A clean bucket: not
    merged out of order, no step longer than the gap threshold, none backward (NaN: one
    reading), no counter event, not at the range's edges (partly outside it)."""
    r = rollups
    clean = ~r.dirty & (r.max_dt <= gap_threshold_us) & ~(r.min_dv < 0.0)
    clean &= (r.bucket != bucket_of(lo)) & (r.bucket != bucket_of(hi))
    if len(event_ts_us):
        events = np.array(list(event_ts_us), dtype=np.int64)
        clean &= ~np.isin(r.bucket, events - events % BUCKET_US)
    raw: list[tuple[int, int]] = []
    for b in r.bucket[~clean].tolist():
        a, e = max(b, lo), min(b + BUCKET_US, hi + 1)
        if raw and raw[-1][1] >= a:
            raw[-1] = (raw[-1][0], max(raw[-1][1], e))
        else:
            raw.append((a, e))
    return Plan(raw, r, clean)


def assemble(
    plan: Plan, raw_ts: I64, raw_v: F64, near_ts: I64, near_v: F64
) -> tuple[I64, F64, NDArray[np.bool_]]:
    """The thinned counter: times, values and `continuous` per reading (see the module doc).

    raw_*: every usable reading of the plan's raw ranges, kept as they are (two readings at one
    instant stay two, so the allocation refuses them as it would from every reading); near_*:
    the readings on either side of each cut, from any bucket (a point already given is not
    repeated)."""
    r, c = plan.rollups, plan.clean
    other_t = np.concatenate((near_ts.astype(np.int64), r.first_ts[c], r.last_ts[c]))
    other_v = np.concatenate((near_v, r.first_value[c], r.last_value[c]))
    other_t, idx = np.unique(other_t, return_index=True)
    other_v = other_v[idx]
    fresh = ~np.isin(other_t, raw_ts)
    t = np.concatenate((raw_ts.astype(np.int64), other_t[fresh]))
    v = np.concatenate((raw_v, other_v[fresh]))
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    b = t - t % BUCKET_US
    in_clean = np.isin(b, r.bucket[c])
    cont = np.zeros(t.size, dtype=bool)
    cont[1:] = (b[1:] == b[:-1]) & in_clean[1:]
    return t, v, cont
