"""Storage of production batches and plant topologies, append-only.

A batch record is never edited: a correction is a new version of the same batch id that names
the version it supersedes, and the newest version is the batch. Importing the same batch again
with the same content changes nothing, so an import can be repeated. A topology is stored as
numbered versions of the whole document, with the YAML text it came from.

Writes take turns: a write reads what is recorded (the newest versions, the batches a new one
could overlap) and inserts what follows from it, in one transaction. On SQLite that transaction
holds the database's write lock; on PostgreSQL (READ COMMITTED) it takes a transaction-scoped
advisory lock, without which two imports could each miss the other's overlapping batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Connection, Row, Select, exists, func, insert, select

from collector.batches.model import Batch
from collector.batches.topology_file import TopologyDocument
from collector.db.engine import Database
from collector.db.schema import batch_records, topology_versions
from metertrace.timeutil import parse_utc, to_wire

# The PostgreSQL advisory lock the batch store's writes take: a fixed number no other lock uses
# ("MTbatc" in ASCII).
_WRITE_LOCK = 0x4D5462617463

_COLUMNS = (
    batch_records.c.batch_id,
    batch_records.c.version,
    batch_records.c.supersedes,
    batch_records.c.body,
    batch_records.c.digest,
    batch_records.c.recorded_at,
    batch_records.c.recorded_by,
    batch_records.c.source,
    batch_records.c.reason,
)
_newer = batch_records.alias("newer")
# The newest version of each batch: no newer version of its id is recorded.
_IS_CURRENT: ColumnElement[bool] = ~exists().where(
    _newer.c.batch_id == batch_records.c.batch_id, _newer.c.version > batch_records.c.version
)


def _current() -> Select[*tuple[Any, ...]]:
    return select(*_COLUMNS).where(_IS_CURRENT)


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


class BatchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _serialised(self, conn: Connection) -> None:
        """Wait for the other batch store writers (SQLite: the write transaction already did)."""
        if self.db.dialect == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(_WRITE_LOCK)))

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
        with self.db.write() as conn:
            self._serialised(conn)
            for b in batches:
                if b.id in seen:
                    conflicts.append(Conflict(batch_id=b.id, detail="given twice in one request"))
                    continue
                seen.add(b.id)
                outcome = _record_one(conn, b, actor, at, source, supersede, reason)
                if isinstance(outcome, RecordOutcome):
                    result[outcome].append(b.id)
                else:
                    conflicts.append(Conflict(batch_id=b.id, detail=outcome))
            changed = [b for b in batches if b.id not in result[RecordOutcome.UNCHANGED]]
            conflicts += _overlaps(conn, changed)
            if conflicts:
                raise BatchConflict(conflicts)
        return RecordResult(
            created=result[RecordOutcome.CREATED],
            unchanged=result[RecordOutcome.UNCHANGED],
            superseded=result[RecordOutcome.SUPERSEDED],
        )

    def batch(self, batch_id: str, version: int | None = None) -> BatchRecord | None:
        query = select(*_COLUMNS).where(batch_records.c.batch_id == batch_id)
        if version is not None:
            query = query.where(batch_records.c.version == version)
        with self.db.read() as conn:
            row = conn.execute(query.order_by(batch_records.c.version.desc()).limit(1)).first()
        return None if row is None else _record(row)

    def history(self, batch_id: str) -> list[BatchRecord]:
        query = (
            select(*_COLUMNS)
            .where(batch_records.c.batch_id == batch_id)
            .order_by(batch_records.c.version)
        )
        with self.db.read() as conn:
            return [_record(r) for r in conn.execute(query)]

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
        query = _current()
        if product is not None:
            query = query.where(batch_records.c.product_id == product)
        if line is not None:
            query = query.where(batch_records.c.line == line)
        if end is not None:
            query = query.where(batch_records.c.start < to_wire(end))
        if start is not None:
            query = query.where(batch_records.c.end > to_wire(start))
        query = query.order_by(batch_records.c.start, batch_records.c.batch_id).limit(limit)
        with self.db.read() as conn:
            return [_record(r) for r in conn.execute(query)]

    # --- topology ---------------------------------------------------------------------------
    def set_topology(
        self, doc: TopologyDocument, *, source_text: str, source: str, actor: str, at: datetime
    ) -> tuple[TopologyRecord, bool]:
        """Store a new version unless it equals the current one; (record, stored)."""
        digest = doc.digest()
        with self.db.write() as conn:
            self._serialised(conn)
            row = conn.execute(
                select(topology_versions.c.version, topology_versions.c.digest)
                .order_by(topology_versions.c.version.desc())
                .limit(1)
            ).first()
            stored = row is None or row.digest != digest
            if stored:
                conn.execute(
                    insert(topology_versions).values(
                        version=1 if row is None else row.version + 1,
                        supersedes=None if row is None else row.version,
                        document=doc.model_dump_json(),
                        source_text=source_text,
                        source=source,
                        digest=digest,
                        recorded_at=to_wire(at),
                        recorded_by=actor,
                    )
                )
        record = self.topology()
        assert record is not None
        return record, stored

    def topology(self, version: int | None = None) -> TopologyRecord | None:
        query = select(topology_versions)
        if version is not None:
            query = query.where(topology_versions.c.version == version)
        with self.db.read() as conn:
            r = conn.execute(query.order_by(topology_versions.c.version.desc()).limit(1)).first()
        if r is None:
            return None
        return TopologyRecord(
            version=r.version,
            supersedes=r.supersedes,
            topology=TopologyDocument.model_validate_json(r.document),
            source_text=r.source_text,
            source=r.source,
            digest=r.digest,
            recorded_at=parse_utc(r.recorded_at),
            recorded_by=r.recorded_by,
        )

    def topology_versions(self) -> list[int]:
        with self.db.read() as conn:
            query = select(topology_versions.c.version).order_by(topology_versions.c.version)
            return list(conn.scalars(query))


def _record_one(
    conn: Connection,
    b: Batch,
    actor: str,
    at: datetime,
    source: str,
    supersede: bool,
    reason: str,
) -> RecordOutcome | str:
    """What was done, or why it cannot be."""
    digest = batch_digest(b)
    row = conn.execute(
        select(batch_records.c.version, batch_records.c.digest)
        .where(batch_records.c.batch_id == b.id)
        .order_by(batch_records.c.version.desc())
        .limit(1)
    ).first()
    if row is not None and row.digest == digest:
        return RecordOutcome.UNCHANGED
    if row is not None and not supersede:
        return (
            f"is recorded (version {row.version}) with different content; records are never "
            "edited: re-import with --supersede (API: supersede=true) to add a new version"
        )
    conn.execute(
        insert(batch_records).values(
            batch_id=b.id,
            version=1 if row is None else row.version + 1,
            supersedes=None if row is None else row.version,
            product_id=b.product_id,
            line=b.line,
            start=to_wire(b.start),
            end=to_wire(b.end),
            body=b.model_dump_json(),
            digest=digest,
            recorded_at=to_wire(at),
            recorded_by=actor,
            source=source,
            reason=reason,
        )
    )
    return RecordOutcome.CREATED if row is None else RecordOutcome.SUPERSEDED


def _overlaps(conn: Connection, batches: Sequence[Batch]) -> list[Conflict]:
    # after the inserts, so batches of one request are checked against each other too
    out = []
    ids = {b.id for b in batches}
    for b in batches:
        rows = conn.execute(
            select(batch_records.c.batch_id, batch_records.c.start, batch_records.c.end)
            .where(
                _IS_CURRENT,
                batch_records.c.line == b.line,
                batch_records.c.start < to_wire(b.end),
                batch_records.c.end > to_wire(b.start),
                batch_records.c.batch_id != b.id,
            )
            .order_by(batch_records.c.start)
        )
        for other, start, end in rows:
            if b.id < other or other not in ids:  # a pair within the request: once
                out.append(Conflict(batch_id=b.id, detail=(
                    f"overlaps batch {other} ({start} – {end}) on line {b.line}; a line "
                    "runs one batch at a time: correct the times or model two lines"
                )))  # fmt: skip
    return out


def _record(r: Row[*tuple[Any, ...]]) -> BatchRecord:
    return BatchRecord(
        batch=Batch.model_validate_json(r.body),
        version=r.version,
        supersedes=r.supersedes,
        digest=r.digest,
        recorded_at=parse_utc(r.recorded_at),
        recorded_by=r.recorded_by,
        source=r.source,
        reason=r.reason,
    )
