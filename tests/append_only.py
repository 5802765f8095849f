"""Checks that the database itself refuses to change certification data.

The refusals come from the append-only triggers the migrations install (collector/db/schema.py,
APPEND_ONLY), so they hold for any client of the database, not only for the collector's code.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Executable
from sqlalchemy.exc import DBAPIError

from collector.db.engine import Database


def assert_refused(db: Database, *statements: Executable, match: str = "append-only") -> None:
    """Each statement, in a transaction of its own, is refused with a message matching `match`
    (the table's APPEND_ONLY text)."""
    for statement in statements:
        with pytest.raises(DBAPIError, match=match), db.write() as conn:
            conn.execute(statement)
