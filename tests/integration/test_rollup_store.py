"""Counter rollups in the database, on each engine: kept in step with ingest (in order, out of
order, with duplicates and failed reads), equal to a rebuild from the raw readings, tampering
found by the check, and the thinned counter giving the figures of every raw reading."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select, text, update

from collector.allocation.consumption import prepare
from collector.db import Database, open_database
from collector.db.schema import counter_rollups
from collector.ledger import rollup_store
from collector.ledger.counter_readings import CounterStore
from collector.ledger.store import LedgerStore
from tests.integration.test_ledger_store import ENERGY, GW, msg

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
POLL = timedelta(seconds=10)


def stream(n: int, rng: random.Random) -> list[tuple[int, datetime, float | None, str]]:
    """A meter's readings: steady, with a 20-minute outage, failed reads and a backward step."""
    out, value, t = [], 5000.0, T0
    for seq in range(1, n + 1):
        t += POLL if not 600 <= seq < 601 else timedelta(minutes=20)
        value += rng.uniform(0.0, 0.4)
        if seq == 900:
            value -= 30.0  # an unexplained backward step
        quality = "comm_error" if seq % 97 == 0 else "good"
        out.append((seq, t, None if quality == "comm_error" else value, quality))
    return out


def ingest(store: LedgerStore, rows: list[tuple[int, datetime, float | None, str]],
           batch: int) -> None:  # fmt: skip
    for i in range(0, len(rows), batch):
        store.ingest([msg("m1", s, v, ts=t, quality=q) for s, t, v, q in rows[i : i + batch]])


@pytest.fixture
def db(db_url: str) -> Database:
    db = open_database(db_url)
    s = LedgerStore(db)
    s.register_gateway(GW, key_id=GW)
    s.register_device("m1", GW, "eastron-sdm630")
    return db


@pytest.mark.parametrize("order", ["in_order", "shuffled_batches"])
def test_rollups_kept_with_ingest_equal_a_rebuild_and_the_readings(db, order):
    rng = random.Random(7)
    rows = stream(1500, rng)
    batches = [rows[i : i + 10] for i in range(0, len(rows), 10)]
    if order == "shuffled_batches":  # store-and-forward: older messages arrive late
        rng.shuffle(batches)
    store = LedgerStore(db)
    for b in batches:
        ingest(store, b, 10)
    ingest(store, rows[:50], 25)  # the same messages again: duplicates change nothing
    assert list(rollup_store.check(db)) == []
    with db.read() as conn:
        kept = conn.execute(select(counter_rollups).order_by(counter_rollups.c.bucket)).all()
    assert kept, "no rollups were written"
    assert sum(r.n for r in kept) == sum(1 for r in rows if r[2] is not None)
    dirty = sum(r.dirty for r in kept)
    assert (dirty == 0) == (order == "in_order")
    rollup_store.rebuild(db)
    with db.read() as conn:
        rebuilt = conn.execute(select(counter_rollups).order_by(counter_rollups.c.bucket)).all()
    assert [r.dirty for r in rebuilt] == [0] * len(rebuilt)
    assert [(r.bucket, r.first_ts, r.last_ts, r.n) for r in rebuilt] == [
        (r.bucket, r.first_ts, r.last_ts, r.n) for r in kept
    ]


def test_an_altered_rollup_is_found_by_the_check(db):
    ingest(LedgerStore(db), stream(400, random.Random(3)), 20)
    with db.write() as conn:
        conn.execute(
            update(counter_rollups)
            .where(counter_rollups.c.bucket == select(func.min(counter_rollups.c.bucket))
                   .scalar_subquery())
            .values(last_value=counter_rollups.c.last_value - 10.0)
        )  # fmt: skip
        conn.execute(text("DELETE FROM counter_rollups WHERE bucket = "
                          "(SELECT max(bucket) FROM counter_rollups)"))  # fmt: skip
    problems = list(rollup_store.check(db))
    assert len(problems) == 2, problems
    assert any("no rollup" in p for p in problems)
    assert any("stored Rollup" in p for p in problems)
    rollup_store.rebuild(db)
    assert list(rollup_store.check(db)) == []


@pytest.mark.parametrize("order", ["in_order", "shuffled_batches"])
def test_the_thinned_counter_gives_the_figures_of_every_raw_reading(db, order):
    rng = random.Random(11)
    rows = stream(3000, rng)
    batches = [rows[i : i + 10] for i in range(0, len(rows), 10)]
    if order == "shuffled_batches":
        rng.shuffle(batches)
    store = LedgerStore(db)
    for b in batches:
        ingest(store, b, 10)
    start, end = T0 + timedelta(minutes=7), T0 + timedelta(hours=8, minutes=3)
    cuts = sorted({start, end} | {T0 + timedelta(seconds=rng.uniform(0, 9 * 3600))
                                  for _ in range(40)})  # fmt: skip
    counters = CounterStore(db)
    raw = counters.counter("m1", ENERGY, start, end)
    x = np.array([c.timestamp() for c in cuts if start <= c <= end])
    want = prepare(raw)
    rounds = ["as ingested", "rebuilt"] if order == "shuffled_batches" else ["as ingested"]
    for when in rounds:
        if when == "rebuilt":  # late messages left dirty buckets, read raw; a rebuild cleans
            rollup_store.rebuild(db)
        thin = counters.counter_at("m1", ENERGY, start, end, cuts)
        if when == "rebuilt" or order == "in_order":
            assert thin.t.size < raw.t.size / 3, when  # most readings were not needed
        # one poll interval for both (from the rollups), so gaps are judged alike
        assert thin.poll_interval_s == raw.poll_interval_s == pytest.approx(10.0, rel=0.02)
        got = prepare(thin)
        a, b = want.intervals(x), got.intervals(x)
        np.testing.assert_array_equal(a.quantity, b.quantity)
        np.testing.assert_array_equal(a.estimated, b.estimated)
        np.testing.assert_allclose(a.uncovered_s, b.uncovered_s, atol=1e-6)
        assert [str(s) for s in want.anomalies] == [str(s) for s in got.anomalies]
        assert want.anomalies, "the backward step must show"
