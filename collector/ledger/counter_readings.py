"""A meter's counter readings and counter events in bulk, as arrays for the allocation.

All of one request's reads in one read transaction (one snapshot, as the ingest goes on).
Reading times are stored as integer microseconds, so they become numpy epoch seconds in one
array operation (a month of 10-second readings, no parsing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    BindParameter,
    ColumnElement,
    Connection,
    CursorResult,
    Select,
    bindparam,
    column,
    func,
    select,
    values,
)
from sqlalchemy.sql.compiler import SQLCompiler

from collector.allocation.consumption import GAP_FACTOR
from collector.allocation.counters import (
    CounterEvent,
    CounterReadings,
    EventKind,
    quality_codes,
)
from collector.db.engine import Database
from collector.db.schema import events, messages, readings
from collector.db.times import to_micros
from collector.ledger import rollup_store
from collector.ledger.rollups import Rollups, assemble, plan, poll_interval_s
from collector.ledger.usable import usable
from device_profiles.vocabulary import quantity as vocabulary_quantity
from metertrace.wire import CounterEventBody

_DEFAULT_POLL_S = 1.0  # for a meter with fewer than two readings: no step, so no gap to judge
_RANGES_PER_QUERY = 100  # raw ranges OR-ed in one query
_CUTS_PER_QUERY = 500  # cuts probed in one query (bound parameters stay few)


def usable_span(
    conn: Connection, meter: str, qty: str, start: datetime, end: datetime
) -> tuple[int, int]:
    """[start, end] in microseconds, widened to the nearest usable reading before start and the
    nearest at or after end (so the counter can be interpolated at the period's edges)."""
    ts, where = readings.c.ts, usable(meter, qty)
    lo = conn.execute(select(func.max(ts)).where(where, ts < to_micros(start))).scalar()
    hi = conn.execute(select(func.min(ts)).where(where, ts >= to_micros(end))).scalar()
    return (
        to_micros(start) if lo is None else int(lo),
        to_micros(end) if hi is None else int(hi),
    )


class CounterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def counter(self, meter: str, qty: str, start: datetime, end: datetime) -> CounterReadings:
        """Usable readings over [start, end], with the nearest one on each side, and the counter
        events among them."""
        q = vocabulary_quantity(qty)
        r = readings.c
        with self.db.read() as conn:
            lo, hi = usable_span(conn, meter, qty, start, end)
            rows = conn.execute(
                select(r.ts, r.value, r.quality)
                .where(usable(meter, qty), r.ts >= lo, r.ts <= hi)
                .order_by(r.ts, r.seq)
            ).all()
            found = self._events(conn, meter, qty, lo, hi)
            poll = _poll(rollup_store.load(conn, meter, qty, lo, hi))
        us = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        t = us / 1e6  # float64 resolves 0.25 µs at today's epoch
        v = np.array([row[1] for row in rows], dtype=np.float64)
        quality = quality_codes([row[2] for row in rows])
        return CounterReadings(meter, q.medium, q.unit, t, v, quality, poll, tuple(found))

    def evidence(
        self, meter: str, qty: str, start: datetime, end: datetime
    ) -> tuple[list[bytes], list[bytes]]:
        """What the counter over [start, end] rests on, as the gateways sent it: the messages
        over the readings `counter()` reads ([start, end] widened to the nearest usable reading
        on each side), in seq order, and every event of the meter."""
        m, e = messages.c, events.c
        with self.db.read() as conn:
            lo, hi = usable_span(conn, meter, qty, start, end)
            sent = conn.scalars(
                select(m.payload).where(m.device == meter, m.ts >= lo, m.ts <= hi).order_by(m.seq)
            ).all()
            raised = conn.scalars(
                select(e.payload).where(e.device == meter).order_by(e.gateway, e.id)
            ).all()
        return [bytes(p) for p in sent], [bytes(p) for p in raised]

    def counter_at(
        self, meter: str, qty: str, start: datetime, end: datetime, cuts: Sequence[datetime]
    ) -> CounterReadings:
        """The counter over [start, end] as `counter()` gives it, thinned by the rollups to what
        an allocation that evaluates it at `cuts` needs (collector/ledger/rollups.py): the same
        figures from a few readings per 15 minutes instead of every reading."""
        q = vocabulary_quantity(qty)
        with self.db.read() as conn:
            lo, hi = usable_span(conn, meter, qty, start, end)
            found = self._events(conn, meter, qty, lo, hi)
            rolls = rollup_store.load(conn, meter, qty, lo, hi)
            poll = _poll(rolls)
            p = plan(rolls, lo, hi, [to_micros(e.ts) for e in found], GAP_FACTOR * poll * 1e6)
            raw_t, raw_v = self._ranges(conn, meter, qty, p.raw)
            inside = sorted({c for c in (to_micros(x) for x in cuts) if lo <= c <= hi})
            near_t, near_v = self._neighbours(conn, meter, qty, inside)
        t, v, cont = assemble(p, raw_t, raw_v, near_t, near_v)
        keep = (t >= lo) & (t <= hi)
        return CounterReadings(
            meter, q.medium, q.unit, t[keep] / 1e6, v[keep], np.zeros(int(keep.sum()), np.uint8),
            poll, tuple(found), continuous=cont[keep],
        )  # fmt: skip

    @staticmethod
    def _ranges(
        conn: Connection, meter: str, qty: str, ranges: list[tuple[int, int]]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Every usable reading in the [from, to) ranges."""
        ts: list[int] = []
        vs: list[float] = []
        for a, b in ranges:
            for row in conn.execute(_RANGE, {"meter": meter, "qty": qty, "a": a, "b": b}).all():
                ts.append(row[0])
                vs.append(row[1])
        return np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64)

    @staticmethod
    def _neighbours(
        conn: Connection, meter: str, qty: str, cuts: list[int]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The usable readings on either side of each cut, as CounterSeries.at takes them: the
        last at or before it and the first after it. (A reading exactly at a cut is "at or
        before" in both: its µs equal the cut's, and µs / 1e6 is the float datetime.timestamp()
        gives, so the allocation's float comparison agrees.)"""
        found: set[int] = set()
        for i in range(0, len(cuts), _CUTS_PER_QUERY):
            chunk = cuts[i : i + _CUTS_PER_QUERY]
            chunk += [chunk[-1]] * (_CUTS_PER_QUERY - len(chunk))  # one statement shape
            params: dict[str, Any] = {f"c{k}": c for k, c in enumerate(chunk)}
            rows = _run_compiled(conn, _NEAR, {"meter": meter, "qty": qty, **params}).all()
            found.update(int(x) for row in rows for x in row if x is not None)
        want = sorted(found)
        ts: list[int] = []
        vs: list[float] = []
        for i in range(0, len(want), _CUTS_PER_QUERY):
            part = want[i : i + _CUTS_PER_QUERY]
            for row in conn.execute(_AT, {"meter": meter, "qty": qty, "ts": part}).all():
                ts.append(row[0])
                vs.append(row[1])
        return np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64)

    @staticmethod
    def _events(conn: Connection, meter: str, qty: str, lo: int, hi: int) -> list[CounterEvent]:
        """The gateway's counter events (wrap, reset, replacement) for the readings in [lo, hi]."""
        e = events.c
        bodies = conn.execute(
            select(e.counter)
            .where(e.device == meter, e.event == "counter", e.counter.is_not(None))
            .order_by(e.ts, e.gateway, e.id)
        ).scalars()
        out = []
        for body in bodies:
            try:
                c = CounterEventBody.model_validate_json(body)
            except ValidationError as exc:
                raise ValueError(
                    f"meter {meter}: a stored counter event is unreadable: {exc}"
                ) from exc
            if c.quantity != qty or not lo <= to_micros(c.reading_ts) <= hi:
                continue
            out.append(CounterEvent(c.reading_ts, EventKind(c.kind), c.before, c.after, c.wrap))
        return out


def _poll(rollups: Rollups) -> float:
    """The poll interval, from the rollups (the same for the raw and the thinned counter)."""
    poll = poll_interval_s(rollups)
    return poll if poll is not None and poll > 0 else _DEFAULT_POLL_S


# The statements of the thinned read, built once with bound parameters: SQLAlchemy compiles
# each shape once and caches it (building a VALUES list of 500 cuts afresh for every query cost
# more than running it).
_M: BindParameter[str] = bindparam("meter")
_Q: BindParameter[str] = bindparam("qty")


def _probe(cond: ColumnElement[bool], *, desc: bool) -> Any:
    """The time of the nearest usable reading meeting cond (correlated to the cut)."""
    r = readings.c
    order = r.ts.desc() if desc else r.ts.asc()
    return select(r.ts).where(usable(_M, _Q), cond).order_by(order).limit(1).scalar_subquery()


def _near_statement(n: int) -> Select[Any]:
    # a CTE, not FROM (VALUES ...) AS t(c): SQLite knows only the CTE form
    cut = (
        values(column("c", BigInteger), name="cuts")
        .data([(bindparam(f"c{k}", type_=BigInteger),) for k in range(n)])
        .cte("cuts")
    )
    ts = readings.c.ts
    return select(
        _probe(ts <= cut.c.c, desc=True),
        _probe(ts > cut.c.c, desc=False),
    ).select_from(cut)


_NEAR = _near_statement(_CUTS_PER_QUERY)
_COMPILED: dict[tuple[int, str], SQLCompiler] = {}


def _run_compiled(conn: Connection, stmt: Select[Any], params: dict[str, Any]) -> CursorResult[Any]:
    """Run a statement compiled once per dialect. SQLAlchemy does not cache the compilation of
    a VALUES list (its rows are part of the statement), and compiling 500 rows cost more than
    running the query; compiled once with bound parameters, only the values change."""
    key = (id(stmt), conn.dialect.name)
    compiled = _COMPILED.get(key)
    if compiled is None:
        made = stmt.compile(dialect=conn.dialect)
        assert isinstance(made, SQLCompiler)
        compiled = _COMPILED[key] = made
    full = compiled.construct_params(params)
    args: Any = tuple(full[k] for k in compiled.positiontup or ()) if compiled.positional else full
    return conn.exec_driver_sql(str(compiled), args)


_AT = (
    select(readings.c.ts, readings.c.value)
    .where(usable(_M, _Q), readings.c.ts.in_(bindparam("ts", expanding=True)))
    .order_by(readings.c.ts, readings.c.seq)
)
_RANGE = (
    select(readings.c.ts, readings.c.value)
    .where(usable(_M, _Q), readings.c.ts >= bindparam("a"), readings.c.ts < bindparam("b"))
    .order_by(readings.c.ts, readings.c.seq)
)
