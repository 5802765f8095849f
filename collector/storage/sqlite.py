"""SQLite adapter of the storage port (WAL, one writer, readers on their own connections)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from metertrace.timeutil import parse_utc, to_wire, utcnow

from ..domain.ingest import Accepted, AcceptedEvent
from .port import DeviceRow, EventRow, Outcome, QuarantineRow, ReadingRow, Stats

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
    PRIMARY KEY (device, quantity, seq)
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
    reason TEXT NOT NULL,
    first_seq INTEGER,
    last_seq INTEGER,
    count INTEGER NOT NULL,
    first_ts TEXT NOT NULL,
    last_ts TEXT NOT NULL,
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self._w = self._connect()
        self._w.execute("PRAGMA journal_mode=WAL")
        self._w.executescript(_SCHEMA)
        self._wlock = threading.Lock()
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA busy_timeout=30000")
        return db

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
        e, loss = a.event, a.event.data_loss
        cur = self._w.execute(
            "INSERT INTO events (gateway, id, device, ts, received_at, event, reason, first_seq, "
            "last_seq, count, first_ts, last_ts, hash, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(gateway, id) DO NOTHING",
            (
                e.gateway,
                e.id,
                e.device,
                to_wire(e.ts),
                now,
                e.event,
                loss.reason.value,
                loss.first_seq,
                loss.last_seq,
                loss.count,
                to_wire(loss.first_ts),
                to_wire(loss.last_ts),
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
            return Outcome.DUPLICATE if row[0] == a.hash else Outcome.CONFLICT
        self._w.executemany(
            "INSERT INTO readings (device, seq, quantity, ts, value, unit, raw, quality) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (m.device, m.seq, r.quantity, ts, r.value, r.unit, r.raw, r.quality.value)
                for r in m.readings
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
            "SELECT device, seq, ts, quantity, value, unit, raw, quality FROM readings "
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
                "SELECT r.device, r.seq, r.ts, r.quantity, r.value, r.unit, r.raw, r.quality "
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
            "count, first_ts, last_ts FROM events"
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
                count=int(r[9]),
                first_ts=parse_utc(r[10]),
                last_ts=parse_utc(r[11]),
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
    )
