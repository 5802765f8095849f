"""The agent's durable state: per-device sequence and chain head, and the outbox.

A message is created, numbered, chained and written here in ONE transaction before anything
is sent, and deleted only after the broker's PUBACK. A crash at any moment therefore loses
nothing: at worst a message is sent again, and the collector drops the duplicate by (device, seq).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from metertrace.wire import GENESIS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain (
    device TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    device: str
    seq: int
    topic: str
    payload: bytes


# (seq, prev_hash) -> (topic, payload, hash of this message)
Builder = Callable[[int, str], tuple[str, bytes, str]]


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut must not lose an acked append
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def append(self, device: str, build: Builder) -> int:
        """Number, chain and store the device's next message; returns its sequence number."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, hash FROM chain WHERE device = ?", (device,)
                ).fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                topic, payload, digest = build(seq, prev)
                self._db.execute(
                    "INSERT INTO outbox (device, seq, topic, payload) VALUES (?, ?, ?, ?)",
                    (device, seq, topic, payload),
                )
                self._db.execute(
                    "INSERT INTO chain (device, seq, hash) VALUES (?, ?, ?) "
                    "ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    (device, seq, digest),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return seq

    def pending(self, *, after_id: int = 0, limit: int = 100) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device, seq, topic, payload FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Pending(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def remove(self, ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def last_seq(self, device: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM chain WHERE device = ?", (device,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
