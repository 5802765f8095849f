"""SQLite adapter for production batches and plant topologies, append-only.

A batch record is never edited: a correction is a new version of the same batch id that names
the version it supersedes, and the newest version is the batch. Importing the same batch again
with the same content changes nothing, so an import can be repeated. A topology is stored as
numbered versions of the whole document, with the YAML text it came from.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from collector.batches.model import Batch
from collector.batches.topology_file import TopologyDocument
from collector.db.engine import connect
from metertrace.timeutil import parse_utc, to_wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_records (
    batch_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    supersedes INTEGER,
    product_id TEXT NOT NULL,
    line TEXT NOT NULL,
    start TEXT NOT NULL,
    "end" TEXT NOT NULL,
    body TEXT NOT NULL,
    digest TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (batch_id, version)
);
CREATE INDEX IF NOT EXISTS batch_records_by_line ON batch_records (line, start);
CREATE INDEX IF NOT EXISTS batch_records_by_start ON batch_records (start);
CREATE VIEW IF NOT EXISTS current_batches AS
    SELECT * FROM batch_records r
    WHERE version = (SELECT max(version) FROM batch_records WHERE batch_id = r.batch_id);
CREATE TABLE IF NOT EXISTS topology_versions (
    version INTEGER PRIMARY KEY,
    supersedes INTEGER,
    document TEXT NOT NULL,
    source_text TEXT NOT NULL,
    source TEXT NOT NULL,
    digest TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS batch_records_no_update BEFORE UPDATE ON batch_records
BEGIN SELECT RAISE(ABORT, 'batch records are append-only: record a new version'); END;
CREATE TRIGGER IF NOT EXISTS batch_records_no_delete BEFORE DELETE ON batch_records
BEGIN SELECT RAISE(ABORT, 'batch records are append-only: record a new version'); END;
CREATE TRIGGER IF NOT EXISTS topology_no_update BEFORE UPDATE ON topology_versions
BEGIN SELECT RAISE(ABORT, 'topology versions are append-only: set a new version'); END;
CREATE TRIGGER IF NOT EXISTS topology_no_delete BEFORE DELETE ON topology_versions
BEGIN SELECT RAISE(ABORT, 'topology versions are append-only: set a new version'); END;
"""

_COLS = "batch_id, version, supersedes, body, digest, recorded_at, recorded_by, source, reason"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BatchRecord(_Out):
    batch: Batch
    version: int
    supersedes: int | None
    digest: str
    recorded_at: AwareDatetime
    recorded_by: str
    source: str
    reason: str


class RecordOutcome(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"  # same id, same content: nothing written
    SUPERSEDED = "superseded"  # same id, new content: a new version naming the old


class Conflict(_Out):
    batch_id: str
    detail: str


class RecordResult(_Out):
    created: list[str]
    unchanged: list[str]
    superseded: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.created or self.superseded)


