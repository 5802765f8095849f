"""The ledger's store on each engine (a SQLite file, then a PostgreSQL database): batched,
idempotent ingest (stored, duplicate, conflict, replay evidence), events, sequence runs,
integer reading times exact to the microsecond, and the range and boundary queries the
allocation reads, against what ordering the ISO text gave before."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from collector.db import Database, open_database
from collector.db.retry import write_retrying
from collector.db.schema import messages
from collector.ingest.rules import Accepted, AcceptedEvent, GatewayKey, Trust, judge
from collector.ledger.counter_readings import CounterStore
from collector.ledger.port import Outcome
from collector.ledger.store import LedgerStore
from edge_agent.counter_quality import CounterNotice
from edge_agent.counters import CounterEvent, EventKind
from edge_agent.messages import MessageSigner
from edge_agent.retention import Loss
from metertrace.signing import HmacSigner
from metertrace.timeutil import to_wire
from metertrace.wire import GENESIS, LossReason

pytestmark = pytest.mark.integration

KEY = b"k" * 32
GW = "gw-1"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ENERGY = "energy.active.import"
SIGNER = MessageSigner(GW, HmacSigner(KEY, kid=GW))
TRUST = Trust.of({GW: GatewayKey(KEY, frozenset({"m1", "m2", "m3"}))})


def msg(
    device: str,
    seq: int,
    value: float | None = 1.0,
    *,
    ts: datetime | None = None,
    quality: str = "good",
    prev: str = GENESIS,
) -> Accepted:
    reading: dict[str, Any] = {
        "quantity": ENERGY,
        "value": value,
        "unit": "kWh",
        "quality": quality,
    }
    topic, payload, _ = SIGNER.reading(
        device, ts or T0 + timedelta(seconds=seq), [reading], seq, prev
    )
    judged = judge(topic, payload, TRUST)
    assert isinstance(judged, Accepted)
    return judged


def event(judged: Any) -> AcceptedEvent:
    assert isinstance(judged, AcceptedEvent)
    return judged


@pytest.fixture
def db(db_url: str) -> Database:
    return open_database(db_url)


@pytest.fixture
def store(db: Database) -> LedgerStore:
    s = LedgerStore(db)
    s.register_gateway(GW, key_id=GW)
    for d in ("m1", "m2", "m3"):
        s.register_device(d, GW, "eastron-sdm630")
    return s


def stored_rows(db: Database, device: str) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        m = messages.c
        return [
            tuple(r)
            for r in conn.execute(
                select(m.seq, m.hash, m.payload).where(m.device == device).order_by(m.seq)
            )
        ]


# --- ingest -----------------------------------------------------------------------------------


def test_a_batch_judges_each_message_and_never_overwrites_a_stored_one(store, db):
    first = msg("m1", 1, 5.0)
    assert store.ingest([first]) == [Outcome.STORED]
    before = stored_rows(db, "m1")
    other = msg("m1", 1, 6.0)  # same (device, seq), other content
    assert other.hash != first.hash
    outcomes = store.ingest([msg("m1", 2), first, other])
    assert outcomes == [Outcome.STORED, Outcome.DUPLICATE, Outcome.CONFLICT]
    assert stored_rows(db, "m1")[0] == before[0] == (1, first.hash, first.payload)
    assert [(r.seq, r.value) for r in store.readings(device="m1")] == [(1, 5.0), (2, 1.0)]
    stats = store.stats()
    assert (stats.messages, stats.readings, stats.duplicates) == (2, 2, 1)


def test_the_same_key_twice_in_one_batch_is_judged_as_if_sent_one_after_the_other(store, db):
    a, same, other = msg("m1", 1, 5.0), msg("m1", 1, 5.0), msg("m1", 1, 7.0)
    assert same.hash == a.hash
    assert store.ingest([a, same, other]) == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.CONFLICT,
    ]
    assert stored_rows(db, "m1") == [(1, a.hash, a.payload)]
    assert [r.value for r in store.readings(device="m1")] == [5.0]
    # a conflict first offered in the batch and then its original: the first one wins
    b, b2 = msg("m2", 1, 1.0), msg("m2", 1, 2.0)
    assert store.ingest([b2, b]) == [Outcome.STORED, Outcome.CONFLICT]
    assert stored_rows(db, "m2") == [(1, b2.hash, b2.payload)]
    assert store.stats().duplicates == 1


def test_a_duplicate_after_newer_messages_is_replay_evidence_within_and_across_batches(store):
    m1, m2, m3 = msg("m1", 1), msg("m1", 2), msg("m1", 3)
    # in one batch: 1 again before 2 is an ordinary duplicate, 1 again after 2 a late one
    assert store.ingest([m1, m1, m2, m1]) == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.STORED,
        Outcome.DUPLICATE,
    ]
    assert store.chain("m1")[1] == [1]
    assert store.ingest([m3]) == [Outcome.STORED]
    assert store.ingest([m2, m3]) == [Outcome.DUPLICATE, Outcome.DUPLICATE]  # 3 is newest
    links, late = store.chain("m1")
    assert [link.seq for link in links] == [1, 2, 3] and late == [1, 2]
    assert store.stats().duplicates == 4


def test_batches_of_several_devices_in_any_order(store):
    batch = [msg("m2", 2), msg("m1", 3), msg("m2", 1), msg("m1", 1), msg("m1", 2)]
    assert store.ingest(batch) == [Outcome.STORED] * 5
    assert store.ingest(batch[::-1]) == [Outcome.DUPLICATE] * 5
    assert [(d.id, d.last_seq, d.messages) for d in store.devices()] == [
        ("m1", 3, 3),
        ("m2", 2, 2),
        ("m3", None, 0),
    ]
    assert store.ingest([]) == []


def test_two_writers_racing_over_one_stream_store_each_message_once(store, db):
    """As two collectors on one database: each batch offered by both at once, by one in the
    order sent and by the other reversed (unsorted inserts would deadlock on PostgreSQL)."""
    stream = [msg(f"m{d}", seq) for seq in range(1, 41) for d in (1, 2, 3)]
    batches = [stream[i : i + 15] for i in range(0, len(stream), 15)]
    results: dict[str, list[Outcome]] = {}
    errors: list[BaseException] = []
    together = threading.Barrier(2, timeout=30)

    def run(name: str, reverse: bool) -> None:
        out = results.setdefault(name, [])
        try:
            for b in batches:
                together.wait()
                out += LedgerStore(db).ingest(b[::-1] if reverse else b)
        except BaseException as exc:  # reported by the main thread
            together.abort()
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, n == "b")) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    outcomes = results["a"] + results["b"]
    assert outcomes.count(Outcome.STORED) == len(stream)
    assert outcomes.count(Outcome.DUPLICATE) == len(stream)
    assert Outcome.CONFLICT not in outcomes
    for d in ("m1", "m2", "m3"):
        assert [r[0] for r in stored_rows(db, d)] == list(range(1, 41))
    assert store.stats().readings == len(stream)


def test_a_transaction_the_server_aborted_as_a_deadlock_is_run_again(db):
    class Deadlock(Exception):
        sqlstate = "40P01"

    attempts: list[int] = []

    def work(conn: Any) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise DBAPIError("INSERT ...", {}, Deadlock())
        return "done"

    assert write_retrying(db, work) == "done" and len(attempts) == 3

    class Other(Exception):
        sqlstate = "23505"  # unique_violation: not retried

    def fails(conn: Any) -> None:
        attempts.append(1)
        raise DBAPIError("INSERT ...", {}, Other())

    attempts.clear()
    with pytest.raises(DBAPIError):
        write_retrying(db, fails)
    assert len(attempts) == 1


# --- events -----------------------------------------------------------------------------------


def loss_event(event_id: int, count: int = 10) -> AcceptedEvent:
    lost = Loss("m1", LossReason.MAX_BYTES, 11, 10 + count, count, T0, T0 + timedelta(minutes=9))
    return event(judge(*SIGNER.data_loss(event_id, lost), TRUST))


def counter_event(event_id: int, reading_ts: datetime = T0) -> AcceptedEvent:
    e = CounterEvent(
        EventKind.RESET,
        "m1",
        ENERGY,
        reading_ts,
        1000.0,
        3.0,
        reading_ts - timedelta(minutes=1),
        reading_ts,
    )
    return event(judge(*SIGNER.counter(event_id, CounterNotice(e, "kWh", 0.5)), TRUST))


def test_events_are_idempotent_on_gateway_and_id_and_counter_events_kept_whole(store):
    loss, reset = loss_event(1), counter_event(2)
    assert store.ingest_events([loss, reset]) == [Outcome.STORED, Outcome.STORED]
    assert store.ingest_events([reset, loss_event(1, count=3)]) == [
        Outcome.DUPLICATE,
        Outcome.CONFLICT,
    ]
    again = counter_event(3)
    assert store.ingest_events([again, again, counter_event(3, T0 + timedelta(seconds=1))]) == [
        Outcome.STORED,
        Outcome.DUPLICATE,
        Outcome.CONFLICT,
    ]
    rows = store.events(device="m1")
    assert [(r.id, r.event, r.count) for r in rows] == [
        (1, "data_loss", 10),
        (2, "counter", None),
        (3, "counter", None),
    ]
    assert rows[0].counter is None and rows[1].counter is not None
    assert rows[1].counter.kind == "reset" and rows[1].counter.consumption == 0.5
    stats = store.stats()
    assert (stats.events, stats.reported_lost, stats.duplicates) == (3, 10, 2)
    assert isinstance(stats.reported_lost, int)


def test_counter_events_are_stored_beside_data_loss(store):
    """(Moved here from tests/unit/test_counter_events.py, to run on both engines.)"""
    loss, reset = loss_event(1), counter_event(2)  # raised in this order: events() gives it
    assert store.ingest_events([loss, reset]) == [Outcome.STORED, Outcome.STORED]
    loss_row, counter_row = store.events(device="m1")
    assert (loss_row.event, loss_row.count, loss_row.counter) == ("data_loss", 10, None)
    assert (loss_row.reason, loss_row.first_seq, loss_row.last_seq) == ("outbox_max_bytes", 11, 20)
    assert (loss_row.first_ts, loss_row.last_ts) == (T0, T0 + timedelta(minutes=9))
    assert (counter_row.event, counter_row.reason, counter_row.count) == ("counter", None, None)
    assert counter_row.counter == reset.event.counter  # the evidence, whole
    assert store.stats().reported_lost == 10  # a counter event reports no lost message


# --- queries ----------------------------------------------------------------------------------


def test_seq_runs_are_the_stored_islands(store):
    store.ingest([msg("m1", s) for s in (9, 1, 2, 3, 5, 6)])
    assert store.seq_runs("m1") == [(1, 3), (5, 6), (9, 9)]
    assert store.seq_runs("m2") == []


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 11, 23, 10, 0, 0, 123457, tzinfo=UTC),
        datetime(2026, 11, 23, 10, 0, 0, 999999, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(2106, 2, 7, 6, 28, 16, 5, tzinfo=UTC),  # past 2^32 seconds
    ],
)
def test_message_times_round_trip_exact_to_the_microsecond(store, ts):
    store.ingest([msg("m1", 1, ts=ts)])
    (row,) = store.readings(device="m1")
    assert row.ts == ts and to_wire(row.ts) == to_wire(ts)
    assert store.chain("m1")[0][0].ts == ts
    assert store.devices()[0].last_ts == ts
    assert [r.ts for r in store.readings(device="m1", start=ts, end=ts + timedelta(0, 0, 1))] == [
        ts
    ]
    assert store.readings(device="m1", start=ts + timedelta(microseconds=1)) == []
    assert store.readings(device="m1", end=ts) == []


# Times a few microseconds apart, across a second and a day, out of order, some readings
# unusable: what ordering and comparing the ISO text (the old store) gave is the reference.
TIMES = [
    T0 + timedelta(microseconds=us)
    for us in (5, 0, 999_999, 1_000_000, 1_000_001, 86_400_000_000, 3, 59_999_999, 60_000_000)
]
QUALITY = [
    "good",
    "good",
    "comm_error",
    "good",
    "out_of_range",
    "good",
    "good",
    "good",
    "counter_reset",
]


@pytest.fixture
def timed(store):
    batch = [
        msg("m1", seq, None if q == "comm_error" else 100.0 + seq, ts=ts, quality=q)
        for seq, (ts, q) in enumerate(zip(TIMES, QUALITY, strict=True), start=1)
    ]
    assert set(store.ingest(batch)) == {Outcome.STORED}
    return store


BOUNDS = [
    T0,
    T0 + timedelta(microseconds=4),
    T0 + timedelta(seconds=1),
    T0 + timedelta(microseconds=999_999),
    T0 + timedelta(days=2),
]


@pytest.mark.parametrize("start", [None, *BOUNDS[:3]])
@pytest.mark.parametrize("end", [None, *BOUNDS[2:]])
def test_reading_ranges_equal_what_iso_ordering_gave(timed, start, end):
    rows = sorted(
        (to_wire(ts), seq)
        for seq, ts in enumerate(TIMES, start=1)
        if (start is None or to_wire(ts) >= to_wire(start))
        and (end is None or to_wire(ts) < to_wire(end))
    )
    got = timed.readings(device="m1", quantity=ENERGY, start=start, end=end)
    assert [(to_wire(r.ts), r.seq) for r in got] == rows
    assert [(to_wire(r.ts), r.seq) for r in timed.readings(device="m1", limit=3)] == sorted(
        (to_wire(ts), seq) for seq, ts in enumerate(TIMES, start=1)
    )[:3]


@pytest.mark.parametrize("start", BOUNDS[:4])
@pytest.mark.parametrize("end", BOUNDS[2:])
def test_counter_boundaries_equal_what_iso_ordering_gave(db, timed, start, end):
    pairs = enumerate(zip(TIMES, QUALITY, strict=True), start=1)
    usable = [(to_wire(ts), seq) for seq, (ts, q) in pairs if q in ("good", "counter_reset")]
    before = [x for x in usable if x[0] < to_wire(start)]
    after = [x for x in usable if x[0] >= to_wire(end)]
    lo = max(before)[0] if before else to_wire(start)
    hi = min(after)[0] if after else to_wire(end)
    expect = sorted(x for x in usable if lo <= x[0] <= hi)
    got = CounterStore(db).counter("m1", ENERGY, start, end)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    want_t = [
        (datetime.fromisoformat(t) - epoch) / timedelta(microseconds=1) / 1e6 for t, _ in expect
    ]
    assert got.t.tolist() == want_t
    assert got.value.tolist() == [100.0 + seq for _, seq in expect]


def test_counter_events_inside_the_span_are_given_with_the_readings(db, timed):
    inside, outside = TIMES[3], T0 + timedelta(days=5)
    assert timed.ingest_events([counter_event(1, inside), counter_event(2, outside)]) == [
        Outcome.STORED,
        Outcome.STORED,
    ]
    got = CounterStore(db).counter("m1", ENERGY, T0, T0 + timedelta(seconds=2))
    assert [e.ts for e in got.events] == [inside]


def test_reads_inside_a_read_see_its_one_snapshot(store, db):
    """What an evidence bundle relies on: every store's reads inside one db.read() come from
    one snapshot, however the ingest goes on meanwhile."""
    store.ingest([msg("m1", 1)])
    with db.read() as outer:
        assert len(store.readings(device="m1")) == 1  # the snapshot is taken here
        assert LedgerStore(db).ingest([msg("m1", 2)]) == [Outcome.STORED]  # committed
        with db.read() as inner:
            assert inner is outer
        assert len(store.readings(device="m1")) == 1
        assert CounterStore(db).counter("m1", ENERGY, T0, T0 + timedelta(hours=1)).t.size == 1
    assert len(store.readings(device="m1")) == 2
