"""Every footprint version ever published, append-only in the collector's database.

PACT's lifecycle (Tech Specs v2.3, "Product Footprint Lifecycle"): changed figures for the same
scope are a minor change (same id, version + 1, `updated` set); a new scope (here: another
declared unit) is a major change: a new id naming its predecessors in `precedingPfIds`, and each
predecessor gets a last version with status Deprecated. Published versions are never edited.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, exists, insert, select
from sqlalchemy.exc import IntegrityError

from collector.db.engine import Database
from collector.db.schema import pact_footprints
from collector.footprints.model import ProductFootprint, Status
from metertrace.timeutil import to_wire

# What identifies a version's content: everything but the lifecycle fields.
_LIFECYCLE = ("id", "version", "created", "updated", "precedingPfIds", "status", "statusComment")


def content_digest(pf: ProductFootprint) -> str:
    body = {k: v for k, v in pf.to_json().items() if k not in _LIFECYCLE}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class PublishConflict(ValueError):
    """Another publisher (a second PACT host on the same database) wrote the same version first."""


_newer = pact_footprints.alias("newer")
# The newest version of each footprint: no newer version of its id is published.
_IS_NEWEST: ColumnElement[bool] = ~exists().where(
    _newer.c.id == pact_footprints.c.id, _newer.c.version > pact_footprints.c.version
)


def _newest(conn: Connection, *where: ColumnElement[bool]) -> list[ProductFootprint]:
    """The newest versions, in the order they were published (a deprecation names its
    predecessors in that order)."""
    query = (
        select(pact_footprints.c.body)
        .where(_IS_NEWEST, *where)
        .order_by(pact_footprints.c.recorded_at, pact_footprints.c.id)
    )
    bodies = conn.scalars(query).all()
    return [ProductFootprint.model_validate_json(b) for b in bodies]


def _append(conn: Connection, pf: ProductFootprint, scope: str, at: datetime) -> None:
    conn.execute(
        insert(pact_footprints).values(
            id=str(pf.id),
            version=pf.version,
            scope=scope,
            digest=content_digest(pf),
            status=pf.status.value,
            body=json.dumps(pf.to_json()),
            recorded_at=to_wire(at),
        )
    )


class PublishedFootprints:
    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self) -> list[ProductFootprint]:
        """The newest version of every footprint, oldest created first (a stable order)."""
        with self.db.read() as conn:
            found = _newest(conn)
        return sorted(found, key=lambda pf: (pf.created, str(pf.id)))

    def get(self, pf_id: UUID) -> ProductFootprint | None:
        with self.db.read() as conn:
            found = _newest(conn, pact_footprints.c.id == str(pf_id))
        return found[0] if found else None

    def publish(self, pf: ProductFootprint, *, scope: str, at: datetime) -> ProductFootprint | None:
        """Publish `pf` (given as version 1) as the next version of its id, or as a new footprint
        deprecating the other active ones of its scope. None: the content is unchanged.

        What is published is read and the next versions written in one transaction; on
        PostgreSQL a second publisher that read the same versions is refused by the primary key
        (PublishConflict), and the next refresh publishes again if still needed."""
        try:
            with self.db.write() as conn:
                return _publish(conn, pf, scope, at)
        except IntegrityError as exc:
            raise PublishConflict(
                f"footprint {pf.id} (scope {scope}): another publisher wrote the same version "
                "at the same time; nothing of this one was written"
            ) from exc


def _publish(
    conn: Connection, pf: ProductFootprint, scope: str, at: datetime
) -> ProductFootprint | None:
    found = _newest(conn, pact_footprints.c.id == str(pf.id))
    if found:
        current = found[0]
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
        _append(conn, new, scope, at)
        return new
    others = [
        old
        for old in _newest(conn, pact_footprints.c.scope == scope)
        if old.id != pf.id and old.status is Status.ACTIVE
    ]
    new = pf.model_copy(update={"preceding_pf_ids": [o.id for o in others] or None})
    for old in others:
        _append(conn, _deprecated(old, new.id, at), scope, at)
    _append(conn, new, scope, at)
    return new


def _deprecated(old: ProductFootprint, successor: UUID, at: datetime) -> ProductFootprint:
    return old.model_copy(
        update={
            "version": old.version + 1,
            "updated": max(at, old.updated or old.created),
            "status": Status.DEPRECATED,
            "status_comment": f"superseded by footprint {successor} (a change of scope)",
        }
    )
