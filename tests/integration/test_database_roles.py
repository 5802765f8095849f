"""The PostgreSQL roles docs/database.md gives, run as written on a real server: the
application role can run the collector but cannot change the ledger, even with the triggers
out of the way, and the grants cover every table of the schema."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from collector.db.engine import close_database, database
from collector.db.migrate import check, open_database, upgrade
from collector.db.schema import APPEND_ONLY, metadata
from tests.databases import PG_ADMIN_URL

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "database.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)


def statements(block: str) -> list[str]:
    return [s.strip() for s in block.split(";") if s.strip()]


def connect(dbname: str) -> psycopg.Connection[tuple[object, ...]]:
    """The test server's superuser (METERTRACE_TEST_PG_URL), autocommit, in dbname."""
    u = make_url(PG_ADMIN_URL)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname=dbname,
        autocommit=True,
    )


@dataclass
class Setup:
    owner_url: str
    app_url: str


@pytest.fixture
def documented_roles() -> Iterator[Setup]:
    """The doc's three blocks, with names of this test's own (roles are per server)."""
    uid = uuid.uuid4().hex[:8]
    owner, app, dbname = f"mt_owner_{uid}", f"mt_app_{uid}", f"mt_roles_{uid}"

    def named(block: str) -> str:
        block = block.replace("metertrace_owner", owner).replace("metertrace_app", app)
        return re.sub(r"\bDATABASE metertrace\b", f"DATABASE {dbname}", block)

    first, in_db, grants = (named(b) for b in sql_blocks())
    base = make_url(PG_ADMIN_URL)
    url = base.set(database=dbname)
    setup = Setup(
        url.set(username=owner).render_as_string(hide_password=False),
        url.set(username=app).render_as_string(hide_password=False),
    )
    admin_db = base.database or "postgres"
    with connect(admin_db) as conn:
        for s in statements(first):
            conn.execute(s)
    try:
        with connect(dbname) as conn:
            for s in statements(in_db):
                conn.execute(s)
        upgrade(setup.owner_url)  # the migrations, as the owner
        with database(setup.owner_url).write() as c:
            for s in statements(grants):
                c.exec_driver_sql(s)
        yield setup
    finally:
        close_database(setup.owner_url)
        close_database(setup.app_url)
        with connect(admin_db) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{app}"')
            conn.execute(f'DROP ROLE IF EXISTS "{owner}"')


def test_the_grants_name_every_table_and_only_derived_tables_may_change() -> None:
    granted: dict[str, set[str]] = {}
    for s in statements(sql_blocks()[2]):
        m = re.match(r"GRANT (.+?) ON (?!SEQUENCE)(.+?) TO ", " ".join(s.split()))
        if m:
            for table in m.group(2).split(","):
                granted.setdefault(table.strip(), set()).update(
                    p.strip() for p in m.group(1).split(",")
                )
    assert set(granted) == set(metadata.tables) | {"alembic_version"}
    for table, privileges in granted.items():
        assert not privileges & {"DELETE", "TRUNCATE", "TRIGGER", "REFERENCES", "ALL"}, table
        if table in APPEND_ONLY:
            assert privileges == {"SELECT", "INSERT"}, table
    assert granted["counters"] == {"SELECT", "INSERT", "UPDATE"}
    assert granted["counter_rollups"] == {"SELECT", "INSERT", "UPDATE"}


def test_the_application_role_runs_the_collector_but_cannot_change_the_ledger(
    documented_roles: Setup,
) -> None:
    app = open_database(documented_roles.app_url)  # reads the revision, creates nothing
    assert check(documented_roles.app_url).ok
    with app.write() as conn:
        conn.execute(
            text(
                "INSERT INTO messages VALUES ('d', 1, 'g', 1773100800000001, "
                "'2026-03-10T00:00:00.000000Z', 'h', 'p', '\\x00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO quarantine (received_at, topic, reason, detail, payload) "
                "VALUES ('2026-03-10T00:00:00.000000Z', 't', 'r', 'd', '\\x00')"
            )
        )
        for _ in range(2):
            conn.execute(
                text(
                    "INSERT INTO counters VALUES ('duplicates', 1) ON CONFLICT (name) "
                    "DO UPDATE SET value = counters.value + excluded.value"
                )
            )
    refused = {
        "UPDATE messages SET gateway = 'x'": "permission denied",
        "DELETE FROM messages": "permission denied",
        "TRUNCATE messages": "permission denied",
        "DELETE FROM audit_log": "permission denied",
        "DELETE FROM counters": "permission denied",
        "DROP TRIGGER messages_no_delete ON messages": "must be owner",
        "ALTER TABLE messages DISABLE TRIGGER ALL": "must be owner",
        "CREATE TABLE scratch (a int)": "permission denied for schema public",
    }
    for statement, why in refused.items():
        with pytest.raises(DBAPIError, match=why), app.write() as conn:
            conn.execute(text(statement))
    with app.read() as conn:
        assert conn.execute(text("SELECT value FROM counters")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM messages")).scalar() == 1
