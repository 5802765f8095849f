"""Rollups: a counter thinned to what the allocation needs gives the same figures as every raw
reading (collector/ledger/rollups.py explains why), on counters with gaps, backward steps,
counter events and rounding, at random cuts."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.allocation.consumption import prepare
from collector.allocation.counters import CounterEvent, CounterReadings, EventKind
from collector.ledger.rollups import (
    BUCKET_US,
    Rollup,
    Rollups,
    assemble,
    plan,
    poll_interval_s,
    summarise,
)

pytestmark = pytest.mark.unit

POLL_US = 10_000_000
GAP_FACTOR = 3.0


def neighbours(t: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Indices of the readings on either side of each cut (as CounterSeries.at uses them)."""
    i = np.searchsorted(t, cuts, side="right")
    both = np.concatenate((i - 1, i))
    return np.unique(both[(both >= 0) & (both < t.size)])


def thinned(t: np.ndarray, v: np.ndarray, cuts_us: np.ndarray, events: list[int]):
    rollups = Rollups.of(summarise(t, v))
    poll = poll_interval_s(rollups)
    assert poll is not None
    p = plan(rollups, int(t[0]), int(t[-1]), events, GAP_FACTOR * poll * 1e6)
    raw = np.zeros(t.size, dtype=bool)
    for a, b in p.raw:
        raw |= (t >= a) & (t < b)
    near = neighbours(t, cuts_us)
    tt, vv, cont = assemble(p, t[raw], v[raw], t[near], v[near])
    return tt, vv, cont, poll, int(raw.sum())


def readings(t_us, v, poll_s, events, continuous=None) -> CounterReadings:
    return CounterReadings(
        "m", "electricity", "kWh", t_us / 1e6, v, np.zeros(t_us.size, np.uint8), poll_s,
        tuple(events), continuous=continuous,
    )  # fmt: skip


@st.composite
def counters(draw):
    n = draw(st.integers(20, 1500))
    dt = np.full(n - 1, POLL_US, dtype=np.int64)
    for _ in range(draw(st.integers(0, 4))):  # gaps, some longer than a bucket
        dt[draw(st.integers(0, n - 2))] = draw(st.integers(4, 300)) * POLL_US
    jitter = np.array(draw(st.lists(st.integers(-2000, 2000), min_size=n - 1, max_size=n - 1)))
    t = np.cumsum(np.r_[1_700_000_000_000_000, dt + jitter]).astype(np.int64)
    rate = draw(st.floats(0.0, 5.0))
    v = 1000.0 + np.cumsum(np.r_[0.0, rate * (dt + jitter) / 1e6])
    for _ in range(draw(st.integers(0, 2))):  # backward steps, with or without an event
        k = draw(st.integers(1, n - 1))
        v[k:] -= draw(st.sampled_from([1e-9, 50.0]))
    events = []
    if draw(st.booleans()):  # a meter replacement: a new counter from 0
        k = draw(st.integers(1, n - 1))
        before = float(v[k - 1]) + 0.5
        v[k:] = v[k:] - v[k] + 3.0
        events.append(CounterEvent(datetime.fromtimestamp(t[k] / 1e6, UTC),
                                   EventKind.REPLACEMENT, before=before, after=0.0))  # fmt: skip
    cuts_us = np.sort(
        np.array(
            draw(
                st.lists(
                    st.integers(int(t[0]) - 10**7, int(t[-1]) + 10**7), min_size=2, max_size=40
                )
            ),
            dtype=np.int64,
        )
    )
    return t, v, events, np.unique(cuts_us)


@settings(max_examples=150, deadline=None)
@given(counters())
def test_thinned_counter_gives_the_figures_of_every_raw_reading(case):
    t, v, events, cuts_us = case
    ev_us = [round(e.ts.timestamp() * 1e6) for e in events]
    tt, vv, cont, poll, _ = thinned(t, v, cuts_us, ev_us)
    full = prepare(readings(t, v, poll, events))
    thin = prepare(readings(tt, vv, poll, events, cont))
    cuts = cuts_us / 1e6
    a, b = full.intervals(cuts), thin.intervals(cuts)
    np.testing.assert_array_equal(a.quantity, b.quantity)
    np.testing.assert_array_equal(a.estimated, b.estimated)
    np.testing.assert_allclose(a.uncovered_s, b.uncovered_s, rtol=0, atol=1e-6)
    assert [x.detail for x in full.anomalies] == [x.detail for x in thin.anomalies]


def test_a_clean_year_day_is_read_as_two_points_a_bucket_and_the_cut_neighbours():
    day = 8640
    t = 1_700_000_000_000_000 + np.arange(day, dtype=np.int64) * POLL_US
    v = np.cumsum(np.full(day, 0.25))
    cuts = np.array([t[1000] + 3_000_000, t[5000] + 1_000_000])
    tt, _, cont, _, n_raw = thinned(t, v, cuts, [])
    buckets = day * POLL_US // BUCKET_US
    assert tt.size <= 2 * buckets + 4 + n_raw
    assert n_raw <= 2 * BUCKET_US // POLL_US  # only the two edge buckets are read raw
    assert cont.sum() > 0


def test_summarise_states_steps_and_refuses_to_thin_a_zero_step():
    t = np.array([0, 10, 20, 20], dtype=np.int64) * 1_000_000
    (r,) = summarise(t, np.array([1.0, 2.0, 1.5, 3.0]))
    assert (r.first_ts, r.last_ts, r.n, r.max_dt, r.min_dv) == (0, 20_000_000, 4, 10_000_000, -0.5)
    assert r.dirty


def test_a_merged_out_of_order_bucket_is_read_raw():
    r = Rollup(0, 0, 1.0, 100, 2.0, 5, 10, 0.1, dirty=True)
    p = plan(Rollups.of([r, Rollup(BUCKET_US, BUCKET_US, 3.0, BUCKET_US + 9, 3.5, 2, 9, 0.5)]),
             -BUCKET_US, 3 * BUCKET_US, [], 1e9)  # fmt: skip
    assert p.raw == [(0, BUCKET_US)] and p.clean_buckets == [BUCKET_US]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40 * BUCKET_US // POLL_US), st.floats(-5, 5)),
                min_size=1, max_size=300))  # fmt: skip
def test_summarise_equals_a_plain_loop_over_each_bucket(points):
    t = np.array(sorted({p[0] for p in points}), dtype=np.int64) * POLL_US // 7
    v = np.cumsum(np.array([p[1] for p in points[: t.size]] + [0.0] * (t.size - len(points))))
    got = summarise(t, v)
    want = []
    for b in sorted({int(x - x % BUCKET_US) for x in t}):
        m = (t - t % BUCKET_US) == b
        bt, bv = t[m], v[m]
        want.append(Rollup(b, int(bt[0]), float(bv[0]), int(bt[-1]), float(bv[-1]), int(m.sum()),
                           int(np.diff(bt).max()) if bt.size > 1 else 0,
                           float(np.diff(bv).min()) if bt.size > 1 else None,
                           bool(bt.size > 1 and np.diff(bt).min() <= 0)))  # fmt: skip
    assert got == want
