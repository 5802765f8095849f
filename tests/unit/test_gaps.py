"""Gaps in a device's sequence numbers: explained by a data-loss event, or not."""

import pytest

from collector.ledger.gaps import Gap, Reported, find_gaps, missing

pytestmark = pytest.mark.unit


def test_missing_ranges_from_stored_runs():
    assert missing([(1, 5), (8, 9)]) == [(6, 7)]
    assert missing([(3, 4)]) == [(1, 2)]
    assert missing([(1, 4)], up_to=6) == [(5, 6)]
    assert missing([]) == []


def test_a_gap_the_gateway_reported_is_explained_and_one_it_did_not_is_not():
    runs = [(1, 10), (21, 30), (36, 40)]
    gaps = find_gaps(runs, [Reported(event_id=7, first_seq=11, last_seq=20)])
    assert gaps == [Gap(11, 20, (7,)), Gap(31, 35, ())]


def test_a_gap_partly_reported_is_split_at_the_reported_bounds():
    gaps = find_gaps([(1, 2), (13, 13)], [Reported(1, 5, 6), Reported(2, 7, 9)])
    assert gaps == [Gap(3, 4, ()), Gap(5, 6, (1,)), Gap(7, 9, (2,)), Gap(10, 12, ())]


def test_reported_numbers_after_the_last_stored_one_are_gaps_too():
    # the gateway dropped the newest messages it held, then was replaced: nothing after them
    assert find_gaps([(1, 3)], [Reported(4, 4, 9)]) == [Gap(4, 9, (4,))]


def test_overlapping_reports_name_every_event_once():
    gaps = find_gaps([(1, 1), (10, 10)], [Reported(1, 2, 6), Reported(2, 4, 9)])
    assert gaps == [Gap(2, 3, (1,)), Gap(4, 6, (1, 2)), Gap(7, 9, (2,))]
    assert sum(g.count for g in gaps) == 8
