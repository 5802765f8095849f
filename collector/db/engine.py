"""One way to open the collector's database, SQLite or PostgreSQL, shared by every store.

The engine comes from a SQLAlchemy URL (`sqlite:///data/collector.db`,
`postgresql+psycopg://user@host/db`); one engine per URL per process, so the consumer, the API
and the PACT source share a connection pool.

SQLite: WAL (readers never block the writer), a patient busy timeout (the consumer, the API and
the CLI write to one file from several processes: a busy database is waited for, 30 s, rather
than reported), and transactions begun by us, not by the driver: a write transaction begins
IMMEDIATE, so it takes the write lock up front and never fails half-way on a lock upgrade; a
read transaction begins DEFERRED and sees one snapshot (WAL) from its first read to its end.

PostgreSQL (psycopg 3): READ COMMITTED, the server's default. Why that is enough for ingest from
several collectors is written in docs/architecture.md ("Two collectors, one database").
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

BUSY_TIMEOUT_S = 30
_WRITE = "metertrace_write"  # execution option: begin IMMEDIATE on SQLite


class DatabaseUrlError(ValueError):
    """A database URL that names no engine the collector supports."""


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite file (the `database.path` shorthand)."""
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Check a URL names a supported engine; `postgresql://` means psycopg 3."""
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUrlError(
            f"{url!r} is not a database URL: use sqlite:///path/to/collector.db or "
            "postgresql+psycopg://user@host:5432/dbname"
        ) from exc
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    if u.drivername not in ("sqlite", "postgresql+psycopg"):
        raise DatabaseUrlError(
            f"database {u.drivername!r} is not supported: use sqlite:///FILE or "
            "postgresql+psycopg://user@host/db"
        )
    if u.drivername == "sqlite" and not u.database:
        raise DatabaseUrlError("an in-memory SQLite database keeps nothing: give a file path")
    return u.render_as_string(hide_password=False)


class Database:
    """An engine and the two kinds of transaction the stores use."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        u = make_url(self.url)
        self.dialect = u.get_backend_name()
        # the read transaction open in this thread (or task), which a nested read() joins
        self._reading: ContextVar[Connection | None] = ContextVar(f"read {self.url}", default=None)
        if self.dialect == "sqlite":
            assert u.database is not None
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    @property
    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error."""
        with self.engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction: every query in it sees the same snapshot.

        A read() inside another one (same thread or task) joins it: a caller that needs several
        stores' reads from one snapshot (an evidence bundle) opens the outer read itself."""
        outer = self._reading.get()
        if outer is not None:
            yield outer
            return
        with self.engine.connect() as conn, conn.begin():
            if self.dialect == "postgresql":
                # one snapshot for the whole transaction, as SQLite's WAL read gives
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            token = self._reading.set(conn)
            try:
                yield conn
            finally:
                self._reading.reset(token)

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take ON CONFLICT, in this engine's dialect."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str) -> Engine:
    # NullPool: a SQLite connection is cheap, and a pooled one held by an idle thread would keep
    # an old WAL snapshot or the file open after close().
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_OPEN: dict[str, Database] = {}
_OPEN_LOCK = threading.Lock()


def database(url: str) -> Database:
    """The process's Database for a URL (one engine, one pool, per URL)."""
    key = normalise_url(url)
    with _OPEN_LOCK:
        db = _OPEN.get(key)
        if db is None:
            db = _OPEN[key] = Database(key)
        return db


def close_database(url: str) -> None:
    """Dispose of the process's engine for a URL (its pooled connections are closed)."""
    with _OPEN_LOCK:
        db = _OPEN.pop(normalise_url(url), None)
    if db is not None:
        db.dispose()
