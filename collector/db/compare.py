"""How a live database differs from a `MetaData`: alembic's autogenerate comparison, in words."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData


def differences(conn: Connection, metadata: MetaData) -> list[str]:
    """Tables, columns, types, nullability, indexes, foreign keys and unique constraints the
    database has other than `metadata` says; empty when they agree. (Triggers and views are
    not compared here: collector.db.ddl reads those.)"""
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    out = [describe(d) for d in compare_metadata(context, metadata)]
    if conn.dialect.name == "sqlite":
        out += _sqlite_autoincrement(conn, metadata)
    return out


def _sqlite_autoincrement(conn: Connection, metadata: MetaData) -> list[str]:
    """AUTOINCREMENT (ids never given twice) is a table option compare_metadata does not see."""
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
    sql: dict[str, str | None] = {str(n): s for n, s in rows}
    out = []
    for name, table in metadata.tables.items():
        want = bool(table.dialect_options["sqlite"]["autoincrement"])
        have = name in sql and "AUTOINCREMENT" in (sql[name] or "").upper()
        if name in sql and want != have:
            out.append(f"table {name} {'lacks' if want else 'has'} AUTOINCREMENT")
    return out


def describe(diff: Any) -> str:
    """One difference compare_metadata found."""
    if isinstance(diff, list):  # a column's changes come as a list of tuples
        return "; ".join(describe(d) for d in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return f"table {diff[1].name} {'is missing' if kind == 'add_table' else 'is not expected'}"
    if kind in ("add_column", "remove_column"):
        what = "is missing" if kind == "add_column" else "is not expected"
        return f"column {diff[2]}.{diff[3].name} {what}"
    if kind in ("add_index", "remove_index"):
        ix = diff[1]
        what = "is missing" if kind == "add_index" else "is not expected"
        cols = ", ".join(c.name for c in ix.columns)
        return f"index {ix.name} on {ix.table.name} ({cols}) {what}"
    if kind in ("add_fk", "remove_fk", "add_constraint", "remove_constraint"):
        c = diff[1]
        cols = ", ".join(col.name for col in c.columns)
        what = "is missing" if kind.startswith("add") else "is not expected"
        return f"{type(c).__name__} on {c.table.name} ({cols}) {what}"
    if kind == "modify_type":
        return f"column {diff[2]}.{diff[3]} is {diff[5]}, expected {diff[6]}"
    if kind == "modify_nullable":
        return f"column {diff[2]}.{diff[3]} should be {'NULL' if diff[6] else 'NOT NULL'}"
    return f"{kind}: {diff[1:]}"
