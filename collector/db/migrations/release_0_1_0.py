"""The schema release 0.1.0 made (its stores' `CREATE TABLE IF NOT EXISTS` scripts), frozen.

The scripts were `_SCHEMA` in collector/storage/sqlite.py, registry_sqlite.py,
batches_sqlite.py, factors_sqlite.py and collector/pact/published.py (commit eaa5ef6).

Revision 0001 creates it (on SQLite exactly as 0.1.0 did: the same column types, the same
nullable primary keys, `INTEGER PRIMARY KEY AUTOINCREMENT`, the two foreign keys, the view and
the triggers; on PostgreSQL the same tables in its types). `collector.db.migrate` compares an
unstamped database with it before stamping it 0001, and revision 0002's downgrade rebuilds it.
Never change this file: a new schema is a new revision.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    REAL,
    BigInteger,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    inspect,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

from collector.db import ddl
from collector.db.compare import differences

# SQLite's INTEGER is 64-bit: BIGINT on PostgreSQL.
Int = BigInteger().with_variant(Integer(), "sqlite")
# Keys and ISO times: byte order ("C") on PostgreSQL, as SQLite's BINARY collation compares.
Key = Text().with_variant(postgresql.TEXT(collation="C"), "postgresql")
Real: TypeEngine[float] = Double().with_variant(REAL(), "sqlite")
# INTEGER PRIMARY KEY AUTOINCREMENT on SQLite (with sqlite_autoincrement), BIGSERIAL on PostgreSQL.
RowId = Int


def tables(
    metadata: MetaData, *, dialect: str = "sqlite", rename: dict[str, str] | None = None
) -> dict[str, Table]:
    """Release 0.1.0's tables in `metadata`, for `dialect`; `rename` gives some of them other
    names (for a table rebuild: the new table is made beside the old one, then renamed)."""
    names = rename or {}
    # `id TEXT PRIMARY KEY`: SQLite lets such a column be NULL, and 0.1.0 declared it so;
    # PostgreSQL makes every primary key column NOT NULL
    loose = dialect == "sqlite"

    def t(name: str, *args: SchemaItem, **kw: Any) -> Table:
        return Table(names.get(name, name), metadata, *args, **kw)

    def pk(name: str, type_: TypeEngine[Any]) -> Column[Any]:
        return Column(name, type_, primary_key=True, nullable=loose)

    out = [
        t("gateways", pk("id", Key),
          Column("key_id", Text, nullable=False), Column("registered_at", Key, nullable=False)),
        t("devices", pk("id", Key),
          Column("gateway", Key, ForeignKey("gateways.id"), nullable=False),
          Column("profile", Text, nullable=False), Column("registered_at", Key, nullable=False)),
        t("messages",
          Column("device", Key, primary_key=True), Column("seq", Int, primary_key=True),
          Column("gateway", Key, nullable=False), Column("ts", Key, nullable=False),
          Column("received_at", Key, nullable=False), Column("hash", Text, nullable=False),
          Column("prev", Text, nullable=False), Column("payload", LargeBinary, nullable=False)),
        t("readings",
          Column("device", Key, nullable=False), Column("seq", Int, nullable=False),
          Column("quantity", Key, nullable=False), Column("ts", Key, nullable=False),
          Column("value", Real), Column("unit", Text, nullable=False), Column("raw", Text),
          Column("quality", Text, nullable=False), Column("uncorrected", Real),
          Column("cal_status", Text), Column("certificate", Text),
          Column("certificate_version", Integer), Column("cal_check", Text),
          PrimaryKeyConstraint("device", "quantity", "seq"),
          Index("readings_by_time", "device", "quantity", "ts")),
        t("late_duplicates",
          Column("device", Key, nullable=False), Column("seq", Int, nullable=False),
          Column("received_at", Key, nullable=False), Column("newest_seq", Int, nullable=False)),
        t("quarantine", pk("id", RowId),
          Column("received_at", Key, nullable=False), Column("topic", Text, nullable=False),
          Column("reason", Text, nullable=False), Column("detail", Text, nullable=False),
          Column("payload", LargeBinary, nullable=False), sqlite_autoincrement=True),
        t("events",
          Column("gateway", Key, primary_key=True), Column("id", Int, primary_key=True),
          Column("device", Key, nullable=False), Column("ts", Key, nullable=False),
          Column("received_at", Key, nullable=False), Column("event", Text, nullable=False),
          Column("reason", Text), Column("first_seq", Int), Column("last_seq", Int),
          Column("count", Int), Column("first_ts", Key), Column("last_ts", Key),
          Column("counter", Text), Column("hash", Text, nullable=False),
          Column("payload", LargeBinary, nullable=False),
          Index("events_by_device", "device", "first_seq")),
        t("counters", pk("name", Key), Column("value", Int, nullable=False)),
        t("device_records",
          Column("device", Key, primary_key=True), Column("version", Integer, primary_key=True),
          Column("spec", Text, nullable=False), Column("recorded_at", Key, nullable=False),
          Column("recorded_by", Text, nullable=False), Column("reason", Text, nullable=False)),
        t("replacements", pk("id", RowId),
          Column("device", Key, nullable=False), Column("at", Key, nullable=False),
          Column("body", Text, nullable=False), sqlite_autoincrement=True),
        t("gateway_keys",
          Column("gateway", Key, nullable=False), Column("kid", Key, primary_key=True),
          Column("alg", Text, nullable=False), Column("material", LargeBinary, nullable=False),
          Column("valid_from", Key, nullable=False)),
        t("key_retirements",
          Column("kid", Key, ForeignKey("gateway_keys.kid"), primary_key=True),
          Column("retired_at", Key, nullable=False)),
        t("certificates",
          Column("certificate_id", Key, primary_key=True),
          Column("version", Integer, primary_key=True), Column("device", Key, nullable=False),
          Column("body", Text, nullable=False), Column("recorded_at", Key, nullable=False),
          Column("recorded_by", Text, nullable=False),
          Index("certificates_by_device", "device")),
        t("audit_log", pk("id", RowId),
          Column("at", Key, nullable=False), Column("actor", Text, nullable=False),
          Column("role", Text, nullable=False), Column("action", Text, nullable=False),
          Column("entity", Text, nullable=False), Column("entity_id", Key, nullable=False),
          Column("before", Text), Column("after", Text), sqlite_autoincrement=True),
        t("batch_records",
          Column("batch_id", Key, primary_key=True), Column("version", Integer, primary_key=True),
          Column("supersedes", Integer), Column("product_id", Key, nullable=False),
          Column("line", Key, nullable=False), Column("start", Key, nullable=False),
          Column("end", Key, nullable=False), Column("body", Text, nullable=False),
          Column("digest", Text, nullable=False), Column("recorded_at", Key, nullable=False),
          Column("recorded_by", Text, nullable=False), Column("source", Text, nullable=False),
          Column("reason", Text, nullable=False),
          Index("batch_records_by_line", "line", "start"),
          Index("batch_records_by_start", "start")),
        t("topology_versions",
          Column("version", Integer, primary_key=True, nullable=loose, autoincrement=False),
          Column("supersedes", Integer), Column("document", Text, nullable=False),
          Column("source_text", Text, nullable=False), Column("source", Text, nullable=False),
          Column("digest", Text, nullable=False), Column("recorded_at", Key, nullable=False),
          Column("recorded_by", Text, nullable=False)),
        t("factor_records",
          Column("name", Key, primary_key=True), Column("version", Integer, primary_key=True),
          Column("supersedes", Text), Column("body", Text, nullable=False),
          Column("recorded_at", Key, nullable=False), Column("recorded_by", Text, nullable=False)),
        t("pact_footprints",
          Column("id", Key, primary_key=True), Column("version", Integer, primary_key=True),
          Column("scope", Key, nullable=False), Column("digest", Text, nullable=False),
          Column("status", Text, nullable=False), Column("body", Text, nullable=False),
          Column("recorded_at", Key, nullable=False),
          Index("pact_footprints_scope", "scope")),
    ]  # fmt: skip
    inverse = {v: k for k, v in names.items()}
    return {inverse.get(x.name, x.name): x for x in out}


TABLES = tuple(tables(MetaData()))

VIEW = "current_batches"
VIEW_SQL = (
    "SELECT * FROM batch_records r "
    "WHERE version = (SELECT max(version) FROM batch_records WHERE batch_id = r.batch_id)"
)

# (trigger, table, event, message): 0.1.0's triggers, by its names (not every table had them).
TRIGGERS: tuple[tuple[str, str, ddl.Event, str], ...] = (
    ("device_records_append_only", "device_records", "UPDATE", "device records are append-only"),
    ("certificates_append_only", "certificates", "UPDATE",
     "certificates are append-only: add a new version"),
    ("audit_append_only", "audit_log", "UPDATE", "the audit log is append-only"),
    ("audit_no_delete", "audit_log", "DELETE", "the audit log is append-only"),
    ("batch_records_no_update", "batch_records", "UPDATE",
     "batch records are append-only: record a new version"),
    ("batch_records_no_delete", "batch_records", "DELETE",
     "batch records are append-only: record a new version"),
    ("topology_no_update", "topology_versions", "UPDATE",
     "topology versions are append-only: set a new version"),
    ("topology_no_delete", "topology_versions", "DELETE",
     "topology versions are append-only: set a new version"),
    ("factor_records_no_update", "factor_records", "UPDATE",
     "factor records are append-only: add a new version"),
    ("factor_records_no_delete", "factor_records", "DELETE",
     "factor records are append-only: add a new version"),
    ("pact_footprints_no_update", "pact_footprints", "UPDATE",
     "published footprints are append-only: publish a new version"),
    ("pact_footprints_no_delete", "pact_footprints", "DELETE",
     "published footprints are append-only: publish a new version"),
)  # fmt: skip


def triggers() -> list[ddl.Trigger]:
    """0.1.0's triggers, as collector.db.ddl writes them for either engine."""
    return [ddl.Trigger(n, t, e, m) for n, t, e, m in TRIGGERS]


