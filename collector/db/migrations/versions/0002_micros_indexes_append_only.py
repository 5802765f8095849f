"""Times in microseconds, two indexes, append-only triggers on every certification table.

- messages.ts and readings.ts: the wire text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) becomes integer
  microseconds since the Unix epoch, converted in integer arithmetic (exact); a time that is not
  in the wire format stops the upgrade before anything changed.
- New indexes messages_by_time and late_duplicates_by_device.
- The view current_batches is dropped (the batch store asks for the newest version itself).
- Release 0.1.0's triggers (on some tables, some events) are replaced by BEFORE UPDATE and
  BEFORE DELETE triggers (PostgreSQL: and BEFORE TRUNCATE) on every table of APPEND_ONLY below.
- SQLite: the tables are rebuilt (new table, copy, drop, rename) into the head schema's types
  and NOT NULL keys, without 0.1.0's two foreign keys; AUTOINCREMENT counters are kept.
  PostgreSQL: ALTER TABLE in place.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTable

from collector.db import ddl
from collector.db.migrations import release_0_1_0 as r010

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# As this revision installs them (collector/db/schema.py holds the head's; a later revision
# that changes one installs it anew).
APPEND_ONLY: dict[str, str] = {
    "messages": "the ledger is append-only: messages are never changed or removed",
    "readings": "the ledger is append-only: readings are never changed or removed",
    "events": "the ledger is append-only: events are never changed or removed",
    "late_duplicates": "the ledger is append-only: replay evidence is never removed",
    "quarantine": "the quarantine is append-only: refused messages are kept as evidence",
    "device_records": "device records are append-only",
    "replacements": "meter replacements are append-only",
    "gateway_keys": "gateway keys are append-only: enrol a new key",
    "key_retirements": "key retirements are append-only",
    "certificates": "certificates are append-only: add a new version",
    "audit_log": "the audit log is append-only",
    "batch_records": "batch records are append-only: record a new version",
    "topology_versions": "topology versions are append-only: set a new version",
    "factor_records": "factor records are append-only: add a new version",
    "pact_footprints": "published footprints are append-only: publish a new version",
}
TIMED = ("messages", "readings")  # the tables whose ts becomes microseconds
NEW_INDEXES = {
    "messages_by_time": ("messages", ["device", "ts"]),
    "late_duplicates_by_device": ("late_duplicates", ["device", "seq"]),
}
# 0.1.0's foreign keys, as PostgreSQL named them in revision 0001
FOREIGN_KEYS = {
    "devices_gateway_fkey": ("devices", "gateways", ["gateway"], ["id"]),
    "key_retirements_kid_fkey": ("key_retirements", "gateway_keys", ["kid"], ["kid"]),
}
AUTOINCREMENT = ("quarantine", "replacements", "audit_log")


def _messages(metadata: sa.MetaData, name: str) -> sa.Table:
    """messages at this revision, on SQLite (rebuilt into it)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("gateway", sa.Text, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("received_at", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("prev", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )


def _readings(metadata: sa.MetaData, name: str) -> sa.Table:
    """readings at this revision, on SQLite (rebuilt into it, columns in key order)."""
    return sa.Table(
        name,
        metadata,
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("quantity", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Double),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("raw", sa.Text),
        sa.Column("quality", sa.Text, nullable=False),
        sa.Column("uncorrected", sa.Double),
        sa.Column("cal_status", sa.Text),
        sa.Column("certificate", sa.Text),
        sa.Column("certificate_version", sa.Integer),
        sa.Column("cal_check", sa.Text),
    )


def upgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    _refuse_malformed_times(conn)
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {r010.VIEW}")
    for t in r010.triggers():
        conn.exec_driver_sql(ddl.drop_trigger(t, dialect))
    if dialect == "sqlite":
        _sqlite_upgrade(conn)
    else:
        for name, (table, *_) in FOREIGN_KEYS.items():
            op.drop_constraint(name, table, type_="foreignkey")
        for table in TIMED:
            op.alter_column(
                table,
                "ts",
                type_=sa.BigInteger,
                existing_nullable=False,
                postgresql_using=ddl.wire_to_micros("ts", dialect),
            )
    for name, (table, columns) in NEW_INDEXES.items():
        op.create_index(name, table, columns)
    _install_triggers(conn, dialect)


def _install_triggers(conn: Connection, dialect: str) -> None:
    for stmt in ddl.create_function(dialect):
        conn.exec_driver_sql(stmt)
    for table, message in APPEND_ONLY.items():
        for t in ddl.append_only(table, message, dialect):
            conn.exec_driver_sql(ddl.create_trigger(t, dialect))


def _refuse_malformed_times(conn: Connection) -> None:
    dialect = conn.dialect.name
    for table in TIMED:
        n, example = conn.exec_driver_sql(
            f"SELECT count(*), min(ts) FROM {table} WHERE NOT {ddl.is_wire_time('ts', dialect)}"
        ).one()
        if n:
            raise RuntimeError(
                f"{table}: {n} row(s) with a time that is not YYYY-MM-DDTHH:MM:SS.ffffffZ "
                f"(e.g. {example!r}); nothing was changed. Correct them (from a backup) first."
            )


def _sqlite_upgrade(conn: Connection) -> None:
    convert = {"ts": ddl.wire_to_micros("ts", "sqlite")}
    with _kept_autoincrement(conn):
        _rebuild(conn, "messages", _messages, convert)
        _rebuild(conn, "readings", _readings, convert)
        op.create_index("readings_by_time", "readings", ["device", "quantity", "ts"])
        big, text = sa.BigInteger(), sa.Text()
        with op.batch_alter_table("gateways", recreate="always") as b:
            b.alter_column("id", existing_type=text, nullable=False)
        with op.batch_alter_table(
            "devices",
            recreate="always",
            naming_convention={"fk": "fk_%(table_name)s_%(column_0_name)s"},
        ) as b:
            b.drop_constraint("fk_devices_gateway", type_="foreignkey")
            b.alter_column("id", existing_type=text, nullable=False)
        with op.batch_alter_table("late_duplicates", recreate="always") as b:
            b.alter_column("seq", type_=big)
            b.alter_column("newest_seq", type_=big)
        with op.batch_alter_table("events", recreate="always") as b:
            for c in ("id", "first_seq", "last_seq", "count"):
                b.alter_column(c, type_=big)
        with op.batch_alter_table("counters", recreate="always") as b:
            b.alter_column("name", existing_type=text, nullable=False)
            b.alter_column("value", type_=big)
        for table in AUTOINCREMENT:  # reflection does not see AUTOINCREMENT: say it again
            with op.batch_alter_table(
                table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ) as b:
                b.alter_column("id", existing_type=sa.Integer(), nullable=False, autoincrement=True)
        with op.batch_alter_table(
            "key_retirements",
            recreate="always",
            naming_convention={"fk": "fk_%(table_name)s_%(column_0_name)s"},
        ) as b:
            b.drop_constraint("fk_key_retirements_kid", type_="foreignkey")
        with op.batch_alter_table("topology_versions", recreate="always") as b:
            b.alter_column("version", existing_type=sa.Integer(), nullable=False)


def _rebuild(
    conn: Connection,
    name: str,
    make: Callable[[sa.MetaData, str], sa.Table],
    exprs: dict[str, str],
) -> None:
    """SQLite: make the table anew as `make` defines it, copy every row (a column through
    exprs where given), check none is lost, drop the old one and take its name."""
    new = make(sa.MetaData(), f"_new_{name}")
    conn.execute(CreateTable(new))  # no indexes: their names are the old table's still
    cols = [c.name for c in new.columns]
    quoted = ", ".join(f'"{c}"' for c in cols)
    select = ", ".join(exprs.get(c, f'"{c}"') for c in cols)
    conn.exec_driver_sql(f'INSERT INTO "{new.name}" ({quoted}) SELECT {select} FROM "{name}"')
    (old,) = conn.exec_driver_sql(f'SELECT count(*) FROM "{name}"').one()
    (copied,) = conn.exec_driver_sql(f'SELECT count(*) FROM "{new.name}"').one()
    if old != copied:
        raise RuntimeError(f"{name}: {copied} of {old} rows copied; nothing was changed")
    conn.exec_driver_sql(f'DROP TABLE "{name}"')
    conn.exec_driver_sql(f'ALTER TABLE "{new.name}" RENAME TO "{name}"')


@contextmanager
def _kept_autoincrement(conn: Connection) -> Iterator[None]:
    """SQLite forgets an AUTOINCREMENT table's counter when the table is dropped; a rebuild
    must not let ids of rows that were once there be given again."""
    has = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).first()
    seqs: dict[str, int] = {}
    if has:
        seqs = {n: int(s) for n, s in conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence")}
    yield
    for name, seq in seqs.items():
        if name not in AUTOINCREMENT:
            continue
        conn.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
        (top,) = conn.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{name}"').one()
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, max(seq, top))
        )


