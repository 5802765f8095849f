"""The ledger's adapter of the storage port, on the data layer (SQLite and PostgreSQL alike).

Ingest is batched and idempotent: one write transaction per batch; each key's first offer goes
in with one INSERT ... ON CONFLICT DO NOTHING RETURNING (executemany), and what came back says
which offers were stored (collector/ledger/batch_outcomes.py judges the rest). A stored row is
never overwritten: a different message under a stored key is a CONFLICT for the caller to
quarantine.

Two collectors writing the same stream into one PostgreSQL (READ COMMITTED): an INSERT that
meets another transaction's uncommitted row with the same key waits for that transaction; if
it commits, DO NOTHING applies and the statements after it (each with a fresh snapshot under
READ COMMITTED) see the committed row and its hash; if it rolls back, the row is inserted. So
each key is stored exactly once and every other offer is judged against what was stored, with
no stronger isolation. Inserts are sorted by key so that all writers take the row locks in one
order and cannot deadlock on them; a deadlock or serialization failure the server reports
anyway aborts the whole transaction, which is then run again (collector/db/retry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, tuple_

from collector.db.engine import Database
from collector.db.retry import write_retrying
from collector.db.schema import (
    counters,
    devices,
    events,
    gateways,
    late_duplicates,
    messages,
    quarantine,
    readings,
)
from collector.db.times import from_micros, to_micros
from collector.ingest.rules import Accepted, AcceptedEvent
from collector.ledger import rollup_store
from collector.ledger.batch_outcomes import first_offers, settle
from collector.ledger.batch_outcomes import late_duplicates as find_late
from collector.ledger.chain import Link
from collector.ledger.port import DeviceRow, EventRow, Outcome, QuarantineRow, ReadingRow, Stats
from metertrace.timeutil import parse_utc, to_wire, utcnow
from metertrace.wire import CounterEventBody

_LOOKUP_CHUNK = 500  # keys per look-up of stored hashes (bound parameters stay few)
_DUPLICATES = "duplicates"  # the counters row of duplicates ignored

_READING_COLUMNS = (
    readings.c.device, readings.c.seq, readings.c.ts, readings.c.quantity, readings.c.value,
    readings.c.unit, readings.c.raw, readings.c.quality, readings.c.uncorrected,
    readings.c.cal_status, readings.c.certificate, readings.c.certificate_version,
    readings.c.cal_check,
)  # fmt: skip


class LedgerStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- registry -------------------------------------------------------------------------
    def register_gateway(self, gateway: str, key_id: str) -> None:
        row = {"id": gateway, "key_id": key_id, "registered_at": to_wire(utcnow())}
        with self.db.write() as conn:
            conn.execute(self.db.insert(gateways).on_conflict_do_nothing(), [row])

    def register_device(self, device: str, gateway: str, profile: str) -> None:
        row = {"id": device, "gateway": gateway, "profile": profile,
               "registered_at": to_wire(utcnow())}  # fmt: skip
        with self.db.write() as conn:
            conn.execute(self.db.insert(devices).on_conflict_do_nothing(), [row])

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, batch: Sequence[Accepted]) -> list[Outcome]:
        if not batch:
            return []
        now = to_wire(utcnow())
        return write_retrying(self.db, lambda conn: self._ingest(conn, batch, now))

    def ingest_events(self, batch: Sequence[AcceptedEvent]) -> list[Outcome]:
        if not batch:
            return []
        now = to_wire(utcnow())
        return write_retrying(self.db, lambda conn: self._ingest_events(conn, batch, now))

    def _ingest(self, conn: Connection, batch: Sequence[Accepted], now: str) -> list[Outcome]:
        keys = [(a.message.device, a.message.seq) for a in batch]
        # before the insert: the batch's own messages count from their place in it
        newest_before = {
            str(d): int(s)
            for d, s in conn.execute(
                select(messages.c.device, func.max(messages.c.seq))
                .where(messages.c.device.in_(sorted({d for d, _ in keys})))
                .group_by(messages.c.device)
            )
        }
        outcomes, inserted = self._insert_once(
            conn, messages, keys, [a.hash for a in batch],
            lambda i: _message_row(batch[i], now),
        )  # fmt: skip
        first = first_offers(keys)
        new_readings = [row for k in sorted(inserted) for row in _reading_rows(batch[first[k]])]
        if new_readings:
            conn.execute(readings.insert(), new_readings)
            # the rollups in the same transaction: they never lag the readings they summarise
            rollup_store.merge(
                conn, self.db,
                ((r["device"], r["quantity"], r["ts"], r["value"], r["quality"])
                 for r in new_readings),
            )  # fmt: skip
        late = find_late(keys, outcomes, newest_before)
        if late:
            conn.execute(
                late_duplicates.insert(),
                [{"device": d, "seq": s, "received_at": now, "newest_seq": n} for d, s, n in late],
            )
        self._count_duplicates(conn, outcomes)
        return outcomes

    def _ingest_events(
        self, conn: Connection, batch: Sequence[AcceptedEvent], now: str
    ) -> list[Outcome]:
        outcomes, _ = self._insert_once(
            conn, events, [(a.event.gateway, a.event.id) for a in batch],
            [a.hash for a in batch], lambda i: _event_row(batch[i], now),
        )  # fmt: skip
        self._count_duplicates(conn, outcomes)
        return outcomes

    def _insert_once(
        self,
        conn: Connection,
        table: Table,
        keys: list[tuple[str, int]],
        hashes: list[str],
        row: Callable[[int], dict[str, Any]],
    ) -> tuple[list[Outcome], set[tuple[str, int]]]:
        """Each key's first offer (row(i) of position i) inserted unless its key is stored, in
        key order (one lock order for every writer); every offer judged; the keys inserted.

        table's primary key is the (name, number) of keys, and it has a `hash` column."""
        name, number = table.primary_key.columns
        first = sorted(first_offers(keys).values(), key=keys.__getitem__)
        inserted = {
            (str(n), int(s))
            for n, s in conn.execute(
                self.db.insert(table)
                .on_conflict_do_nothing(index_elements=[name, number])
                .returning(name, number),
                [row(i) for i in first],
            )
        }
        stored: dict[tuple[str, int], str] = {}
        for chunk in _chunks(sorted(set(keys) - inserted), _LOOKUP_CHUNK):
            found = conn.execute(
                select(name, number, table.c.hash).where(tuple_(name, number).in_(chunk))
            )
            stored.update(((str(n), int(s)), str(h)) for n, s, h in found)
        return settle(list(zip(keys, hashes, strict=True)), inserted, stored), inserted

    def _count_duplicates(self, conn: Connection, outcomes: Sequence[Outcome]) -> None:
        n = outcomes.count(Outcome.DUPLICATE)
        if not n:
            return
        stmt = self.db.insert(counters).values(name=_DUPLICATES, value=n)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["name"], set_={"value": counters.c.value + stmt.excluded.value}
            )
        )

    def quarantine(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        row = {"received_at": to_wire(utcnow()), "topic": topic, "reason": reason,
               "detail": detail, "payload": payload}  # fmt: skip
        with self.db.write() as conn:
            conn.execute(quarantine.insert(), [row])

    # --- queries --------------------------------------------------------------------------
    def chain(self, device: str) -> tuple[list[Link], list[int]]:
        """The device's stored chain links, and the seqs that arrived again after newer ones."""
        m, ld = messages.c, late_duplicates.c
        with self.db.read() as conn:
            links = [
                Link(int(r.seq), r.hash, r.prev, from_micros(r.ts))
                for r in conn.execute(
                    select(m.seq, m.hash, m.prev, m.ts).where(m.device == device).order_by(m.seq)
                )
            ]
            late = [
                int(s)
                for (s,) in conn.execute(
                    select(ld.seq).distinct().where(ld.device == device).order_by(ld.seq)
                )
            ]
        return links, late

    def devices(self) -> list[DeviceRow]:
        m, d = messages.c, devices.c
        of_device = m.device == d.id
        stmt = select(
            d.id, d.gateway, d.profile, d.registered_at,
            select(func.max(m.seq)).where(of_device).scalar_subquery(),
            select(func.max(m.ts)).where(of_device).scalar_subquery(),
            select(func.count()).select_from(messages).where(of_device).scalar_subquery(),
        ).order_by(d.id)  # fmt: skip
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            DeviceRow(
                id=r[0],
                gateway=r[1],
                profile=r[2],
                registered_at=parse_utc(r[3]),
                last_seq=None if r[4] is None else int(r[4]),
                last_ts=None if r[5] is None else from_micros(r[5]),
                messages=int(r[6]),
            )
            for r in rows
        ]

    def readings(
        self,
        *,
        device: str,
        quantity: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 10000,
    ) -> list[ReadingRow]:
        r = readings.c
        stmt = select(*_READING_COLUMNS).where(r.device == device)
        if quantity:
            stmt = stmt.where(r.quantity == quantity)
        if start:
            stmt = stmt.where(r.ts >= to_micros(start))
        if end:
            stmt = stmt.where(r.ts < to_micros(end))
        stmt = stmt.order_by(r.ts, r.seq, r.quantity).limit(limit)
        with self.db.read() as conn:
            return [_reading(row) for row in conn.execute(stmt)]

    def latest(self, device: str) -> list[ReadingRow]:
        r = readings.c
        newest = select(func.max(messages.c.seq)).where(messages.c.device == device)
        stmt = (
            select(*_READING_COLUMNS)
            .where(r.device == device, r.seq == newest.scalar_subquery())
            .order_by(r.quantity)
        )
        with self.db.read() as conn:
            return [_reading(row) for row in conn.execute(stmt)]

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]:
        q = quarantine.c
        stmt = (
            select(q.id, q.received_at, q.topic, q.reason, q.detail, q.payload)
            .order_by(q.id.desc())
            .limit(limit)
        )
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [
            QuarantineRow(int(r[0]), parse_utc(r[1]), r[2], r[3], r[4], bytes(r[5])) for r in rows
        ]

    def events(self, *, device: str | None = None, limit: int = 1000) -> list[EventRow]:
        e = events.c
        stmt = select(
            e.gateway, e.id, e.device, e.ts, e.received_at, e.event, e.reason, e.first_seq,
            e.last_seq, e.count, e.first_ts, e.last_ts, e.counter,
        )  # fmt: skip
        if device:
            stmt = stmt.where(e.device == device)
        stmt = stmt.order_by(e.ts, e.gateway, e.id).limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(stmt).all()
        return [_event(r) for r in rows]

    def seq_runs(self, device: str) -> list[tuple[int, int]]:
        # gaps and islands: within a run without a gap, seq - its rank is constant
        m = messages.c
        ranked = (
            select(m.seq, (m.seq - func.row_number().over(order_by=m.seq)).label("island"))
            .where(m.device == device)
            .subquery()
        )
        first = func.min(ranked.c.seq)
        stmt = select(first, func.max(ranked.c.seq)).group_by(ranked.c.island).order_by(first)
        with self.db.read() as conn:
            return [(int(a), int(b)) for a, b in conn.execute(stmt)]

    def stats(self) -> Stats:
        count = func.count()
        with self.db.read() as conn:
            q = {
                str(reason): int(n)
                for reason, n in conn.execute(
                    select(quarantine.c.reason, count).group_by(quarantine.c.reason)
                )
            }
            dup = conn.execute(
                select(counters.c.value).where(counters.c.name == _DUPLICATES)
            ).scalar_one_or_none()
            n_events, lost = conn.execute(
                select(count, func.coalesce(func.sum(events.c.count), 0))
            ).one()
            n_messages = conn.execute(select(count).select_from(messages)).scalar_one()
            n_readings = conn.execute(select(count).select_from(readings)).scalar_one()
        return Stats(
            messages=int(n_messages),
            readings=int(n_readings),
            duplicates=0 if dup is None else int(dup),
            quarantined=q,
            events=int(n_events),
            reported_lost=int(lost),  # PostgreSQL's sum of bigint is numeric
        )


