import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from edge_agent.outbox import Outbox
from edge_agent.retention import Limits
from metertrace.wire import GENESIS

pytestmark = pytest.mark.unit


def builder(device: str, log: list):
    def build(seq: int, prev: str):
        payload = f"{device}:{seq}:{prev}".encode()
        log.append((seq, prev))
        return f"t/{device}", payload, hashlib.sha256(payload).hexdigest()

    return build


def test_numbering_and_chaining_survive_a_restart(tmp_path):
    log: list = []
    box = Outbox(tmp_path / "a.db")
    assert box.append("m1", builder("m1", log)) == 1
    assert box.append("m1", builder("m1", log)) == 2
    assert box.append("m2", builder("m2", log)) == 1
    box.close()
    box = Outbox(tmp_path / "a.db")  # as after a restart
    assert box.append("m1", builder("m1", log)) == 3
    assert log[0] == (1, GENESIS)
    assert log[1][1] == hashlib.sha256(b"m1:1:" + GENESIS.encode()).hexdigest()
    assert log[3][1] == hashlib.sha256(f"m1:2:{log[1][1]}".encode()).hexdigest()
    assert [(p.device, p.seq) for p in box.pending()] == [
        ("m1", 1),
        ("m1", 2),
        ("m2", 1),
        ("m1", 3),
    ]


def test_failed_build_leaves_no_trace(tmp_path):
    box = Outbox(tmp_path / "a.db")

    def broken(seq, prev):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        box.append("m1", broken)
    assert box.depth() == 0 and box.last_seq("m1") == 0
    assert box.append("m1", builder("m1", [])) == 1


def test_remove_and_pending_after(tmp_path):
    box = Outbox(tmp_path / "a.db")
    for _ in range(5):
        box.append("m1", builder("m1", []))
    rows = box.pending()
    box.remove([rows[0].id, rows[2].id])
    assert [p.seq for p in box.pending()] == [2, 4, 5]
    assert [p.seq for p in box.pending(after_id=rows[3].id)] == [5]


# --- bounds: drop oldest, count, report ------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def event_builder(made: list):
    def build(event_id: int, loss):
        made.append((event_id, loss))
        return f"ev/{loss.device}", f"event {event_id} {loss.first_seq}-{loss.last_seq}".encode()

    return build


def fill(box: Outbox, device: str, n: int, at: datetime, size: int = 100) -> None:
    topic = f"t/{device}"
    for _ in range(n):
        box.append(device, lambda s, p: (topic, b"x" * (size - len(topic)), f"{s:064x}"), at=at)


def test_bytes_bound_drops_oldest_counts_per_device_and_stores_the_report(tmp_path):
    clock = Clock()
    limits = Limits(max_bytes=2_000, max_age=timedelta(days=30))
    box = Outbox(tmp_path / "a.db", limits, clock=clock)
    fill(box, "m1", 10, clock.now - timedelta(hours=2))  # 100 B each, topic included
    fill(box, "m2", 5, clock.now - timedelta(hours=1))
    fill(box, "m1", 10, clock.now)
    assert box.stats().bytes == 2_500 and box.depth() == 25
    made: list = []
    losses = box.enforce(event_builder(made))
    # down to <= 1800 B: the 7 oldest rows go, all of m1 seq 1..7
    assert [(x.device, x.first_seq, x.last_seq, x.count) for x in losses] == [("m1", 1, 7, 7)]
    assert [p.seq for p in box.pending() if p.topic == "t/m1"][:2] == [8, 9]
    events = [p for p in box.pending() if p.topic.startswith("ev/")]
    assert [e.payload for e in events] == [b"event 1 1-7"] and made[0][0] == 1
    stats = box.stats()
    assert stats.dropped == {"m1": 7}
    assert stats.depth == 25 - 7 + 1
    assert stats.bytes == 2_500 - 700 + len("ev/m1") + len(b"event 1 1-7")
    # nothing more to do until a bound is exceeded again
    assert box.enforce(event_builder(made)) == []
    box.close()
    again = Outbox(tmp_path / "a.db", limits, clock=clock)  # counters survive a restart
    assert again.stats() == stats


def test_age_bound_and_events_are_never_dropped_by_the_bounds(tmp_path):
    clock = Clock()
    limits = Limits(max_bytes=10_000, max_age=timedelta(days=30))
    box = Outbox(tmp_path / "a.db", limits, clock=clock)
    fill(box, "m1", 3, clock.now - timedelta(days=29))
    fill(box, "m1", 2, clock.now - timedelta(days=1))
    assert box.enforce(event_builder([])) == []
    clock.now += timedelta(days=2)  # the 3 oldest are now 31 days old
    losses = box.enforce(event_builder([]))
    assert [(x.first_seq, x.last_seq, x.reason.value) for x in losses] == [(1, 3, "outbox_max_age")]
    clock.now += timedelta(days=60)  # everything is too old now, the event too
    losses = box.enforce(event_builder([]))
    assert [(x.first_seq, x.last_seq) for x in losses] == [(4, 5)]
    topics = [p.topic for p in box.pending()]
    assert topics == ["ev/m1", "ev/m1"], "the reports stay until they are sent"
    assert box.stats().dropped == {"m1": 5}


def test_rows_held_by_the_mqtt_client_are_protected(tmp_path):
    clock = Clock()
    box = Outbox(tmp_path / "a.db", Limits(1_000, timedelta(days=30)), clock=clock)
    fill(box, "m1", 12, clock.now)
    first = box.pending(limit=2)
    losses = box.enforce(event_builder([]), protect={r.id for r in first})
    assert [(x.first_seq, x.last_seq) for x in losses] == [(3, 5)]
    assert [p.seq for p in box.pending()][:3] == [1, 2, 6]


def test_a_state_database_from_before_events_opens_and_keeps_its_rows(tmp_path):
    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(
        "CREATE TABLE chain (device TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);"
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, "
        "seq INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, created_at TEXT NOT "
        "NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));"
        "INSERT INTO chain VALUES ('m1', 1, 'h');"
        "INSERT INTO outbox (device, seq, topic, payload) VALUES ('m1', 1, 't', x'00');"
    )
    db.commit()
    db.close()
    box = Outbox(tmp_path / "old.db", Limits(10_000, timedelta(days=1)))
    assert box.depth() == 1 and box.stats().oldest is not None
    assert box.enforce(event_builder([])) == []
    assert box.append("m1", builder("m1", [])) == 2