def downgrade() -> None:
    conn = op.get_bind()
    dialect = conn.dialect.name
    for table, message in APPEND_ONLY.items():
        for t in ddl.append_only(table, message, dialect):
            conn.exec_driver_sql(ddl.drop_trigger(t, dialect))
    for name, (table, _) in NEW_INDEXES.items():
        op.drop_index(name, table_name=table)
    if dialect == "sqlite":
        convert = {"ts": ddl.micros_to_wire("ts", "sqlite")}
        rebuilt = ("gateways", "devices", "late_duplicates", "events", "counters",
                   *AUTOINCREMENT, "key_retirements", "topology_versions")  # fmt: skip
        with _kept_autoincrement(conn):
            for table in (*TIMED, *rebuilt):
                _rebuild(conn, table, _release_table(table), convert if table in TIMED else {})
        for ix in ("readings_by_time", "events_by_device"):
            table, columns = _release_index(ix)
            op.create_index(ix, table, columns)
    else:
        for table in TIMED:
            op.alter_column(
                table,
                "ts",
                type_=r010.Key,
                existing_nullable=False,
                postgresql_using=ddl.micros_to_wire("ts", dialect),
            )
        for name, (table, referred, local, remote) in FOREIGN_KEYS.items():
            op.create_foreign_key(name, table, referred, local, remote)
    r010.create(conn, missing_only=True)  # its triggers and view


def _release_table(table: str) -> Callable[[sa.MetaData, str], sa.Table]:
    def make(metadata: sa.MetaData, name: str) -> sa.Table:
        return r010.tables(metadata, rename={table: name})[table]

    return make


def _release_index(name: str) -> tuple[str, list[str]]:
    for t in r010.tables(sa.MetaData()).values():
        for ix in t.indexes:
            if ix.name == name:
                return t.name, [c.name for c in ix.columns]
    raise KeyError(name)
