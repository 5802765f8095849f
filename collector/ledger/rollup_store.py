"""The counter rollups in the database: merged in step with ingest, rebuilt and checked from the
raw readings (the model and why it is sound: collector/ledger/rollups.py).

The merge is one `INSERT … ON CONFLICT DO UPDATE` per bucket whose new values are computed from
the stored row under its row lock, so two collectors ingesting into one PostgreSQL add up rather
than overwrite. A batch that lands inside a bucket's span (readings out of order) cannot update
the step figures: the bucket is marked dirty and read raw until the next rebuild.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Connection, and_, case, delete, or_, select

from collector.db.engine import Database
from collector.db.schema import counter_rollups as cr
from collector.db.schema import readings
from collector.db.times import from_micros
from collector.ledger.rollups import BUCKET_US, Rollup, Rollups, summarise
from collector.ledger.usable import USABLE, usable

_COLS = ("bucket", "first_ts", "first_value", "last_ts", "last_value", "n", "max_dt", "min_dv")


def _greatest(a: Any, b: Any) -> ColumnElement[Any]:
    return case((a > b, a), else_=b)


def _least(a: Any, b: Any) -> ColumnElement[Any]:
    """The smaller of two nullable values (NULL: no step)."""
    return case((a.is_(None), b), (b.is_(None), a), (a < b, a), else_=b)


def _row(device: str, quantity: str, r: Rollup) -> dict[str, Any]:
    return {"device": device, "quantity": quantity, **{c: getattr(r, c) for c in _COLS},
            "dirty": int(r.dirty)}  # fmt: skip


def _merge(db: Database) -> Any:
    stmt = db.insert(cr)
    new = stmt.excluded
    after = new.first_ts > cr.c.last_ts  # the batch continues the bucket (the usual case)
    before = new.last_ts < cr.c.first_ts  # it fills the bucket's start (a late message)
    max_dt = _greatest(cr.c.max_dt, new.max_dt)  # the longest step inside either part
    min_dv = _least(cr.c.min_dv, new.min_dv)
    earlier, later = new.first_ts < cr.c.first_ts, new.last_ts > cr.c.last_ts
    return stmt.on_conflict_do_update(
        index_elements=[cr.c.device, cr.c.quantity, cr.c.bucket],
        set_={
            "n": cr.c.n + new.n,
            "dirty": case((or_(after, before), _greatest(cr.c.dirty, new.dirty)), else_=1),
            "max_dt": case(
                (after, _greatest(max_dt, new.first_ts - cr.c.last_ts)),
                (before, _greatest(max_dt, cr.c.first_ts - new.last_ts)),
                else_=max_dt,
            ),
            "min_dv": case(
                (after, _least(min_dv, new.first_value - cr.c.last_value)),
                (before, _least(min_dv, cr.c.first_value - new.last_value)),
                else_=min_dv,
            ),
            "first_ts": case((earlier, new.first_ts), else_=cr.c.first_ts),
            "first_value": case((earlier, new.first_value), else_=cr.c.first_value),
            "last_ts": case((later, new.last_ts), else_=cr.c.last_ts),
            "last_value": case((later, new.last_value), else_=cr.c.last_value),
        },
    )


def merge(
    conn: Connection, db: Database, stored: Iterable[tuple[str, str, int, float | None, str]]
) -> None:
    """Merge the usable ones of a batch's stored readings (device, quantity, ts µs, value,
    quality) into the rollups, in the batch's transaction."""
    groups: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for device, quantity, ts, value, quality in stored:
        if value is not None and quality in USABLE and value == value:  # NaN is no value
            groups[(device, quantity)].append((ts, value))
    rows = []
    for (device, quantity), pts in sorted(groups.items()):
        pts.sort()
        t = np.fromiter((p[0] for p in pts), dtype=np.int64, count=len(pts))
        v = np.fromiter((p[1] for p in pts), dtype=np.float64, count=len(pts))
        rows += [_row(device, quantity, r) for r in summarise(t, v)]
    if rows:  # sorted by key: concurrent writers lock the rows in one order
        conn.execute(_merge(db), rows)


