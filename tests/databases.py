"""Databases for the tests: a SQLite file in tmp, or a fresh PostgreSQL database per test.

PostgreSQL is a real server (127.0.0.1:5432 on these machines; METERTRACE_TEST_PG_URL names
another). Each test gets a database of its own, created from the server's template and dropped
afterwards, so tests never see each other's rows. A server that is not there fails the test
with what to run; nothing is skipped.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from collector.db.engine import close_database, sqlite_url

ENGINES = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "METERTRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PG_HINT = (
    "PostgreSQL is required for the storage tests on PostgreSQL and was not reachable at {url} "
    "({error}). Start it (`scripts/ensure-postgres` installs and starts it on Debian/Ubuntu as "
    "root; elsewhere start your server and set METERTRACE_TEST_PG_URL to a URL of a database "
    "whose user may CREATE DATABASE)."
)


def pg_connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit psycopg connection to a SQLAlchemy-style PostgreSQL URL (raises
    psycopg.OperationalError when the server does not answer within 5 s)."""
    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname=u.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    )


def _admin() -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return pg_connect(PG_ADMIN_URL)
    except psycopg.OperationalError as exc:
        pytest.fail(PG_HINT.format(url=PG_ADMIN_URL, error=str(exc).strip()), pytrace=False)


def new_pg_database(hint: str = "t") -> str:
    """A new, empty PostgreSQL database; its URL."""
    name = f"mt_{''.join(c for c in hint.lower() if c.isalnum())[:20]}_{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    close_database(url)
    name = make_url(url).database
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Databases:
    """Makes databases of one engine for a test and removes them at its end."""

    def __init__(self, engine: str, tmp: Path, hint: str) -> None:
        self.engine, self._tmp, self._hint = engine, tmp, hint
        self._made: list[str] = []

    def new(self, name: str = "collector") -> str:
        if self.engine == "sqlite":
            url = sqlite_url(self._tmp / f"{name}-{len(self._made)}.db")
        else:
            url = new_pg_database(f"{self._hint}{name}")
        self._made.append(url)
        return url

    def cleanup(self) -> None:
        for url in self._made:
            if self.engine == "postgresql":
                drop_pg_database(url)
            else:
                close_database(url)
