"""The databases the ingest benchmark has the collector write to, and what it reads back.

Each run gets an empty database of its own: a SQLite file in the run's directory, or a new
PostgreSQL database (`bench_ingest_<random>`, dropped afterwards) on the server the admin URL
names. The benchmark reads the store directly, on a connection of its own, so the collector's
process does no work for it: the count of stored messages while it waits, then every reading's
(device, seq, quantity) to check that each was stored exactly once.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import make_url

from tests.databases import pg_connect

from .machine import process_cpu_s

STORES = ("sqlite", "postgresql")
PG_ADMIN_URL = os.environ.get(
    "METERTRACE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

Row = tuple[str, int, str]  # (device, seq, quantity) of one stored reading


class StoreUnavailable(RuntimeError):
    """A database the benchmark cannot create, reach or read; the message says which."""

    def __init__(self, store: str, detail: str) -> None:
        self.store, self.detail = store, detail
        super().__init__(f"{store}: {detail}")


class Target(Protocol):
    kind: str

    def database_config(self) -> dict[str, str]:
        """The `database:` section of collector.yaml."""
        ...

    def describe(self) -> str: ...

    def messages(self) -> int:
        """Messages stored so far; 0 before the collector has created its tables."""
        ...

    def rows(self) -> list[Row]: ...

    def server_cpu_s(self) -> float | None:
        """CPU seconds of the database server's processes serving this database, if any."""
        ...


class SqliteTarget:
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def database_config(self) -> dict[str, str]:
        return {"path": str(self.path)}

    def describe(self) -> str:
        return f"SQLite file {self.path}"

    def _query(self, sql: str) -> list[Any] | None:
        try:
            if self._db is None:
                if not self.path.exists():
                    return None
                self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
            return self._db.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None  # the collector has not created its schema yet
            raise StoreUnavailable(self.kind, f"cannot read {self.path}: {exc}") from exc

    def messages(self) -> int:
        got = self._query("SELECT count(*) FROM messages")
        return int(got[0][0]) if got else 0

    def rows(self) -> list[Row]:
        return [tuple(r) for r in self._query("SELECT device, seq, quantity FROM readings") or []]

    def server_cpu_s(self) -> float | None:
        return None  # SQLite runs inside the collector's process

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def _connect(url: str, store: str) -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return pg_connect(url)
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(
            store,
            f"PostgreSQL not reachable at {make_url(url).render_as_string(hide_password=True)} "
            f"({str(exc).strip()}); start the server or pass --pg-url",
        ) from exc


class PostgresTarget:
    kind = "postgresql"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"bench_ingest_{uuid.uuid4().hex[:12]}"
        with _connect(admin_url, self.kind) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = make_url(admin_url).set(database=self.name).render_as_string(False)
        self._db = _connect(self.url, self.kind)

    def database_config(self) -> dict[str, str]:
        return {"url": self.url}

    def describe(self) -> str:
        return f"PostgreSQL database {make_url(self.url).render_as_string(hide_password=True)}"

    def _query(self, sql: str) -> list[Any] | None:
        try:
            return self._db.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return None  # the collector has not created its schema yet
        except psycopg.Error as exc:
            raise StoreUnavailable(self.kind, f"cannot read {self.describe()}: {exc}") from exc

    def messages(self) -> int:
        got = self._query("SELECT count(*) FROM messages")
        return int(got[0][0]) if got else 0

    def rows(self) -> list[Row]:
        return [tuple(r) for r in self._query("SELECT device, seq, quantity FROM readings") or []]

    def server_cpu_s(self) -> float | None:
        """The backends connected to this database but ours (the collector's pool)."""
        got = self._query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        total = 0.0
        for (pid,) in got or []:
            try:
                total += process_cpu_s(int(pid))
            except OSError:  # gone since, or another host's
                continue
        return total

    def close(self) -> None:
        self._db.close()
        with _connect(self.admin_url, self.kind) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Stored:
    """How the stored readings compare with the ones published."""

    readings: int  # rows in the store
    missing: int  # published, not stored
    extra: int  # stored, never published
    duplicated: int  # rows beyond the first for one (device, seq, quantity)

    @classmethod
    def compare(cls, rows: list[Row], expected: set[Row]) -> Stored:
        got = set(rows)
        return cls(len(rows), len(expected - got), len(got - expected), len(rows) - len(got))

    @property
    def exactly_once(self) -> bool:
        return self.missing == self.extra == self.duplicated == 0


@contextmanager
def open_target(kind: str, directory: Path, *, pg_admin_url: str) -> Iterator[Target]:
    """An empty database of this kind, removed afterwards (a SQLite file stays in directory)."""
    target: SqliteTarget | PostgresTarget
    if kind == "sqlite":
        target = SqliteTarget(directory / "bench.db")
    elif kind == "postgresql":
        target = PostgresTarget(pg_admin_url)
    else:
        raise ValueError(f"store {kind!r}: use one of {', '.join(STORES)}")
    try:
        yield target
    finally:
        target.close()
