"""Write transactions run again when PostgreSQL aborted them to break a deadlock or a
serialization conflict (SQLSTATE 40P01, 40001): the server rolled the whole transaction back,
so running the whole of it again is safe, and the one thing to do.

SQLite never reports these: its writers queue for the one write lock (IMMEDIATE, busy timeout).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from collector.db.engine import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIED_SQLSTATES = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
ATTEMPTS = 5


def sqlstate(exc: DBAPIError) -> str | None:
    """The SQLSTATE of the driver's error (psycopg sets it; sqlite3 has none)."""
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def write_retrying(db: Database, work: Callable[[Connection], T], *, attempts: int = ATTEMPTS) -> T:
    """work(conn) in one write transaction, run again from the start (a new transaction) when
    the server aborted it with a retryable SQLSTATE; any other error, or the last attempt's,
    is raised. work must not have effects outside the transaction."""
    for attempt in range(1, attempts + 1):
        try:
            with db.write() as conn:
                return work(conn)
        except DBAPIError as exc:
            state = sqlstate(exc)
            if state not in RETRIED_SQLSTATES or attempt == attempts:
                raise
            # a random pause, so the transactions that collided do not meet again at once
            pause = random.uniform(0, 0.005 * 2**attempt)
            log.info(
                "transaction aborted (SQLSTATE %s), attempt %d of %d", state, attempt, attempts
            )
            time.sleep(pause)
    raise AssertionError("unreachable: the last attempt returns or raises")
