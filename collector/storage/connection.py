"""One way to open the collector's SQLite database, shared by its stores.

Autocommit (transactions are explicit), usable from the API's worker threads (each store guards
its connection with a lock), and patient: the consumer, the API and the CLI write to the same
file, so a busy database is waited for (30 s) rather than reported as an error.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_S = 30


def connect(path: Path, schema: str | None = None) -> sqlite3.Connection:
    """A connection to path; with a schema, the file is created (WAL) and the schema applied."""
    if schema is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    if schema is not None:
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    return db
