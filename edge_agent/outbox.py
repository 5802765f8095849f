"""The agent's durable state: per-device sequence and chain head, and the outbox.

A message is created, numbered, chained and written here in ONE transaction before anything
is sent, and deleted only after the broker's PUBACK. A crash at any moment therefore loses
nothing: at worst a message is sent again, and the collector drops the duplicate by (device, seq).
When a bound is exceeded, the oldest readings are deleted in the same transaction that stores
the data-loss events reporting them (retention.py), so no drop is ever silent.
The counter tracker's trusted values and the counter events a poll raised are stored in the
transaction of that poll's message, so a restart resumes from exactly what was sent.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol, TypeVar

from metertrace.timeutil import parse_utc, to_wire, utcnow
from metertrace.wire import GENESIS

from .retention import Held, Limits, Loss, choose_drops, over_limits

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
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counter_trust (
    device TEXT NOT NULL,
    quantity TEXT NOT NULL,
    value REAL NOT NULL,
    ts TEXT NOT NULL,
    PRIMARY KEY (device, quantity)
);
"""
READING, EVENT = "reading", "event"
_EVENT_SEQ = "event_seq"
_DROPPED = "dropped/"  # + device: messages dropped by the bounds, ever


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    device: str
    seq: int
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest: datetime | None  # poll time of the oldest message held
    dropped: dict[str, int] = field(default_factory=dict)  # per device, since the state began


# (seq, prev_hash) -> (topic, payload, hash of this message)
Builder = Callable[[int, str], tuple[str, bytes, str]]


class EventItem(Protocol):
    """What the outbox needs of an event it stores: the device it is about."""

    @property
    def device(self) -> str: ...


E = TypeVar("E", bound=EventItem)
# (event id, item) -> (topic, payload)
ItemBuilder = Callable[[int, E], tuple[str, bytes]]
EventBuilder = ItemBuilder[Loss]
# quantity -> (last trusted counter value, its poll time)
Trusted = Mapping[str, tuple[float, datetime]]


