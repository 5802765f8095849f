"""The outbox's drop policy, on rows described in the test: oldest first, counted, reported."""

from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.retention import LOW_WATER, Held, Limits, choose_drops, over_limits
from metertrace.wire import LossReason

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def rows(spec: list[tuple[str, int, float]], size: int = 100) -> list[Held]:
    """(device, seq, age in days) oldest first -> rows with ids 1..n."""
    return [
        Held(i, dev, seq, size, NOW - age * DAY, droppable=True)
        for i, (dev, seq, age) in enumerate(spec, start=1)
    ]


def test_within_bounds_nothing_is_dropped():
    limits = Limits(max_bytes=1000, max_age=30 * DAY)
    held = rows([("a", 1, 29.0), ("a", 2, 1.0)])
    assert not over_limits(200, held[0].at, NOW, limits)
    assert choose_drops(held, total_bytes=200, now=NOW, limits=limits) == ([], [])


def test_bytes_bound_drops_the_oldest_down_to_the_low_water_mark_and_counts_per_device():
    limits = Limits(max_bytes=1000, max_age=30 * DAY)
    # 12 rows of 100 B = 1200 B > 1000: drop until <= 900 B, i.e. the 3 oldest
    held = rows([("a", 1, 1), ("b", 1, 1), ("a", 2, 1)] + [("a", s, 0.5) for s in range(3, 12)])
    assert over_limits(1200, held[0].at, NOW, limits)
    ids, losses = choose_drops(held, total_bytes=1200, now=NOW, limits=limits)
    assert ids == [1, 2, 3]
    assert 1200 - 100 * len(ids) <= LOW_WATER * limits.max_bytes
    by_device = {(x.device, x.first_seq, x.last_seq, x.count, x.reason) for x in losses}
    assert by_device == {
        ("a", 1, 2, 2, LossReason.MAX_BYTES),
        ("b", 1, 1, 1, LossReason.MAX_BYTES),
    }
    a = next(x for x in losses if x.device == "a")
    assert a.first_ts == NOW - DAY and a.last_ts == NOW - DAY


def test_age_bound_drops_everything_older_than_the_low_water_age():
    limits = Limits(max_bytes=10**9, max_age=30 * DAY)
    held = rows([("a", 1, 31), ("a", 2, 28), ("a", 3, 26.5), ("a", 4, 1)])
    ids, losses = choose_drops(held, total_bytes=400, now=NOW, limits=limits)
    # 31 d > 30 d triggers; everything older than 27 d (90 %) goes, in one event
    assert ids == [1, 2]
    assert [(x.first_seq, x.last_seq, x.count, x.reason) for x in losses] == [
        (1, 2, 2, LossReason.MAX_AGE)
    ]


def test_events_and_rows_held_by_the_mqtt_client_are_never_dropped():
    limits = Limits(max_bytes=500, max_age=30 * DAY)
    held = rows([("a", s, 1) for s in range(1, 9)])
    held[0] = Held(1, "a", 7, 100, held[0].at, droppable=False)  # an event row
    ids, losses = choose_drops(held, total_bytes=800, now=NOW, limits=limits, protect={2})
    # need <= 450 B: 4 rows of 100 B go, skipping the event (1) and the in-flight row (2)
    assert ids == [3, 4, 5, 6]
    assert [(x.first_seq, x.last_seq, x.count) for x in losses] == [(3, 6, 4)]


def test_a_run_breaks_where_sequence_numbers_are_not_consecutive():
    limits = Limits(max_bytes=100, max_age=30 * DAY)
    held = rows([("a", 1, 2), ("a", 2, 2), ("a", 5, 2), ("a", 6, 2)])
    _, losses = choose_drops(held, total_bytes=400, now=NOW, limits=limits)
    assert [(x.first_seq, x.last_seq, x.count) for x in losses] == [(1, 2, 2), (5, 6, 2)]


def test_reason_follows_the_bound_each_row_broke():
    limits = Limits(max_bytes=250, max_age=10 * DAY)
    held = rows([("a", 1, 11), ("a", 2, 5), ("a", 3, 4), ("a", 4, 1)])
    _, losses = choose_drops(held, total_bytes=400, now=NOW, limits=limits)
    assert [(x.first_seq, x.last_seq, x.reason) for x in losses] == [
        (1, 1, LossReason.MAX_AGE),
        (2, 2, LossReason.MAX_BYTES),
    ]


def test_limits_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        Limits(max_bytes=0, max_age=DAY)