def load(conn: Connection, device: str, quantity: str, lo: int, hi: int) -> Rollups:
    """The rollups of buckets that overlap [lo, hi] (µs), in time order."""
    q = (
        select(*(cr.c[c] for c in (*_COLS, "dirty")))
        .where(cr.c.device == device, cr.c.quantity == quantity)
        .where(cr.c.bucket > lo - BUCKET_US, cr.c.bucket <= hi)
        .order_by(cr.c.bucket)
    )
    # plain tuples, then one C loop into a float matrix (a year is 35,040 rows a meter; numpy
    # reads SQLAlchemy's Row objects one item at a time, 8x slower); NULL min_dv becomes NaN
    rows = [tuple(r) for r in conn.execute(q)]
    m = np.array(rows, dtype=np.float64) if rows else np.zeros((0, 9))
    return Rollups.from_matrix(m)


def series(db: Database) -> list[tuple[str, str]]:
    """Every (device, quantity) that has readings."""
    with db.read() as conn:
        return _series(conn)


def _series(conn: Connection) -> list[tuple[str, str]]:
    q = (
        select(readings.c.device, readings.c.quantity)
        .distinct()
        .order_by(readings.c.device, readings.c.quantity)
    )
    return [(d, q_) for d, q_ in conn.execute(q)]


def _from_raw(conn: Connection, device: str, quantity: str) -> list[Rollup]:
    q = (
        select(readings.c.ts, readings.c.value)
        .where(usable(device, quantity))
        .order_by(readings.c.ts, readings.c.seq)
    )
    rows = conn.execute(q).all()
    t = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    v = np.fromiter((r[1] for r in rows), dtype=np.float64, count=len(rows))
    return summarise(t, v)


def rebuild(db: Database, progress: Callable[[int, int], None] | None = None) -> int:
    """Recompute every rollup from the raw readings, one meter and quantity per transaction
    (a rebuild can be stopped and run again); the number of rows written."""
    with db.read() as conn:
        series = _series(conn)
    written = 0
    for i, (device, quantity) in enumerate(series):
        with db.write() as conn:
            written += _rebuild_one(conn, device, quantity)
        if progress is not None:
            progress(i + 1, len(series))
    with db.write() as conn:  # rollups of series that no longer have readings (none should)
        conn.execute(delete(cr).where(~_has_readings()))
    return written


def rebuild_on(conn: Connection) -> int:
    """The same, inside a transaction the caller holds (the migration that adds the table)."""
    return sum(_rebuild_one(conn, d, q) for d, q in _series(conn))


def _rebuild_one(conn: Connection, device: str, quantity: str) -> int:
    fresh = _from_raw(conn, device, quantity)
    conn.execute(delete(cr).where(cr.c.device == device, cr.c.quantity == quantity))
    if fresh:
        conn.execute(cr.insert(), [_row(device, quantity, r) for r in fresh])
    return len(fresh)


def _has_readings() -> ColumnElement[bool]:
    return (
        select(readings.c.device)
        .where(and_(readings.c.device == cr.c.device, readings.c.quantity == cr.c.quantity))
        .exists()
    )


def _differs(fresh: Rollup, stored: Rollup) -> bool:
    ends = ("first_ts", "first_value", "last_ts", "last_value", "n")
    steps = ("max_dt", "min_dv", "dirty")
    if any(getattr(fresh, a) != getattr(stored, a) for a in ends):
        return True
    # a dirty bucket's steps are unknown by design (it is read raw): only its ends must agree
    return not stored.dirty and any(getattr(fresh, a) != getattr(stored, a) for a in steps)


def check(db: Database, progress: Callable[[int, int], None] | None = None) -> Iterator[str]:
    """Each difference between the stored rollups and the raw readings, as a sentence."""
    with db.read() as conn:
        series = _series(conn)
        kept = conn.execute(select(cr.c.device, cr.c.quantity).distinct())
        for extra in sorted({(d, q) for d, q in kept} - set(series)):
            yield f"{extra[0]} {extra[1]}: rollups for readings that do not exist"
        for i, (device, quantity) in enumerate(series):
            fresh = {r.bucket: r for r in _from_raw(conn, device, quantity)}
            stored = {r.bucket: r for r in load(conn, device, quantity, -(2**62), 2**62).rows()}
            for b in sorted(set(fresh) | set(stored)):
                f, s = fresh.get(b), stored.get(b)
                where = f"{device} {quantity} bucket {from_micros(b).isoformat()}"
                if f is None or s is None:
                    yield f"{where}: {'no rollup' if s is None else 'a rollup but no readings'}"
                elif _differs(f, s):
                    yield f"{where}: stored {s}, from the readings {f}"
            if progress is not None:
                progress(i + 1, len(series))
