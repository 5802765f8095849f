"""Opening a database at the schema this release expects, and moving a database there.

The schema's history is Alembic's (collector/db/migrations/, shipped in the package, run from
here without an alembic.ini). What a database holds decides what happens:

- nothing: `open_database` creates the head schema (upgrade from nothing);
- the head revision: it is opened;
- release 0.1.0's tables without a revision stamp, or an older revision: refused with what to
  run (`metertrace collector db upgrade`), since an upgrade rewrites the ledger's tables and
  the operator backs the database up first;
- a revision this release does not know (a newer release wrote it): refused, naming it.

`upgrade` recognises a 0.1.0 database by its tables, checks they are 0.1.0's, stamps it 0001
and upgrades it; every step runs in one transaction, so a failure leaves it as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.exc import SQLAlchemyError

from collector.db import ddl
from collector.db.compare import differences
from collector.db.engine import Database, database
from collector.db.migrations import release_0_1_0
from collector.db.schema import APPEND_ONLY, metadata

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
UPGRADE = "metertrace collector db upgrade -c collector.yaml"
RELEASE_0_1_0 = "0001"  # the revision whose schema release 0.1.0 made
_LOCK = 0x4D54_4442  # PostgreSQL advisory lock held while a database is upgraded ("MTDB")
_VERSION_TABLE = "alembic_version"


class SchemaError(RuntimeError):
    """The database's schema is not the one this release runs on; the message says what to run.

    `found` names what the database holds ("release 0.1.0", "revision 0001", ...)."""

    def __init__(self, message: str, *, found: str | None = None) -> None:
        super().__init__(message)
        self.found = found


def alembic_config() -> Config:
    """Alembic's configuration for the shipped migrations (no alembic.ini); whoever runs a command
    with it passes the connection in as `cfg.attributes["connection"]`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head() -> str:
    """The revision this release's schema (collector/db/schema.py) is."""
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


@cache
def known_revisions() -> tuple[str, ...]:
    """Every revision of this release, oldest first."""
    script = ScriptDirectory.from_config(alembic_config())
    return tuple(r.revision for r in reversed(list(script.walk_revisions())))


@dataclass(frozen=True)
class SchemaState:
    """What a database holds, as far as its schema goes."""

    kind: Literal["empty", "release-0.1.0", "revision", "foreign"]
    revision: str | None = None  # the stamped revision(s), kind "revision"
    tables: tuple[str, ...] = ()
    head: str = field(default_factory=head)

    @property
    def at_head(self) -> bool:
        return self.kind == "revision" and self.revision == self.head

    @property
    def known(self) -> bool:
        return self.kind != "revision" or self.revision in known_revisions()

    def describe(self) -> str:
        if self.kind == "empty":
            return "an empty database"
        if self.kind == "release-0.1.0":
            return "release 0.1.0's schema (no revision stamp)"
        if self.kind == "foreign":
            return f"tables MeterTrace did not make ({', '.join(self.tables[:8])})"
        where = " (head)" if self.at_head else "" if self.known else " (unknown)"
        return f"revision {self.revision}{where}"


def state(conn: Connection) -> SchemaState:
    names = set(inspect(conn).get_table_names())
    if _VERSION_TABLE in names:
        heads = MigrationContext.configure(conn).get_current_heads()
        if heads:
            return SchemaState("revision", ",".join(sorted(heads)), tuple(sorted(names)))
        names.discard(_VERSION_TABLE)
    if not names:
        return SchemaState("empty")
    foreign = sorted(names - set(release_0_1_0.TABLES))
    if foreign:
        return SchemaState("foreign", tables=tuple(foreign))
    return SchemaState("release-0.1.0", tables=tuple(sorted(names)))


def _refusal(st: SchemaState, where: str) -> SchemaError:
    found = st.describe()
    if st.kind == "foreign":
        return SchemaError(
            f"{where} holds {found} and no MeterTrace revision stamp: give the collector an "
            "empty database or one a collector made",
            found=found,
        )
    if not st.known:
        return SchemaError(
            f"{where} is at revision {st.revision}, which this release does not know: it knows "
            f"revisions up to {st.head}. A newer release wrote this database; upgrade the "
            "collector (metertrace) to that release or later",
            found=found,
        )
    return SchemaError(
        f"{where} holds {found}; this release runs on revision {st.head}. Back the database "
        f"up, then run `{UPGRADE}` (or --url URL)",
        found=found,
    )


def open_database(url: str, *, create: bool = True) -> Database:
    """The process's Database for url, at the head schema; an empty database is given the head
    schema when `create`; anything else raises SchemaError saying what to do."""
    db = database(url)
    with db.read() as conn:
        st = state(conn)
    if st.at_head:
        return db
    if st.kind == "empty" and create:
        upgrade(url)
        return db
    if st.kind == "empty":
        raise SchemaError(
            f"{db.display_url} is empty: run `{UPGRADE}` to create the schema",
            found=st.describe(),
        )
    raise _refusal(st, db.display_url)


@dataclass(frozen=True)
class Upgraded:
    before: SchemaState  # what the database held
    revision: str  # the revision it is at now
    created: list[str]  # tables of 0.1.0 the database lacked and got before its stamp


class UpgradeFailed(SchemaError):
    """An upgrade stopped part-way; its transaction was rolled back, nothing changed."""


def upgrade(url: str) -> Upgraded:
    """Bring the database to the head revision, in one transaction."""
    db = database(url)
    cfg = alembic_config()
    created: list[str] = []
    with db.write() as conn:
        if db.dialect == "postgresql":  # two collectors starting on one empty database
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK})")
        st = state(conn)
        if st.kind == "foreign" or not st.known:
            raise _refusal(st, db.display_url)
        cfg.attributes["connection"] = conn
        try:
            if st.kind == "release-0.1.0":
                created = release_0_1_0.create(conn, missing_only=True)
                problems = release_0_1_0.problems(conn)
                if problems:
                    raise SchemaError(
                        f"{db.display_url} has release 0.1.0's tables but not their schema, so "
                        "it is not upgraded (nothing was changed): " + "; ".join(problems[:10]),
                        found=st.describe(),
                    )
                command.stamp(cfg, RELEASE_0_1_0)
            command.upgrade(cfg, "head")
        except SchemaError:
            raise
        except (RuntimeError, SQLAlchemyError) as exc:
            raise UpgradeFailed(
                f"upgrading {db.display_url} from {st.describe()} failed and was rolled back, "
                f"nothing was changed: {exc}",
                found=st.describe(),
            ) from exc
    return Upgraded(st, head(), created)


def current(url: str) -> SchemaState:
    """What the database holds (read only)."""
    with database(url).read() as conn:
        return state(conn)


@dataclass(frozen=True)
class CheckReport:
    state: SchemaState
    differences: list[str]  # the live schema against collector/db/schema.py
    triggers: list[str]  # append-only triggers missing, disabled or altered

    @property
    def ok(self) -> bool:
        return self.state.at_head and not self.differences and not self.triggers


def check(url: str) -> CheckReport:
    """Is the database at the head revision, and is its schema the one schema.py defines (with
    every append-only trigger in place)? Differences are listed only at the head revision."""
    with database(url).read() as conn:
        st = state(conn)
        if not st.at_head:
            return CheckReport(st, [], [])
        diffs = differences(conn, metadata)
        diffs += [f"view {v} is not expected" for v in inspect(conn).get_view_names()]
        return CheckReport(st, diffs, ddl.append_only_problems(conn, APPEND_ONLY))