def _chunks(items: list[tuple[str, int]], size: int) -> Iterator[list[tuple[str, int]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _message_row(a: Accepted, now: str) -> dict[str, Any]:
    m = a.message
    return {"device": m.device, "seq": m.seq, "gateway": m.gateway, "ts": to_micros(m.ts),
            "received_at": now, "hash": a.hash, "prev": m.prev, "payload": a.payload}  # fmt: skip


def _reading_rows(a: Accepted) -> list[dict[str, Any]]:
    m = a.message
    ts = to_micros(m.ts)
    checks = a.cal_checks or (None,) * len(m.readings)
    return [
        {
            "device": m.device,
            "seq": m.seq,
            "quantity": r.quantity,
            "ts": ts,
            "value": r.value,
            "unit": r.unit,
            "raw": r.raw,
            "quality": r.quality.value,
            "uncorrected": r.cal.uncorrected if r.cal else None,
            "cal_status": r.cal.status if r.cal else None,
            "certificate": r.cal.certificate if r.cal else None,
            "certificate_version": r.cal.version if r.cal else None,
            "cal_check": check,
        }
        for r, check in zip(m.readings, checks, strict=True)
    ]


def _event_row(a: AcceptedEvent, now: str) -> dict[str, Any]:
    # data_loss fills the reason..last_ts columns (the gap queries use them); a counter event's
    # evidence is kept whole as JSON in `counter`
    e, loss = a.event, a.event.data_loss
    return {
        "gateway": e.gateway,
        "id": e.id,
        "device": e.device,
        "ts": to_wire(e.ts),
        "received_at": now,
        "event": e.event,
        "reason": None if loss is None else loss.reason.value,
        "first_seq": None if loss is None else loss.first_seq,
        "last_seq": None if loss is None else loss.last_seq,
        "count": None if loss is None else loss.count,
        "first_ts": None if loss is None else to_wire(loss.first_ts),
        "last_ts": None if loss is None else to_wire(loss.last_ts),
        "counter": None if e.counter is None else e.counter.model_dump_json(),
        "hash": a.hash,
        "payload": a.payload,
    }


def _reading(r: Sequence[Any]) -> ReadingRow:
    return ReadingRow(
        device=r[0],
        seq=int(r[1]),
        ts=from_micros(r[2]),
        quantity=r[3],
        value=None if r[4] is None else float(r[4]),
        unit=r[5],
        raw=r[6],
        quality=r[7],
        uncorrected=r[8],
        cal_status=r[9],
        certificate=r[10],
        certificate_version=r[11],
        cal_check=r[12],
    )


def _event(r: Sequence[Any]) -> EventRow:
    return EventRow(
        gateway=r[0],
        id=int(r[1]),
        device=r[2],
        ts=parse_utc(r[3]),
        received_at=parse_utc(r[4]),
        event=r[5],
        reason=r[6],
        first_seq=r[7],
        last_seq=r[8],
        count=r[9],
        first_ts=None if r[10] is None else parse_utc(r[10]),
        last_ts=None if r[11] is None else parse_utc(r[11]),
        counter=None if r[12] is None else CounterEventBody.model_validate_json(r[12]),
    )
