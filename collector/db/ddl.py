"""The statements that differ between SQLite and PostgreSQL, each written once for both.

- Append-only triggers: BEFORE UPDATE and BEFORE DELETE (and, on PostgreSQL, BEFORE TRUNCATE)
  raise the table's refusal message. SQLite: `RAISE(ABORT, ...)` in the trigger body;
  PostgreSQL: one PL/pgSQL function, `metertrace_refuse_change`, that every trigger calls with
  its message. Both surface as an integrity error (SQLite's SQLITE_CONSTRAINT, PostgreSQL's
  restrict_violation, SQLSTATE 23001), so a store sees the same exception on either engine.
- Times: the exact conversion between the wire text `YYYY-MM-DDTHH:MM:SS.ffffffZ`
  (metertrace.timeutil.to_wire) and integer microseconds since the Unix epoch, in integer
  arithmetic only (julianday() and float epochs would round).
- No `%` in PostgreSQL's statements: they run as they are (exec_driver_sql), and psycopg would
  read a `%` as a placeholder.
- Reading back what is installed, so `metertrace collector db check` can say which trigger is
  missing, disabled or says something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, text

Event = Literal["UPDATE", "DELETE", "TRUNCATE"]
REFUSE_FUNCTION = "metertrace_refuse_change"


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    table: str
    event: Event
    message: str


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def append_only(table: str, message: str, dialect: str) -> list[Trigger]:
    """The triggers that make `table` append-only on `dialect`."""
    events: list[Event] = ["UPDATE", "DELETE"]
    if dialect == "postgresql":  # row triggers do not see TRUNCATE; SQLite has none
        events.append("TRUNCATE")
    return [Trigger(f"{table}_no_{e.lower()}", table, e, message) for e in events]


def create_function(dialect: str) -> list[str]:
    """What the triggers call: nothing on SQLite, the refusing function on PostgreSQL."""
    if dialect != "postgresql":
        return []
    return [
        f"CREATE OR REPLACE FUNCTION {REFUSE_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "    RAISE EXCEPTION USING MESSAGE = TG_ARGV[0], ERRCODE = 'restrict_violation';\n"
        "END\n"
        "$$"
    ]


def drop_function(dialect: str) -> list[str]:
    return [f"DROP FUNCTION IF EXISTS {REFUSE_FUNCTION}()"] if dialect == "postgresql" else []


def create_trigger(t: Trigger, dialect: str) -> str:
    if dialect == "postgresql":
        each = "STATEMENT" if t.event == "TRUNCATE" else "ROW"
        return (
            f"CREATE TRIGGER {t.name} BEFORE {t.event} ON {t.table} FOR EACH {each} "
            f"EXECUTE FUNCTION {REFUSE_FUNCTION}({_literal(t.message)})"
        )
    if t.event == "TRUNCATE":
        raise ValueError("SQLite has no TRUNCATE")
    return (
        f"CREATE TRIGGER {t.name} BEFORE {t.event} ON {t.table}\n"
        f"BEGIN SELECT RAISE(ABORT, {_literal(t.message)}); END"
    )


def drop_trigger(t: Trigger, dialect: str) -> str:
    on = f" ON {t.table}" if dialect == "postgresql" else ""
    return f"DROP TRIGGER IF EXISTS {t.name}{on}"


# --- what is installed ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Installed:
    name: str
    table: str
    event: str | None
    message: str | None
    enabled: bool


_EVENT = re.compile(r"\bBEFORE\s+(UPDATE|DELETE|TRUNCATE|INSERT)\b", re.IGNORECASE)
_SQLITE_MESSAGE = re.compile(r"RAISE\s*\(\s*ABORT\s*,\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_PG_MESSAGE = re.compile(rf"{REFUSE_FUNCTION}\('((?:[^']|'')*)'\)")


def installed(conn: Connection) -> list[Installed]:
    """Every trigger on the database's tables, with its event and refusal message (if any)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        rows = conn.execute(
            text(
                "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled <> 'D' "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE NOT t.tgisinternal AND n.nspname = current_schema()"
            )
        ).all()
        pattern = _PG_MESSAGE
    else:
        rows = conn.execute(
            text("SELECT name, tbl_name, sql, 1 FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        pattern = _SQLITE_MESSAGE
    out = []
    for name, table, sql, enabled in rows:
        event, message = _EVENT.search(sql or ""), pattern.search(sql or "")
        out.append(
            Installed(
                name,
                table,
                event.group(1).upper() if event else None,
                message.group(1).replace("''", "'") if message else None,
                bool(enabled),
            )
        )
    return out


def append_only_problems(conn: Connection, expected: Mapping[str, str]) -> list[str]:
    """What is wrong with the append-only triggers of `expected` (table -> message): each
    missing, disabled, or raising another message, as a sentence; empty when all hold."""
    have = {(i.table, i.name): i for i in installed(conn)}
    problems = []
    for table, message in expected.items():
        for t in append_only(table, message, conn.dialect.name):
            got = have.get((table, t.name))
            if got is None:
                problems.append(f"{table}: trigger {t.name} (refuses {t.event}) is missing")
            elif not got.enabled:
                problems.append(f"{table}: trigger {t.name} is disabled")
            elif got.event != t.event or got.message != message:
                problems.append(
                    f"{table}: trigger {t.name} is not the append-only trigger "
                    f"(BEFORE {got.event}, message {got.message!r})"
                )
    return problems


# --- wire times <-> microseconds -------------------------------------------------------------
_WIRE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]." + (
    "[0-9]" * 6
) + "Z"  # fmt: skip
_WIRE_REGEX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"


def is_wire_time(column: str, dialect: str) -> str:
    """A condition true where `column` holds a time exactly as to_wire writes it."""
    if dialect == "postgresql":
        return f"({column} ~ '{_WIRE_REGEX}')"
    return f"({column} GLOB '{_WIRE_GLOB}')"


def wire_to_micros(column: str, dialect: str) -> str:
    """Whole seconds of the first 19 characters (UTC), times 10^6, plus the 6 digits after
    the point: integer arithmetic throughout, exact for every wire time."""
    if dialect == "postgresql":
        seconds = f"CAST(EXTRACT(EPOCH FROM CAST(substr({column}, 1, 19) AS TIMESTAMP)) AS BIGINT)"
    else:
        seconds = f"CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER)"
    return f"({seconds} * 1000000 + CAST(substr({column}, 21, 6) AS INTEGER))"


def micros_to_wire(column: str, dialect: str) -> str:
    """The inverse, for a downgrade: the wire text of a time in microseconds (from 1970 on)."""
    if dialect == "postgresql":
        date = (
            f"to_char(to_timestamp({column} / 1000000) AT TIME ZONE 'UTC', "
            "'YYYY-MM-DD\"T\"HH24:MI:SS')"
        )
        frac = f"lpad(CAST(mod({column}, 1000000) AS TEXT), 6, '0')"
    else:
        date = f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000000, 'unixepoch')"
        frac = f"printf('%06d', {column} % 1000000)"
    return f"({date} || '.' || {frac} || 'Z')"