def create(conn: Connection, *, missing_only: bool = False) -> list[str]:
    """Make release 0.1.0's schema, or (missing_only) what of it a database lacks: 0.1.0 made
    each store's tables when that store was first opened, so a database it wrote may lack some
    (pact_footprints, when PACT was never configured). Returns the tables it made."""
    dialect = conn.dialect.name
    before = set(inspect(conn).get_table_names())
    metadata = MetaData()
    tables(metadata, dialect=conn.dialect.name)
    metadata.create_all(conn, checkfirst=missing_only)
    for stmt in ddl.create_function(dialect):
        conn.exec_driver_sql(stmt)
    have = {(i.table, i.name) for i in ddl.installed(conn)}
    for t in triggers():
        if (t.table, t.name) not in have:
            conn.exec_driver_sql(ddl.create_trigger(t, dialect))
    if VIEW not in inspect(conn).get_view_names():
        conn.exec_driver_sql(f"CREATE VIEW {VIEW} AS {VIEW_SQL}")
    return sorted(set(TABLES) - before)


def drop(conn: Connection) -> None:
    dialect = conn.dialect.name
    conn.exec_driver_sql(f"DROP VIEW IF EXISTS {VIEW}")
    for t in triggers():
        conn.exec_driver_sql(ddl.drop_trigger(t, dialect))
    metadata = MetaData()
    tables(metadata, dialect=conn.dialect.name)
    metadata.drop_all(conn)
    for stmt in ddl.drop_function(dialect):
        conn.exec_driver_sql(stmt)


def problems(conn: Connection) -> list[str]:
    """How the database differs from release 0.1.0's schema (tables, columns, types, keys,
    indexes, triggers, the view); empty when it is that schema."""
    metadata = MetaData()
    tables(metadata, dialect=conn.dialect.name)
    out = differences(conn, metadata)
    have = {(i.table, i.name): i for i in ddl.installed(conn)}
    for t in triggers():
        got = have.get((t.table, t.name))
        if got is None or got.event != t.event or got.message != t.message:
            out.append(f"trigger {t.name} on {t.table} is not release 0.1.0's")
    if VIEW not in inspect(conn).get_view_names():
        out.append(f"view {VIEW} is missing")
    return out
