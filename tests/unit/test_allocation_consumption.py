"""Consumption from counter readings: each case is a meter's readings and events, an interval,
and what it consumed, how much of that is estimated in time, and the coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pytest

from collector.allocation.consumption import CounterError, prepare
from collector.allocation.counters import CounterEvent, CounterReadings, EventKind, quality_codes
from tests.allocation_helpers import T0, H, at, readings

pytestmark = pytest.mark.unit
G, COMM, OOR, RST = "good", "comm_error", "out_of_range", "counter_reset"


@dataclass(frozen=True)
class Case:
    name: str
    points: list[tuple[float, float | None, str]]
    interval: tuple[float, float]  # hours
    quantity: float
    estimated: float = 0.0
    coverage: float = 1.0
    anomalies: int = 0
    events: list[CounterEvent] = field(default_factory=list)


CASES = [
    Case("plain, interpolated at both ends", [(0, 0, G), (1, 10, G), (2, 20, G), (3, 30, G)],
         (0.5, 2.5), 20.0),
    Case("wrap at 10⁵ inside the interval",
         [(0, 99990, G), (1, 99995, G), (2, 5, G), (3, 15, G)], (0.5, 2.5), 17.5,
         events=[CounterEvent(at(2), EventKind.WRAP, before=99995, after=5, wrap=1e5)]),
    Case("replacement: up to the old final, then from the new first",
         [(0, 100, G), (1, 110, G), (2, 3, G), (3, 13, G)], (0, 3), 28.0,
         events=[CounterEvent(at(2), EventKind.REPLACEMENT, before=115, after=0)]),
    Case("reset: counted from the first reading at the new level, the step is unknown",
         [(0, 100, G), (1, 110, G), (1.5, 0.5, OOR), (2, 4, RST), (3, 14, G)], (0, 3), 23.0,
         coverage=2 / 3, anomalies=1,
         events=[CounterEvent(at(2), EventKind.RESET, before=110, after=1)]),
    Case("backward step with no event: that step is unknown",
         [(0, 100, G), (1, 110, G), (2, 50, G), (3, 60, G)], (0, 3), 20.0, coverage=2 / 3,
         anomalies=1),
    Case("backward step within the meter's rounding: no anomaly, nothing lost",
         [(0, 100, G), (1, 110, G), (2, 110 - 1e-8, G), (3, 120, G)], (0, 3), 20.0),
    Case("gap the counter survived: delta used, estimated in time",
         [(0, 0, G), (1, 10, G), (5, 50, G), (6, 60, G)], (0, 6), 60.0, estimated=40.0,
         coverage=2 / 6),
    Case("inside a gap: all estimated, no coverage",
         [(0, 0, G), (1, 10, G), (5, 50, G), (6, 60, G)], (2, 3), 10.0, estimated=10.0,
         coverage=0.0),
    Case("failed reads shorter than the gap threshold are not a gap",
         [(0, 0, G), (1, None, COMM), (2, 20, G), (3, 30, G)], (0, 3), 30.0),
    Case("a suspect (out_of_range) value is not used",
         [(0, 0, G), (1, 0.0, OOR), (2, 20, G)], (0, 2), 20.0),
    Case("wrap evidence that does not fit the readings: the step is unknown",
         [(0, 10, G), (1, 20, G), (2, 30, G)], (0, 2), 10.0, coverage=0.5, anomalies=1,
         events=[CounterEvent(at(2), EventKind.WRAP, before=20, after=30, wrap=1e5)]),
    Case("two events in one step: unknown",
         [(0, 10, G), (1, 20, G), (2, 5, G)], (0, 2), 10.0, coverage=0.5, anomalies=1,
         events=[CounterEvent(at(2), EventKind.WRAP, wrap=1e5),
                 CounterEvent(at(1.5), EventKind.REPLACEMENT, before=21, after=0)]),
    Case("an event before the first reading changes nothing",
         [(0, 10, G), (1, 20, G)], (0, 1), 10.0,
         events=[CounterEvent(at(-1), EventKind.REPLACEMENT, before=9, after=0)]),
    Case("before the first reading: nothing known",
         [(0, 10, G), (1, 20, G)], (-1, 0), 0.0, coverage=0.0),
    Case("after the last reading: nothing known",
         [(0, 10, G), (1, 20, G)], (0.5, 1.5), 5.0, coverage=0.5),
    Case("agent's backward_step and jump events are informational",
         [(0, 10, G), (1, 0, OOR), (2, 30, G)], (0, 2), 20.0,
         events=[CounterEvent(at(1), EventKind.BACKWARD_STEP)]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_consumption_over_an_interval(case: Case) -> None:
    r = readings("m", case.points, events=case.events, poll_s=H)
    s = prepare(r)
    a, b = (T0.timestamp() + h * H for h in case.interval)
    iv = s.intervals(np.array([a, b]))
    assert iv.quantity[0] == pytest.approx(case.quantity, abs=1e-9)
    assert iv.estimated[0] == pytest.approx(case.estimated, abs=1e-9)
    coverage = 1 - iv.uncovered_s[0] / iv.length_s[0]
    assert coverage == pytest.approx(case.coverage, abs=1e-12)
    assert len(s.anomalies) == case.anomalies
    for anomaly in s.anomalies:
        assert "meter m" in str(anomaly) and anomaly.detail


def test_interpolation_equals_np_interp_on_the_materialised_counter() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        n = int(rng.integers(2, 400))
        t = T0.timestamp() + np.cumsum(rng.uniform(1, 30, n))
        v = 1000 + np.cumsum(rng.uniform(0, 5, n))
        events = []
        for i in np.sort(rng.choice(np.arange(1, n), size=min(3, n - 1), replace=False)):
            v[i:] -= v[i] - 1.0  # a replacement: the new meter starts at 1
            ts = datetime.fromtimestamp(float(t[i]), T0.tzinfo)
            events.append(CounterEvent(ts, EventKind.REPLACEMENT, before=float(v[i - 1]), after=0))
        q = np.zeros(n, np.uint8)
        s = prepare(CounterReadings("m", "e", "kWh", t, v, q, 10.0, tuple(events)))
        x = np.sort(rng.uniform(t[0] - 50, t[-1] + 50, 200))
        assert np.allclose(s.at(x), np.interp(x, s.t, s.cumulative()), rtol=1e-12, atol=1e-9)
        assert np.all(np.diff(s.cumulative()) >= 0) and not s.anomalies


def test_readings_out_of_time_order_are_refused_with_the_instant() -> None:
    r = readings("m", [(0, 1, G), (2, 2, G), (1, 3, G)])
    with pytest.raises(CounterError, match="strictly increase") as err:
        prepare(r)
    assert err.value.meter_id == "m" and "T02:00:00" in str(err.value)


def test_naive_event_time_and_missing_evidence_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        CounterEvent(datetime(2026, 1, 1), EventKind.WRAP, wrap=10)
    with pytest.raises(ValueError, match="after"):
        CounterEvent(T0, EventKind.RESET, before=5)
    with pytest.raises(ValueError, match="wrap"):
        CounterEvent(T0, EventKind.WRAP)


def test_unknown_quality_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reading quality 'fine'"):
        quality_codes(["good", "fine"])


def test_no_usable_reading_means_no_consumption_and_no_coverage() -> None:
    s = prepare(readings("m", [(0, None, COMM), (1, 5, G)]))
    iv = s.intervals(np.array([T0.timestamp(), T0.timestamp() + H]))
    assert iv.quantity[0] == 0 and iv.uncovered_s[0] == H
