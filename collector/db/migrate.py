"""Opening a database at the schema this release expects.

(Transitional: creates the schema from collector/db/schema.py with create_all; the Alembic
migrations replace this.)
"""

from __future__ import annotations

from collector.db.engine import Database, database
from collector.db.schema import metadata


class SchemaError(RuntimeError):
    """The database's schema is not the one this release runs on; the message says what to run."""


def open_database(url: str, *, create: bool = True) -> Database:
    db = database(url)
    if create:
        metadata.create_all(db.engine)
    return db