class BatchConflict(ValueError):
    """Batches that cannot be recorded; nothing of the request was written."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        shown = "; ".join(f"{c.batch_id}: {c.detail}" for c in conflicts[:5])
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        super().__init__(f"{len(conflicts)} batch(es) not recorded, nothing written: {shown}{more}")


class TopologyRecord(_Out):
    version: int
    supersedes: int | None
    digest: str
    recorded_at: AwareDatetime
    recorded_by: str
    source: str
    topology: TopologyDocument
    source_text: str


def batch_digest(batch: Batch) -> str:
    return hashlib.sha256(batch.model_dump_json().encode()).hexdigest()


class SqliteBatches:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- batches ---------------------------------------------------------------------------
    def record(
        self,
        batches: Sequence[Batch],
        *,
        actor: str,
        at: datetime,
        source: str,
        supersede: bool = False,
        reason: str = "",
    ) -> RecordResult:
        """Record batches in one transaction: all of them, or none (BatchConflict)."""
        result: dict[RecordOutcome, list[str]] = {o: [] for o in RecordOutcome}
        conflicts: list[Conflict] = []
        seen: set[str] = set()
        with self._tx() as db:
            for b in batches:
                if b.id in seen:
                    conflicts.append(Conflict(batch_id=b.id, detail="given twice in one request"))
                    continue
                seen.add(b.id)
                outcome = self._record_one(db, b, actor, at, source, supersede, reason)
                if isinstance(outcome, RecordOutcome):
                    result[outcome].append(b.id)
                else:
                    conflicts.append(Conflict(batch_id=b.id, detail=outcome))
            changed = [b for b in batches if b.id not in result[RecordOutcome.UNCHANGED]]
            conflicts += self._overlaps(db, changed)
            if conflicts:
                raise BatchConflict(conflicts)
        return RecordResult(
            created=result[RecordOutcome.CREATED],
            unchanged=result[RecordOutcome.UNCHANGED],
            superseded=result[RecordOutcome.SUPERSEDED],
        )

    def _record_one(
        self,
        db: sqlite3.Connection,
        b: Batch,
        actor: str,
        at: datetime,
        source: str,
        supersede: bool,
        reason: str,
    ) -> RecordOutcome | str:
        """What was done, or why it cannot be."""
        digest = batch_digest(b)
        row = db.execute(
            "SELECT version, digest FROM batch_records WHERE batch_id = ? "
            "ORDER BY version DESC LIMIT 1",
            (b.id,),
        ).fetchone()
        if row is not None and row[1] == digest:
            return RecordOutcome.UNCHANGED
        if row is not None and not supersede:
            return (
                f"is recorded (version {row[0]}) with different content; records are never "
                "edited: re-import with --supersede (API: supersede=true) to add a new version"
            )
        version = 1 if row is None else row[0] + 1
        db.execute(
            "INSERT INTO batch_records (batch_id, version, supersedes, product_id, line, start, "
            '"end", body, digest, recorded_at, recorded_by, source, reason) '
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (b.id, version, None if row is None else row[0], b.product_id, b.line,
             to_wire(b.start), to_wire(b.end), b.model_dump_json(), digest, to_wire(at), actor,
             source, reason),
        )  # fmt: skip
        return RecordOutcome.CREATED if row is None else RecordOutcome.SUPERSEDED

    @staticmethod
    def _overlaps(db: sqlite3.Connection, batches: Sequence[Batch]) -> list[Conflict]:
        # after the inserts, so batches of one request are checked against each other too
        out = []
        ids = {b.id for b in batches}
        for b in batches:
            rows = db.execute(
                'SELECT batch_id, start, "end" FROM current_batches WHERE line = ? '
                'AND start < ? AND "end" > ? AND batch_id != ? ORDER BY start',
                (b.line, to_wire(b.end), to_wire(b.start), b.id),
            ).fetchall()
            for other, start, end in rows:
                if b.id < other or other not in ids:  # a pair within the request: once
                    out.append(Conflict(batch_id=b.id, detail=(
                        f"overlaps batch {other} ({start} – {end}) on line {b.line}; a line "
                        "runs one batch at a time: correct the times or model two lines"
                    )))  # fmt: skip
        return out

    def batch(self, batch_id: str, version: int | None = None) -> BatchRecord | None:
        sql = f"SELECT {_COLS} FROM batch_records WHERE batch_id = ?"
        args: list[Any] = [batch_id]
        if version is not None:
            sql += " AND version = ?"
            args.append(version)
        rows = self._query(sql + " ORDER BY version DESC LIMIT 1", args)
        return _record(rows[0]) if rows else None

    def history(self, batch_id: str) -> list[BatchRecord]:
        sql = f"SELECT {_COLS} FROM batch_records WHERE batch_id = ? ORDER BY version"
        return [_record(r) for r in self._query(sql, (batch_id,))]

    def batches(
        self,
        *,
        product: str | None = None,
        line: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100_000,
    ) -> list[BatchRecord]:
        """Current versions, by start time; with start/end, those overlapping [start, end)."""
        sql = f"SELECT {_COLS} FROM current_batches WHERE 1 = 1"
        args: list[Any] = []
        for column, value in (("product_id", product), ("line", line)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if end is not None:
            sql += " AND start < ?"
            args.append(to_wire(end))
        if start is not None:
            sql += ' AND "end" > ?'
            args.append(to_wire(start))
        sql += " ORDER BY start, batch_id LIMIT ?"
        args.append(limit)
        return [_record(r) for r in self._query(sql, args)]

    # --- topology ---------------------------------------------------------------------------
    def set_topology(
        self, doc: TopologyDocument, *, source_text: str, source: str, actor: str, at: datetime
    ) -> tuple[TopologyRecord, bool]:
        """Store a new version unless it equals the current one; (record, stored)."""
        digest = doc.digest()
        with self._tx() as db:
            row = db.execute(
                "SELECT version, digest FROM topology_versions ORDER BY version DESC LIMIT 1"
            ).fetchone()
            if row is None or row[1] != digest:
                version = 1 if row is None else row[0] + 1
                db.execute(
                    "INSERT INTO topology_versions (version, supersedes, document, source_text, "
                    "source, digest, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (version, None if row is None else row[0], doc.model_dump_json(),
                     source_text, source, digest, to_wire(at), actor),
                )  # fmt: skip
        record = self.topology()
        assert record is not None
        return record, row is None or row[1] != digest

    def topology(self, version: int | None = None) -> TopologyRecord | None:
        sql = (
            "SELECT version, supersedes, document, source_text, source, digest, recorded_at, "
            "recorded_by FROM topology_versions"
        )
        args: list[Any] = []
        if version is not None:
            sql += " WHERE version = ?"
            args.append(version)
        rows = self._query(sql + " ORDER BY version DESC LIMIT 1", args)
        if not rows:
            return None
        r = rows[0]
        return TopologyRecord(
            version=r[0],
            supersedes=r[1],
            topology=TopologyDocument.model_validate_json(r[2]),
            source_text=r[3],
            source=r[4],
            digest=r[5],
            recorded_at=parse_utc(r[6]),
            recorded_by=r[7],
        )

    def topology_versions(self) -> list[int]:
        return [r[0] for r in self._query("SELECT version FROM topology_versions ORDER BY 1")]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(r: Any) -> BatchRecord:
    return BatchRecord(
        batch=Batch.model_validate_json(r[3]),
        version=r[1],
        supersedes=r[2],
        digest=r[4],
        recorded_at=parse_utc(r[5]),
        recorded_by=r[6],
        source=r[7],
        reason=r[8],
    )