class Outbox:
    def __init__(
        self,
        path: Path,
        limits: Limits | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.limits, self._clock = limits, clock
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a power cut must not lose an acked append
        self._db.executescript(_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "kind" not in columns:  # a state database from before events existed
            self._db.execute(
                f"ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT '{READING}'"
            )
        self._lock = threading.Lock()
        # Running totals: every change goes through this object, so they stay exact.
        depth, size = self._db.execute(
            "SELECT count(*), coalesce(sum(length(topic) + length(payload)), 0) FROM outbox"
        ).fetchone()
        self._depth, self._bytes = int(depth), int(size)

    def append(
        self,
        device: str,
        build: Builder,
        *,
        at: datetime | None = None,
        trusted: Trusted | None = None,
        events: tuple[Collection[E], ItemBuilder[E]] | None = None,
    ) -> int:
        """Number, chain and store the device's next message; returns its sequence number.

        `at` is the message's poll time, which the age bound is measured from. In the same
        transaction: the counters' trusted values after this poll and the events it raised
        (items and their builder), stored after the message so they are sent after it.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT seq, hash FROM chain WHERE device = ?", (device,)
                ).fetchone()
                seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
                topic, payload, digest = build(seq, prev)
                self._insert(device, seq, topic, payload, at or self._clock(), READING)
                self._db.execute(
                    "INSERT INTO chain (device, seq, hash) VALUES (?, ?, ?) "
                    "ON CONFLICT(device) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    (device, seq, digest),
                )
                self._db.executemany(
                    "INSERT INTO counter_trust (device, quantity, value, ts) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(device, quantity) DO UPDATE SET value = excluded.value, "
                    "ts = excluded.ts",
                    [(device, q, v, to_wire(t)) for q, (v, t) in (trusted or {}).items()],
                )
                items, build_event = events or ((), None)
                added = self._insert_events(items, build_event) if build_event else 0
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._depth += 1 + len(items)
            self._bytes += len(topic) + len(payload) + added
            return seq

    def add_events(self, items: Collection[E], build: ItemBuilder[E]) -> None:
        """Store events (e.g. data loss of polls that could not be stored) in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                added = self._insert_events(items, build)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._depth += len(items)
            self._bytes += added

    def enforce(self, build: EventBuilder, *, protect: Collection[int] = ()) -> list[Loss]:
        """Apply the bounds: drop the oldest readings if one is exceeded, and store the events
        reporting them in the same transaction. `protect`: row ids the MQTT client holds."""
        if self.limits is None:
            return []
        now = self._clock()
        with self._lock:
            if not over_limits(self._bytes, self._oldest(READING), now, self.limits):
                return []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "SELECT id, device, seq, length(topic) + length(payload), created_at, kind "
                    "FROM outbox ORDER BY id"
                )
                ids, losses = choose_drops(
                    _held(cursor),
                    total_bytes=self._bytes,
                    now=now,
                    limits=self.limits,
                    protect=protect,
                )
                cursor.close()
                freed = 0
                for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
                    marks = ",".join("?" * len(chunk))
                    freed += self._db.execute(
                        f"SELECT sum(length(topic) + length(payload)) FROM outbox "
                        f"WHERE id IN ({marks})",
                        chunk,
                    ).fetchone()[0]
                    self._db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                added = self._insert_events(losses, build)
                for loss in losses:
                    self._bump(_DROPPED + loss.device, loss.count)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._depth += len(losses) - len(ids)
            self._bytes += added - freed
        return losses

    def pending(self, *, after_id: int = 0, limit: int = 100) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, device, seq, topic, payload FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Pending(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def remove(self, ids: list[int]) -> None:
        """Delete acknowledged rows in one transaction: one fsync however many there are."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            removed, freed = 0, 0
            try:
                for i in ids:
                    row = self._db.execute(
                        "DELETE FROM outbox WHERE id = ? RETURNING length(topic) + length(payload)",
                        (i,),
                    ).fetchone()
                    if row is not None:
                        removed, freed = removed + 1, freed + row[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
            self._depth -= removed
            self._bytes -= freed

    def depth(self) -> int:
        return self._depth

    def stats(self) -> OutboxStats:
        with self._lock:
            oldest = self._oldest(None)
            dropped = {
                name.removeprefix(_DROPPED): int(value)
                for name, value in self._db.execute(
                    "SELECT name, value FROM counters WHERE name LIKE ?", (_DROPPED + "%",)
                )
            }
        return OutboxStats(self._depth, self._bytes, oldest, dropped)

    def trusted(self, device: str) -> dict[str, tuple[float, datetime]]:
        """The device's counter values trusted as of its last stored message (for restore)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT quantity, value, ts FROM counter_trust WHERE device = ?", (device,)
            ).fetchall()
        return {q: (float(v), parse_utc(t)) for q, v, t in rows}

    def last_seq(self, device: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT seq FROM chain WHERE device = ?", (device,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- inside a transaction, under the lock ------------------------------------------------
    def _insert(
        self, device: str, seq: int, topic: str, payload: bytes, at: datetime, kind: str
    ) -> None:
        self._db.execute(
            "INSERT INTO outbox (device, seq, topic, payload, created_at, kind) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (device, seq, topic, payload, to_wire(at), kind),
        )

    def _insert_events(self, items: Collection[E], build: ItemBuilder[E]) -> int:
        added = 0
        now = self._clock()
        for item in items:
            event_id = self._bump(_EVENT_SEQ, 1)
            topic, payload = build(event_id, item)
            self._insert(item.device, event_id, topic, payload, now, EVENT)
            added += len(topic) + len(payload)
        return added

    def _bump(self, name: str, by: int) -> int:
        row = self._db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value RETURNING value",
            (name, by),
        ).fetchone()
        return int(row[0])

    def _oldest(self, kind: str | None) -> datetime | None:
        sql = "SELECT created_at FROM outbox"
        args: tuple[str, ...] = ()
        if kind:
            sql, args = sql + " WHERE kind = ?", (kind,)
        row = self._db.execute(sql + " ORDER BY id LIMIT 1", args).fetchone()
        return parse_utc(row[0]) if row else None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _held(cursor: sqlite3.Cursor) -> Iterator[Held]:
    for r in cursor:
        yield Held(r[0], r[1], r[2], r[3], parse_utc(r[4]), droppable=r[5] == READING)
