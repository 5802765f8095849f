"""Judging a batch's offers from what the database inserted and what it held already."""

from __future__ import annotations

import pytest

from collector.ledger.batch_outcomes import first_offers, late_duplicates, settle
from collector.ledger.port import Outcome

pytestmark = pytest.mark.unit

S, D, C = Outcome.STORED, Outcome.DUPLICATE, Outcome.CONFLICT


def test_first_offers_keep_the_first_position_of_each_key():
    assert first_offers(["a", "b", "a", "c", "b"]) == {"a": 0, "b": 1, "c": 3}


@pytest.mark.parametrize(
    ("offers", "inserted", "stored", "expected"),
    [
        # fresh, the stored one again, another message under a stored key
        ([("k1", "h1"), ("k0", "h0"), ("k0", "hX")], {"k1"}, {"k0": "h0"}, [S, D, C]),
        # one key twice in the batch: the second is judged against the first
        ([("k", "h"), ("k", "h"), ("k", "hX")], {"k"}, {}, [S, D, C]),
        # whichever content comes first is stored; the other is the conflict
        ([("k", "hX"), ("k", "h")], {"k"}, {}, [S, C]),
        # stored before the batch: every offer is compared with the stored hash
        ([("k", "h"), ("k", "h")], set(), {"k": "h"}, [D, D]),
        ([], set(), {}, []),
    ],
)
def test_settle(offers, inserted, stored, expected):
    assert settle(offers, inserted, stored) == expected


def test_late_duplicates_count_the_batch_s_own_messages_from_their_place_in_it():
    keys = [("m1", 1), ("m1", 1), ("m1", 2), ("m1", 1), ("m2", 1)]
    outcomes = [S, D, S, D, D]
    assert late_duplicates(keys, outcomes, {"m2": 4}) == [("m1", 1, 2), ("m2", 1, 4)]


def test_a_conflict_or_the_newest_seq_again_is_no_replay_evidence():
    keys = [("m1", 3), ("m1", 2), ("m1", 5)]
    assert late_duplicates(keys, [D, C, D], {"m1": 5}) == [("m1", 3, 5)]
    assert late_duplicates([("m1", 5)], [D], {"m1": 5}) == []
