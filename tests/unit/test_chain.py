import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from collector.ledger.chain import Link, verify_chain
from metertrace.wire import GENESIS

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def chain(n: int) -> list[Link]:
    links, prev = [], GENESIS
    for seq in range(1, n + 1):
        h = hashlib.sha256(f"{seq}:{prev}".encode()).hexdigest()
        links.append(Link(seq, h, prev, T0 + timedelta(seconds=10 * seq)))
        prev = h
    return links


def test_intact_chain():
    r = verify_chain("m1", chain(10), arrival_order=range(1, 11))
    assert r.intact and r.messages == 10 and (r.first_seq, r.last_seq) == (1, 10)
    assert r.summary() == "m1: 10 messages, chain intact"


def test_gap_is_reported_with_the_missing_numbers():
    links = [link for link in chain(10) if link.seq not in (4, 5, 6)]
    r = verify_chain("m1", links)
    assert not r.intact
    assert [(g.first, g.last, g.count, g.explained) for g in r.gaps] == [(4, 6, 3, False)]
    assert "gap seq 4..6 (3 missing)" in r.summary()
    assert r.broken_links == []  # a gap is a gap, not also a broken link


def test_gap_covered_by_a_data_loss_event_is_explained():
    links = [link for link in chain(10) if link.seq not in (4, 5, 6)]
    assert verify_chain("m1", links, losses=[(3, 5), (6, 6)]).intact
    assert not verify_chain("m1", links, losses=[(4, 5)]).intact


def test_missing_start_is_a_gap():
    r = verify_chain("m1", chain(5)[2:])
    assert [(g.first, g.last) for g in r.gaps] == [(1, 2)]


def test_altered_message_breaks_the_next_link():
    links = chain(6)
    links[2] = Link(3, "f" * 64, links[2].prev, links[2].ts)  # content of seq 3 altered
    r = verify_chain("m1", links)
    assert r.broken_links == [4] and not r.intact


def test_swapped_messages_break_links_and_time():
    links = chain(6)
    a, b = links[2], links[3]
    links[2] = Link(3, b.hash, b.prev, b.ts)
    links[3] = Link(4, a.hash, a.prev, a.ts)
    r = verify_chain("m1", links)
    assert r.broken_links == [3, 4, 5] and r.time_reversals == [4]
    assert "broken link at seq 3-5" in r.summary()


def test_forged_genesis():
    links = chain(3)
    links[0] = Link(1, links[0].hash, "1" * 64, links[0].ts)
    assert verify_chain("m1", links).broken_links == [1]


def test_replay_after_later_messages_is_named():
    r = verify_chain("m1", chain(5), arrival_order=[1, 2, 3, 3, 4, 5, 2])
    # 3 twice in a row is at-least-once delivery; 2 again after 5 is a replay
    assert r.replays == [2] and r.intact
    assert "replayed seq 2" in r.summary()
