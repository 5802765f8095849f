"""SQLite adapter of the storage port (WAL, one writer, readers on their own connections)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.db.engine import connect
from collector.ingest.rules import Accepted, AcceptedEvent
from collector.ledger.chain import Link
from collector.ledger.port import DeviceRow, EventRow, Outcome, QuarantineRow, ReadingRow, Stats
from metertrace.timeutil import parse_utc, to_wire, utcnow
from metertrace.wire import CounterEventBody

_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY,
    gateway TEXT NOT NULL REFERENCES gateways(id),
    profile TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    gateway TEXT NOT NULL,
    ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    hash TEXT NOT NULL,
    prev TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE IF NOT EXISTS readings (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    quantity TEXT NOT NULL,
    ts TEXT NOT NULL,
    value REAL,
    unit TEXT NOT NULL,
    raw TEXT,
    quality TEXT NOT NULL,
    uncorrected REAL,
    cal_status TEXT,
    certificate TEXT,
    certificate_version INTEGER,
    cal_check TEXT,
    PRIMARY KEY (device, quantity, seq)
);
CREATE TABLE IF NOT EXISTS late_duplicates (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    newest_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (device, quantity, ts);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    gateway TEXT NOT NULL,
    id INTEGER NOT NULL,
    device TEXT NOT NULL,
    ts TEXT NOT NULL,
    received_at TEXT NOT NULL,
    event TEXT NOT NULL,
    reason TEXT,
    first_seq INTEGER,
    last_seq INTEGER,
    count INTEGER,
    first_ts TEXT,
    last_ts TEXT,
    counter TEXT,
    hash TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (gateway, id)
);
CREATE INDEX IF NOT EXISTS events_by_device ON events (device, first_seq);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._w = connect(path, _SCHEMA)
        self._wlock = threading.Lock()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def _r(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            self._local.db = db
        return db

    # --- registry -------------------------------------------------------------------------
    def register_gateway(self, gateway: str, key_id: str) -> None:
        with self._wlock:
            self._w.execute(
                "INSERT INTO gateways (id, key_id, registered_at) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO NOTHING",
                (gateway, key_id, to_wire(utcnow())),
            )

    def register_device(self, device: str, gateway: str, profile: str) -> None:
        with self._wlock:
            self._w.execute(
                "INSERT INTO devices (id, gateway, profile, registered_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO NOTHING",
                (device, gateway, profile, to_wire(utcnow())),
            )

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, batch: Sequence[Accepted]) -> list[Outcome]:
        now = to_wire(utcnow())
        return self._in_transaction(lambda: [self._ingest_one(a, now) for a in batch])

    def ingest_events(self, batch: Sequence[AcceptedEvent]) -> list[Outcome]:
        now = to_wire(utcnow())
        return self._in_transaction(lambda: [self._event_one(e, now) for e in batch])

    def _in_transaction(self, work: Callable[[], list[Outcome]]) -> list[Outcome]:
        with self._wlock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                outcomes = work()
                dups = outcomes.count(Outcome.DUPLICATE)
                if dups:
                    self._w.execute(
                        "INSERT INTO counters (name, value) VALUES ('duplicates', ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                        (dups,),
                    )
                self._w.execute("COMMIT")
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
        return outcomes

    def _event_one(self, a: AcceptedEvent, now: str) -> Outcome:
        # data_loss fills the reason..last_ts columns (the gap queries use them); a counter
        # event's evidence is kept whole as JSON in `counter`
        e, loss = a.event, a.event.data_loss
        lost: tuple[object, ...] = (None,) * 6
        if loss is not None:
            lost = (
                loss.reason.value,
                loss.first_seq,
                loss.last_seq,
                loss.count,
                to_wire(loss.first_ts),
                to_wire(loss.last_ts),
            )
        counter = None if e.counter is None else e.counter.model_dump_json()
        cur = self._w.execute(
            "INSERT INTO events (gateway, id, device, ts, received_at, event, reason, first_seq, "
            "last_seq, count, first_ts, last_ts, counter, hash, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(gateway, id) DO NOTHING",
            (
                e.gateway,
                e.id,
                e.device,
                to_wire(e.ts),
                now,
                e.event,
                *lost,
                counter,
                a.hash,
                a.payload,
            ),
        )
        if cur.rowcount == 0:
            row = self._w.execute(
                "SELECT hash FROM events WHERE gateway = ? AND id = ?", (e.gateway, e.id)
            ).fetchone()
            return Outcome.DUPLICATE if row[0] == a.hash else Outcome.CONFLICT
        return Outcome.STORED

    def _ingest_one(self, a: Accepted, now: str) -> Outcome:
        m = a.message
        ts = to_wire(m.ts)
        cur = self._w.execute(
            "INSERT INTO messages (device, seq, gateway, ts, received_at, hash, prev, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device, seq) DO NOTHING",
            (m.device, m.seq, m.gateway, ts, now, a.hash, m.prev, a.payload),
        )
        if cur.rowcount == 0:
            row = self._w.execute(
                "SELECT hash FROM messages WHERE device = ? AND seq = ?", (m.device, m.seq)
            ).fetchone()
            if row[0] != a.hash:
                return Outcome.CONFLICT
            newest = self._w.execute(
                "SELECT max(seq) FROM messages WHERE device = ?", (m.device,)
            ).fetchone()[0]
            if newest > m.seq:  # an old message again after newer ones: evidence of a replay
                self._w.execute(
                    "INSERT INTO late_duplicates (device, seq, received_at, newest_seq) "
                    "VALUES (?, ?, ?, ?)",
                    (m.device, m.seq, now, newest),
                )
            return Outcome.DUPLICATE
        checks = a.cal_checks or (None,) * len(m.readings)
        self._w.executemany(
            "INSERT INTO readings (device, seq, quantity, ts, value, unit, raw, quality, "
            "uncorrected, cal_status, certificate, certificate_version, cal_check) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.device,
                    m.seq,
                    r.quantity,
                    ts,
                    r.value,
                    r.unit,
                    r.raw,
                    r.quality.value,
                    r.cal.uncorrected if r.cal else None,
                    r.cal.status if r.cal else None,
                    r.cal.certificate if r.cal else None,
                    r.cal.version if r.cal else None,
                    check,
                )
                for r, check in zip(m.readings, checks, strict=True)
            ],
        )
        return Outcome.STORED

    def quarantine(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        with self._wlock:
            self._w.execute(
                "INSERT INTO quarantine (received_at, topic, reason, detail, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (to_wire(utcnow()), topic, reason, detail, payload),
            )

    def chain(self, device: str) -> tuple[list[Link], list[int]]:
        """The device's stored chain links, and the seqs that arrived again after newer ones."""
        db = self._r()
        links = [
            Link(r[0], r[1], r[2], parse_utc(r[3]))
            for r in db.execute(
                "SELECT seq, hash, prev, ts FROM messages WHERE device = ? ORDER BY seq", (device,)
            ).fetchall()
        ]
        late = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT seq FROM late_duplicates WHERE device = ? ORDER BY seq", (device,)
            ).fetchall()
        ]
        return links, late

    # --- queries --------------------------------------------------------------------------
    def devices(self) -> list[DeviceRow]:
        rows = (
            self._r()
            .execute(
                "SELECT d.id, d.gateway, d.profile, d.registered_at, "
                "  (SELECT max(seq) FROM messages m WHERE m.device = d.id), "
                "  (SELECT max(ts) FROM messages m WHERE m.device = d.id), "
                "  (SELECT count(*) FROM messages m WHERE m.device = d.id) "
                "FROM devices d ORDER BY d.id"
            )
            .fetchall()
        )
        return [
            DeviceRow(
                r[0], r[1], r[2], parse_utc(r[3]), r[4], parse_utc(r[5]) if r[5] else None, r[6]
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
        sql = (
            "SELECT device, seq, ts, quantity, value, unit, raw, quality, "
            "uncorrected, cal_status, certificate, certificate_version, cal_check FROM readings "
            "WHERE device = ?"
        )
        args: list[object] = [device]
        if quantity:
            sql += " AND quantity = ?"
            args.append(quantity)
        if start:
            sql += " AND ts >= ?"
            args.append(to_wire(start))
        if end:
            sql += " AND ts < ?"
            args.append(to_wire(end))
        sql += " ORDER BY ts, seq, quantity LIMIT ?"
        args.append(limit)
        return [_reading(r) for r in self._r().execute(sql, args).fetchall()]

    def latest(self, device: str) -> list[ReadingRow]:
        rows = (
            self._r()
            .execute(
                "SELECT r.device, r.seq, r.ts, r.quantity, r.value, r.unit, r.raw, r.quality, "
                "r.uncorrected, r.cal_status, r.certificate, r.certificate_version, r.cal_check "
                "FROM readings r WHERE r.device = ? AND r.seq = "
                "(SELECT max(seq) FROM messages WHERE device = ?) ORDER BY r.quantity",
                (device, device),
            )
            .fetchall()
        )
        return [_reading(r) for r in rows]

    def quarantined(self, limit: int = 100) -> list[QuarantineRow]:
        rows = (
            self._r()
            .execute(
                "SELECT id, received_at, topic, reason, detail, payload FROM quarantine "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [QuarantineRow(r[0], parse_utc(r[1]), r[2], r[3], r[4], bytes(r[5])) for r in rows]

    def events(self, *, device: str | None = None, limit: int = 1000) -> list[EventRow]:
        sql = (
            "SELECT gateway, id, device, ts, received_at, event, reason, first_seq, last_seq, "
            "count, first_ts, last_ts, counter FROM events"
        )
        args: list[object] = []
        if device:
            sql += " WHERE device = ?"
            args.append(device)
        sql += " ORDER BY ts, gateway, id LIMIT ?"
        args.append(limit)
        return [
            EventRow(
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
            for r in self._r().execute(sql, args).fetchall()
        ]

    def seq_runs(self, device: str) -> list[tuple[int, int]]:
        # gaps and islands: within a run, seq - rank is constant
        rows = (
            self._r()
            .execute(
                "SELECT min(seq), max(seq) FROM (SELECT seq, seq - row_number() OVER "
                "(ORDER BY seq) AS island FROM messages WHERE device = ?) "
                "GROUP BY island ORDER BY 1",
                (device,),
            )
            .fetchall()
        )
        return [(int(a), int(b)) for a, b in rows]

    def stats(self) -> Stats:
        db = self._r()
        q = dict(db.execute("SELECT reason, count(*) FROM quarantine GROUP BY reason").fetchall())
        dup = db.execute("SELECT value FROM counters WHERE name = 'duplicates'").fetchone()
        events, lost = db.execute("SELECT count(*), coalesce(sum(count), 0) FROM events").fetchone()
        return Stats(
            messages=db.execute("SELECT count(*) FROM messages").fetchone()[0],
            readings=db.execute("SELECT count(*) FROM readings").fetchone()[0],
            duplicates=dup[0] if dup else 0,
            quarantined=q,
            events=events,
            reported_lost=lost,
        )

    def close(self) -> None:
        with self._wlock:
            self._w.close()


def _reading(r: Any) -> ReadingRow:
    return ReadingRow(
        device=r[0],
        seq=int(r[1]),
        ts=parse_utc(r[2]),
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
