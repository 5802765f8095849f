"""Every footprint version ever published, append-only in the collector's SQLite file.

PACT's lifecycle (Tech Specs v2.3, "Product Footprint Lifecycle"): changed figures for the same
scope are a minor change (same id, version + 1, `updated` set); a new scope (here: another
declared unit) is a major change: a new id naming its predecessors in `precedingPfIds`, and each
predecessor gets a last version with status Deprecated. Published versions are never edited.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from uuid import UUID

from collector.footprints.model import ProductFootprint, Status
from metertrace.timeutil import to_wire

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pact_footprints (
    id TEXT NOT NULL, version INTEGER NOT NULL, scope TEXT NOT NULL, digest TEXT NOT NULL,
    status TEXT NOT NULL, body TEXT NOT NULL, recorded_at TEXT NOT NULL,
    PRIMARY KEY (id, version));
CREATE INDEX IF NOT EXISTS pact_footprints_scope ON pact_footprints (scope);
CREATE TRIGGER IF NOT EXISTS pact_footprints_no_update BEFORE UPDATE ON pact_footprints
BEGIN SELECT RAISE(ABORT, 'published footprints are append-only: publish a new version'); END;
CREATE TRIGGER IF NOT EXISTS pact_footprints_no_delete BEFORE DELETE ON pact_footprints
BEGIN SELECT RAISE(ABORT, 'published footprints are append-only: publish a new version'); END;
"""
# What identifies a version's content: everything but the lifecycle fields.
_LIFECYCLE = ("id", "version", "created", "updated", "precedingPfIds", "status", "statusComment")


def content_digest(pf: ProductFootprint) -> str:
    body = {k: v for k, v in pf.to_json().items() if k not in _LIFECYCLE}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class PublishedFootprints:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def _latest_rows(self, where: str, args: tuple[str, ...]) -> list[ProductFootprint]:
        sql = (
            "SELECT body FROM pact_footprints p WHERE version = (SELECT MAX(version) FROM "
            f"pact_footprints q WHERE q.id = p.id) AND {where}"
        )
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [ProductFootprint.model_validate_json(r[0]) for r in rows]

    def latest(self) -> list[ProductFootprint]:
        """The newest version of every footprint, oldest created first (a stable order)."""
        return sorted(self._latest_rows("1 = 1", ()), key=lambda pf: (pf.created, str(pf.id)))

    def get(self, pf_id: UUID) -> ProductFootprint | None:
        found = self._latest_rows("id = ?", (str(pf_id),))
        return found[0] if found else None

    def _append(self, pf: ProductFootprint, scope: str, at: datetime) -> None:
        self._db.execute(
            "INSERT INTO pact_footprints (id, version, scope, digest, status, body, recorded_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(pf.id), pf.version, scope, content_digest(pf), pf.status.value,
             json.dumps(pf.to_json()), to_wire(at)),
        )  # fmt: skip

    def publish(self, pf: ProductFootprint, *, scope: str, at: datetime) -> ProductFootprint | None:
        """Publish `pf` (given as version 1) as the next version of its id, or as a new footprint
        deprecating the other active ones of its scope. None: the content is unchanged."""
        current = self.get(pf.id)
        if current is not None:
            if current.status is Status.DEPRECATED:
                raise ValueError(
                    f"footprint {pf.id} is deprecated and must not change (PACT lifecycle); "
                    "its scope came back after a major change"
                )
            if content_digest(current) == content_digest(pf):
                return None
            new = pf.model_copy(
                update={
                    "version": current.version + 1,
                    "created": current.created,
                    "updated": max(at, current.updated or current.created),
                    "preceding_pf_ids": current.preceding_pf_ids,
                }
            )
            with self._lock:
                self._append(new, scope, at)
            return new
        others = [
            old
            for old in self._latest_rows("scope = ?", (scope,))
            if old.id != pf.id and old.status is Status.ACTIVE
        ]
        new = pf.model_copy(update={"preceding_pf_ids": [o.id for o in others] or None})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for old in others:
                    self._append(_deprecated(old, new.id, at), scope, at)
                self._append(new, scope, at)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return new

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _deprecated(old: ProductFootprint, successor: UUID, at: datetime) -> ProductFootprint:
    return old.model_copy(
        update={
            "version": old.version + 1,
            "updated": max(at, old.updated or old.created),
            "status": Status.DEPRECATED,
            "status_comment": f"superseded by footprint {successor} (a change of scope)",
        }
    )
