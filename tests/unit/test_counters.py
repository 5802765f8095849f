"""Counter classification on the gateway, as data: each case is named after the failure it pins.

A case is a policy and a list of readings (value, seconds after the previous one) with what the
tracker must say about each: quality, consumption since the last trusted reading, event kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from device_profiles import DataType, Function, Kind, Order, Point, find_profile
from edge_agent.counters import CounterPolicy, CounterTracker, EventKind
from metertrace.wire import Quality

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
G, OOR, RESET = Quality.GOOD, Quality.OUT_OF_RANGE, Quality.COUNTER_RESET
U32_CENTI = 2**32 * 0.01  # a u32 register of 0.01 kWh rolls over here


def u32(raw: int) -> float:
    """A u32 register of 0.01 kWh, as the decoder publishes it."""
    return float(f"{raw * 0.01:.15g}")


@dataclass(frozen=True)
class Case:
    name: str
    policy: CounterPolicy
    # (value, seconds since the previous reading, quality, consumption, event kind)
    steps: list[tuple[float, float, Quality, float | None, EventKind | None]]


FIRST = (G, None, None)  # the first reading has nothing to count from

CASES = [
    Case(
        "transient_zero_is_not_a_reset",
        CounterPolicy(),
        [
            (1000.0, 0, *FIRST),
            (0.0, 60, OOR, None, EventKind.BACKWARD_STEP),
            (1000.5, 60, G, 0.5, None),  # counted from the trusted 1000.0: no spike
        ],
    ),
    Case(
        "transient_zero_twice_is_still_not_a_reset",
        CounterPolicy(confirm_readings=3),
        [
            (1000.0, 0, *FIRST),
            (0.0, 60, OOR, None, EventKind.BACKWARD_STEP),
            (0.0, 60, OOR, None, None),
            (1000.5, 60, G, 0.5, None),
        ],
    ),
    Case(
        "backward_step_by_one_lsb_is_rounding",
        CounterPolicy(jitter=0.01),
        [
            (1000.00, 0, *FIRST),
            (999.99, 60, G, 0.0, None),  # never negative
            (1000.02, 60, G, 0.02, None),  # from the trusted 1000.00: nothing counted twice
        ],
    ),
    Case(
        "wrap_at_2_pow_32",
        CounterPolicy(wrap=U32_CENTI, jitter=0.01),
        [
            (u32(2**32 - 6), 0, *FIRST),
            (u32(5), 60, G, 0.11, EventKind.WRAP),  # 6 steps to the top, 5 after it
            (u32(7), 60, G, 0.02, None),
        ],
    ),
    Case(
        "wrap_at_decimal_999999_99",
        CounterPolicy(wrap=1_000_000.0, jitter=0.01),  # the display shows 999999.99 at most
        [
            (999_999.95, 0, *FIRST),
            (0.03, 60, G, 0.08, EventKind.WRAP),
        ],
    ),
    Case(
        "drop_from_mid_range_is_not_a_wrap",
        CounterPolicy(wrap=1_000_000.0),
        [
            (990_000.0, 0, *FIRST),
            (20_000.0, 60, OOR, None, EventKind.BACKWARD_STEP),  # a wrap would mean 30 MWh
        ],
    ),
    Case(
        "wrap_faster_than_max_rate_is_not_a_wrap",
        CounterPolicy(wrap=1_000_000.0, max_rate_per_h=100.0),
        [
            (999_990.0, 0, *FIRST),
            (500.0, 60, OOR, None, EventKind.BACKWARD_STEP),  # 510 kWh in a minute at 100 kW
        ],
    ),
    Case(
        "reset_confirmed_after_three_readings",
        CounterPolicy(confirm_readings=3),
        [
            (5000.0, 0, *FIRST),
            (0.2, 60, OOR, None, EventKind.BACKWARD_STEP),
            (0.5, 60, OOR, None, None),
            (1.0, 60, RESET, 0.8, EventKind.RESET),  # counted from the first reading after it
            (1.5, 60, G, 0.5, None),
        ],
    ),
    Case(
        "implausible_jump_is_out_of_range_not_a_spike",
        CounterPolicy(max_rate_per_h=100.0),
        [
            (1000.0, 0, *FIRST),
            (5000.0, 60, OOR, None, EventKind.JUMP),
            (1001.0, 60, G, 1.0, None),
        ],
    ),
    Case(
        "jump_that_stays_is_a_new_level_without_its_step",
        CounterPolicy(max_rate_per_h=100.0, confirm_readings=3),
        [
            (1000.0, 0, *FIRST),
            (50_000.0, 60, OOR, None, EventKind.JUMP),
            (50_001.0, 60, OOR, None, None),
            (50_002.0, 60, RESET, 2.0, EventKind.RESET),
            (50_003.0, 60, G, 1.0, None),
        ],
    ),
    Case(
        "long_outage_allows_a_large_increase",
        CounterPolicy(max_rate_per_h=100.0),
        [(1000.0, 0, *FIRST), (1900.0, 10 * 3600, G, 900.0, None)],
    ),
    Case(
        "torn_read_high_word_ahead",  # hi read after the carry, lo before it: +65536 steps
        CounterPolicy(wrap=U32_CENTI, jitter=0.01, max_rate_per_h=100.0),
        [
            (u32(0x0001_FFFF), 0, *FIRST),
            (u32(0x0002_FFFF), 10, OOR, None, EventKind.JUMP),
            (u32(0x0002_0003), 10, G, 0.04, None),
        ],
    ),
    Case(
        "torn_read_low_word_behind",  # hi read before the carry, lo after it: −65533 steps
        CounterPolicy(wrap=U32_CENTI, jitter=0.01),
        [
            (u32(0x0001_FFFF), 0, *FIRST),
            (u32(0x0001_0002), 10, OOR, None, EventKind.BACKWARD_STEP),
            (u32(0x0002_0004), 10, G, 0.05, None),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_counter_case(case: Case):
    tracker = CounterTracker("dev-1")
    ts = T0
    for i, (value, dt, quality, consumption, kind) in enumerate(case.steps):
        ts += timedelta(seconds=dt)
        r = tracker.observe("energy.active.import", value, ts, case.policy)
        where = f"{case.name} step {i} ({value})"
        assert r.quality is quality, where
        if consumption is None:
            assert r.consumption is None, where
        else:
            assert r.consumption == pytest.approx(consumption, abs=1e-6), where
            assert r.consumption >= 0, where
        assert (r.event.kind if r.event else None) is kind, where
        if r.event:
            assert r.event.ts == ts and r.event.ts_after <= ts and r.event.ts_before < ts
            assert (r.event.device, r.event.quantity) == ("dev-1", "energy.active.import")


def test_event_carries_the_evidence():
    tracker = CounterTracker("d")
    policy = CounterPolicy(confirm_readings=2)
    tracker.observe("q", 5000.0, T0, policy)
    first = tracker.observe("q", 3.0, T0 + timedelta(minutes=1), policy).event
    assert first is not None and first.evidence() == {
        "before": 5000.0,
        "after": 3.0,
        "ts_before": "2026-01-01T00:00:00+00:00",
        "ts_after": "2026-01-01T00:01:00+00:00",
    }
    reset = tracker.observe("q", 4.0, T0 + timedelta(minutes=2), policy).event
    assert reset is not None and reset.kind is EventKind.RESET
    assert (reset.before, reset.after, reset.ts_after) == (5000.0, 3.0, T0 + timedelta(minutes=1))
    assert reset.ts == T0 + timedelta(minutes=2)
    assert tracker.trusted("q") == (4.0, T0 + timedelta(minutes=2))


def test_wrap_event_names_the_wrap_value():
    tracker = CounterTracker("d")
    policy = CounterPolicy(wrap=1_000_000.0)
    tracker.observe("q", 999_999.0, T0, policy)
    event = tracker.observe("q", 1.0, T0 + timedelta(minutes=1), policy).event
    assert event is not None and event.evidence()["wrap"] == 1_000_000.0


def test_meter_replacement():
    tracker = CounterTracker("d")
    policy = CounterPolicy()
    tracker.observe("q", 5000.0, T0, policy)
    r = tracker.replace_meter(
        "q",
        old_final=5010.0,
        old_ts=T0 + timedelta(minutes=5),
        new_first=3.0,
        new_ts=T0 + timedelta(minutes=20),
    )
    assert (r.quality, r.consumption) == (G, 10.0)  # up to the old meter's final reading
    assert r.event is not None and r.event.kind is EventKind.REPLACEMENT
    assert (r.event.before, r.event.after) == (5010.0, 3.0)
    nxt = tracker.observe("q", 4.5, T0 + timedelta(minutes=21), policy)
    assert (nxt.quality, nxt.consumption, nxt.event) == (G, 1.5, None)  # the new meter counts


def test_replacement_without_history_or_with_a_lower_final_counts_nothing():
    tracker = CounterTracker("d")
    r = tracker.replace_meter("q", old_final=10.0, old_ts=T0, new_first=0.0, new_ts=T0)
    assert r.consumption is None and r.event is not None and "unknown" in r.event.detail
    tracker.observe("q", 50.0, T0 + timedelta(minutes=1), CounterPolicy())
    r = tracker.replace_meter(
        "q",
        old_final=40.0,
        old_ts=T0 + timedelta(minutes=2),
        new_first=0.0,
        new_ts=T0 + timedelta(minutes=3),
    )
    assert r.consumption is None  # never negative


def test_readings_must_arrive_in_time_order():
    tracker = CounterTracker("d")
    tracker.observe("q", 1.0, T0, CounterPolicy())
    with pytest.raises(ValueError, match="feed readings in time order"):
        tracker.observe("q", 2.0, T0, CounterPolicy())


def test_restore_resumes_after_a_restart():
    tracker = CounterTracker("d")
    tracker.restore("q", 1000.0, T0)
    r = tracker.observe("q", 1000.25, T0 + timedelta(minutes=1), CounterPolicy())
    assert (r.quality, r.consumption) == (G, 0.25)


def _point(dtype: DataType, scale: float, wrap: float | None, rate: float | None = None) -> Point:
    return Point(
        "energy.active.import",
        "kWh",
        Kind.COUNTER,
        Function.HOLDING,
        0,
        dtype,
        Order.BIG,
        Order.BIG,
        scale,
        0.0,
        wrap=wrap,
        max_rate_per_h=rate,
    )


def test_policy_for_a_profile_point():
    p = _point(DataType.U32, 0.01, U32_CENTI, rate=50.0)
    policy = CounterPolicy.for_point(p, factor=40.0)  # CT 40: the secondary register × 40
    assert policy.wrap == pytest.approx(U32_CENTI * 40)
    assert policy.max_rate_per_h == pytest.approx(2000.0)
    assert policy.jitter == pytest.approx(0.4)
    assert CounterPolicy.for_point(p, max_rate_per_h=7.0).max_rate_per_h == 7.0  # config wins
    f32 = CounterPolicy.for_point(_point(DataType.F32, 1.0, None))
    assert (f32.wrap, f32.jitter) == (None, 0.0) and f32.tolerance(1e6) == pytest.approx(
        0.2384, 1e-3
    )


def test_policy_of_the_bcd_gas_total():
    point = {p.quantity: p for p in find_profile("fuxin-gas-flow-computer").points()}
    policy = CounterPolicy.for_point(point["volume.gas.standard"])
    assert policy.wrap == pytest.approx(1e8) and policy.jitter == pytest.approx(1e-4)


@pytest.mark.parametrize(
    "kw", [{"wrap": 0.0}, {"max_rate_per_h": -1.0}, {"wrap_fraction": 1.5}, {"confirm_readings": 0}]
)
def test_nonsense_policy_is_refused(kw):
    with pytest.raises(ValueError):
        CounterPolicy(**kw)
