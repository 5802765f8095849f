"""Migrations on real databases: release 0.1.0's own file upgraded with nothing lost, the
append-only triggers after it, fresh databases at head on both engines, the refusals of
open_database and `collector serve`, and `db copy` from SQLite to PostgreSQL, verified.

tests/fixtures/collector-0.1.0.db was written by release 0.1.0's code (make_release_db.py).
"""

from __future__ import annotations

import io
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, func, select, text, update

from collector.db import ddl
from collector.db.copy import CopyError, copy_database, verify_copy
from collector.db.engine import database, sqlite_url
from collector.db.migrate import (
    SchemaError,
    UpgradeFailed,
    alembic_config,
    check,
    current,
    head,
    open_database,
    upgrade,
)
from collector.db.migrations import release_0_1_0
from collector.db.schema import (
    APPEND_ONLY,
    audit_log,
    counter_rollups,
    events,
    late_duplicates,
    messages,
    readings,
)
from collector.db.times import to_micros
from collector.ledger.chain import Link, verify_chain
from metertrace.cli import main
from metertrace.timeutil import parse_utc
from tests.append_only import assert_refused
from tests.databases import Databases

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "collector-0.1.0.db"
TIMED = ("messages", "readings")
UPGRADE_HINT = "metertrace collector db upgrade -c collector.yaml"


# --- the release's database, as rows -----------------------------------------------------------
def release_rows(path: Path = FIXTURE) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of a 0.1.0 file, read with sqlite3 (not through our code)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    out = {}
    for name in release_0_1_0.TABLES:
        out[name] = [dict(r) for r in db.execute(f'SELECT * FROM "{name}"')]
    db.close()
    return out


def as_head(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A 0.1.0 row as the head schema holds it: ts in microseconds."""
    if table in TIMED:
        return {**row, "ts": to_micros(parse_utc(row["ts"]))}
    return row


def rows_of(url: str, table: str) -> list[dict[str, Any]]:
    t = release_0_1_0.tables(MetaData())[table]
    with database(url).read() as conn:
        found = conn.execute(select(t).order_by(*list(t.columns)[:3])).mappings().all()
    return [{k: bytes(v) if isinstance(v, memoryview) else v for k, v in r.items()} for r in found]


def key(row: dict[str, Any]) -> tuple[str, ...]:
    """A total order on rows of one table (values of several types and NULLs included)."""
    return tuple(repr(v) for v in row.values())


@pytest.fixture
def release_db(databases: Databases, tmp_path: Path) -> str:
    """A database holding the fixture's rows as release 0.1.0 left them: on SQLite the file
    itself (no revision stamp), on PostgreSQL revision 0001 filled with the same rows."""
    if databases.engine == "sqlite":
        path = tmp_path / "release.db"
        shutil.copy(FIXTURE, path)
        return sqlite_url(path)
    url = databases.new("release")
    cfg = alembic_config()
    db = database(url)
    with db.write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    tables = release_0_1_0.tables(MetaData())
    with db.write() as conn:
        for name, rows in release_rows().items():
            if rows:
                conn.execute(tables[name].insert(), rows)
    return url


def chain_report(url: str, device: str) -> tuple[str, bool]:
    m, e, ld = messages.c, events.c, late_duplicates.c
    with database(url).read() as conn:
        links = [
            Link(r.seq, r.hash, r.prev, parse_utc("1970-01-01T00:00:00Z"))
            for r in conn.execute(select(m.seq, m.hash, m.prev).where(m.device == device))
        ]
        losses = conn.execute(
            select(e.first_seq, e.last_seq).where(e.device == device, e.first_seq.is_not(None))
        ).all()
        late = conn.execute(select(ld.seq).where(ld.device == device)).scalars().all()
    r = verify_chain(device, links, losses=[(a, b) for a, b in losses], replays=late)
    return r.summary(), r.intact


# --- upgrading release 0.1.0 ---------------------------------------------------------------------
def test_upgrade_keeps_every_row_of_release_0_1_0(release_db: str) -> None:
    before = release_rows()
    assert len(before["messages"]) > 90 and len(before["audit_log"]) >= 8
    upgrade(release_db)
    assert current(release_db).at_head
    for table, rows in before.items():
        after = sorted(rows_of(release_db, table), key=key)
        want = sorted((as_head(table, r) for r in rows), key=key)
        assert after == want, table  # every column of every row, ts as the same instant
    # the conversion is exact to the microsecond, odd microseconds included
    got = {(r["device"], r["seq"]): r["ts"] for r in rows_of(release_db, "messages")}
    for r in before["messages"]:
        assert got[(r["device"], r["seq"])] == to_micros(parse_utc(r["ts"])), r["ts"]
    assert any(r["ts"] % 1_000_000 not in (0,) for r in rows_of(release_db, "readings"))


def test_every_chain_reads_the_same_after_the_upgrade(release_db: str) -> None:
    devices = sorted({r["device"] for r in release_rows()["messages"]})
    assert devices == ["e-a", "e-s"]
    upgrade(release_db)
    ea, intact = chain_report(release_db, "e-a")
    assert intact and "explained gap seq 20..22" in ea and "replayed seq 3" in ea
    assert chain_report(release_db, "e-s") == ("e-s: 49 messages, chain intact", True)


def test_after_the_upgrade_the_ledger_refuses_update_and_delete(release_db: str) -> None:
    upgrade(release_db)
    db = database(release_db)
    for table, column in ((messages, "gateway"), (readings, "unit"), (events, "event"),
                          (audit_log, "actor")):  # fmt: skip
        assert_refused(
            db,
            update(table).values({column: "x"}),
            table.delete(),
            match=re.escape(APPEND_ONLY[table.name]),
        )
    if db.dialect == "postgresql":
        assert_refused(db, text("TRUNCATE messages"), match="append-only")
    assert len(rows_of(release_db, "messages")) == len(release_rows()["messages"])
    with db.write() as conn:  # the running totals are not ledger rows: they change
        conn.execute(text("UPDATE counters SET value = value + 1"))


def test_an_upgraded_release_database_passes_check(release_db: str) -> None:
    report = upgrade(release_db)
    assert report.before.kind == ("release-0.1.0" if "sqlite" in release_db else "revision")
    result = check(release_db)
    assert result.ok, (result.differences, result.triggers)


def test_downgrade_gives_release_0_1_0_back_and_upgrade_again_holds(release_db: str) -> None:
    upgrade(release_db)
    cfg = alembic_config()
    db = database(release_db)
    with db.write() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    with db.read() as conn:
        assert release_0_1_0.problems(conn) == []
    for table, rows in release_rows().items():
        assert sorted(rows_of(release_db, table), key=key) == sorted(rows, key=key), table
    upgrade(release_db)
    assert check(release_db).ok


def sqlite_shape(path: Path) -> dict[str, Any]:
    """Tables (columns, keys, foreign keys), indexes, triggers and views, as SQLite has them."""
    db = sqlite3.connect(path)
    out: dict[str, Any] = {}
    for kind, name, table, sql in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"):
        if table == "alembic_version":
            continue
        if kind == "table" and not name.startswith("sqlite_"):
            out[name] = (
                db.execute(f"PRAGMA table_info('{name}')").fetchall(),
                db.execute(f"PRAGMA foreign_key_list('{name}')").fetchall(),
                sorted(r[1] for r in db.execute(f"PRAGMA index_list('{name}')")),
                "AUTOINCREMENT" in sql,
            )
        elif kind == "index":
            out[name] = db.execute(f"PRAGMA index_info('{name}')").fetchall()
        elif kind in ("trigger", "view"):
            out[name] = " ".join(sql.replace("IF NOT EXISTS ", "").split())
    db.close()
    return out


def test_revision_0001_on_sqlite_is_what_release_0_1_0_made(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "r.db")
    cfg = alembic_config()
    with database(url).write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    assert sqlite_shape(tmp_path / "r.db") == sqlite_shape(FIXTURE)


def test_a_malformed_time_stops_the_upgrade_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE messages SET ts = '2026-03-10 00:00:00' WHERE seq = 7 AND device = 'e-a'"
        )
    with pytest.raises(
        UpgradeFailed, match=r"messages: 1 row\(s\) .*'2026-03-10 00:00:00'.*nothing"
    ):
        upgrade(sqlite_url(path))
    assert current(sqlite_url(path)).kind == "release-0.1.0"
    assert sqlite_shape(path) == sqlite_shape(FIXTURE)


def test_a_release_database_without_its_pact_table_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "nopact.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as db:  # PACT never configured: 0.1.0 never made the table
        db.execute("DROP TABLE pact_footprints")
    done = upgrade(sqlite_url(path))
    assert done.created == ["pact_footprints"] and check(sqlite_url(path)).ok


def test_tables_that_are_not_release_0_1_0s_are_not_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    shutil.copy(FIXTURE, path)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE gateways DROP COLUMN key_id")
    with pytest.raises(SchemaError, match=r"not their schema.*gateways\.key_id is missing"):
        upgrade(sqlite_url(path))
    assert current(sqlite_url(path)).kind == "release-0.1.0"


# --- fresh databases, open_database --------------------------------------------------------------
def test_a_fresh_database_is_created_at_head_and_passes_check(db_url: str) -> None:
    assert current(db_url).kind == "empty"
    open_database(db_url)
    result = check(db_url)
    assert result.ok and result.state.revision == head(), (result.differences, result.triggers)
    assert open_database(db_url, create=False) is database(db_url)


def test_collectors_starting_together_on_one_empty_database_all_open_it(db_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        opened = list(pool.map(lambda _: open_database(db_url), range(4)))
    assert all(db is opened[0] for db in opened) and check(db_url).ok


def test_check_names_a_dropped_trigger(db_url: str) -> None:
    db = open_database(db_url)
    with db.write() as conn:
        t = ddl.append_only("readings", APPEND_ONLY["readings"], db.dialect)[1]
        conn.exec_driver_sql(ddl.drop_trigger(t, db.dialect))
    result = check(db_url)
    assert not result.ok and result.differences == []
    assert result.triggers == ["readings: trigger readings_no_delete (refuses DELETE) is missing"]


def test_open_database_refuses_release_0_1_0_until_it_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "release.db"
    shutil.copy(FIXTURE, path)
    url = sqlite_url(path)
    with pytest.raises(SchemaError) as refused:
        open_database(url)
    message = str(refused.value)
    assert "release 0.1.0's schema (no revision stamp)" in message
    assert f"runs on revision {head()}" in message and UPGRADE_HINT in message
    assert "Back the database up" in message
    assert sqlite_shape(path) == sqlite_shape(FIXTURE)  # refused, untouched
    upgrade(url)
    assert open_database(url) is database(url)


def test_open_database_refuses_an_older_revision(db_url: str) -> None:
    cfg = alembic_config()
    with database(db_url).write() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    with pytest.raises(SchemaError, match=rf"revision 0001; .*{re.escape(UPGRADE_HINT)}"):
        open_database(db_url)


def test_open_database_refuses_a_revision_it_does_not_know(db_url: str) -> None:
    db = open_database(db_url)
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(SchemaError) as refused:
        open_database(db_url)
    message = str(refused.value)
    assert "revision 0999" in message and f"knows revisions up to {head()}" in message
    assert "upgrade the collector" in message
    with pytest.raises(SchemaError, match="0999"):
        upgrade(db_url)  # nor does it upgrade what it does not know


def test_collector_serve_on_a_release_database_exits_2_with_the_message(tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "collector.db")
    (tmp_path / "collector.yaml").write_text(
        "database: {path: collector.db}\nsigning: {key_file: collector.pem}\n"
        "mqtt: {host: 127.0.0.1, port: 1}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "metertrace.cli", "collector", "serve", "-c", "collector.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert "metertrace: error:" in r.stderr and "release 0.1.0" in r.stderr
    assert UPGRADE_HINT in r.stderr and "Traceback" not in r.stderr


def test_the_db_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(FIXTURE, tmp_path / "collector.db")
    cfg = tmp_path / "collector.yaml"
    cfg.write_text("database: {path: collector.db}\n")

    def run(*args: str) -> tuple[int, str]:
        try:
            main(["collector", "db", *args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out + out.err

    code, out = run("current", "-c", str(cfg))
    assert code == 0 and "release 0.1.0's schema" in out
    code, out = run("check", "-c", str(cfg))
    assert code == 1 and f"not revision {head()}" in out
    code, out = run("upgrade", "-c", str(cfg))
    assert code == 0 and f"to revision {head()} (head)" in out
    code, out = run("upgrade", "--url", sqlite_url(tmp_path / "collector.db"))
    assert code == 0 and "nothing to do" in out
    code, out = run("check", "-c", str(cfg))
    assert code == 0 and "schema and append-only triggers as this release defines them" in out


# --- copying SQLite -> PostgreSQL ----------------------------------------------------------------
@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases("postgresql", tmp_path, "copy")
    yield dbs
    dbs.cleanup()


@pytest.fixture
def upgraded_release(tmp_path: Path) -> str:
    path = tmp_path / "source.db"
    shutil.copy(FIXTURE, path)
    upgrade(sqlite_url(path))
    return sqlite_url(path)


def test_copy_to_postgresql_keeps_every_row_and_chain(
    upgraded_release: str, postgres: Databases
) -> None:
    target = postgres.new("target")
    progress = io.StringIO()
    report = copy_database(upgraded_release, target, chunk=7, stream=progress)
    assert report.ok, report.lines()
    assert "copying messages: 95/95 rows (100 %)" in progress.getvalue()
    counts = {t.table: t.target_rows for t in report.tables}
    derived = counts.pop("counter_rollups")  # derived from the readings (revision 0003)
    assert counts == {t: len(rows) for t, rows in release_rows().items()}
    with database(upgraded_release).read() as conn:
        assert derived == conn.execute(select(func.count()).select_from(counter_rollups)).scalar()
    assert derived > 0
    assert [c.device for c in report.chains] == ["e-a", "e-s"]
    assert all(c.ok and c.intact and not c.bad_payloads for c in report.chains)
    assert check(target).ok
    for table in release_0_1_0.TABLES:
        assert sorted(rows_of(target, table), key=key) == sorted(
            rows_of(upgraded_release, table), key=key
        ), table
    with database(target).write() as conn:  # the id sequences were moved past the copied ids
        new_id = conn.execute(
            audit_log.insert().values(
                at="2027-01-01T00:00:00.000000Z",
                actor="a",
                role="admin",
                action="x",
                entity="y",
                entity_id="z",
            )
        ).inserted_primary_key
    assert new_id is not None and new_id[0] == len(release_rows()["audit_log"]) + 1


def test_copy_refuses_a_full_target_and_an_old_source(
    upgraded_release: str, postgres: Databases, tmp_path: Path
) -> None:
    target = postgres.new("full")
    copy_database(upgraded_release, target, stream=io.StringIO())
    with pytest.raises(CopyError, match="is not empty"):
        copy_database(upgraded_release, target, stream=io.StringIO())
    shutil.copy(FIXTURE, tmp_path / "old.db")
    with pytest.raises(CopyError, match=r"release 0\.1\.0's schema .*upgrade it first"):
        copy_database(sqlite_url(tmp_path / "old.db"), postgres.new("other"))


def test_verification_finds_a_row_removed_behind_the_triggers_back(
    upgraded_release: str, postgres: Databases
) -> None:
    target = postgres.new("tampered")
    assert copy_database(upgraded_release, target, stream=io.StringIO()).ok
    with database(target).write() as conn:  # the owner can drop the triggers: the check sees it
        conn.execute(text("DROP TRIGGER messages_no_delete ON messages"))
        conn.execute(text("DROP TRIGGER readings_no_update ON readings"))
        conn.execute(text("DELETE FROM messages WHERE device = 'e-s' AND seq = 10"))
        conn.execute(text("UPDATE readings SET value = value + 1 WHERE seq = 11"))
    report = verify_copy(upgraded_release, target)
    assert not report.ok
    by_table = {t.table: t for t in report.tables}
    assert (
        by_table["messages"].line() == "messages: MISMATCH 95 rows in the source, 94 in the target"
    )
    assert "content differs" in by_table["readings"].line()
    es = next(c for c in report.chains if c.device == "e-s")
    assert not es.ok and not es.intact and "gap seq 10..10" in es.target
    assert report.lines()[-1] == "verification FAILED: 3 mismatch(es)"


def test_db_copy_command_exits_non_zero_on_a_refusal(
    upgraded_release: str, postgres: Databases, capsys: pytest.CaptureFixture[str]
) -> None:
    target = postgres.new("cli")
    main(["collector", "db", "copy", "--from", upgraded_release, "--to", target])
    out = capsys.readouterr().out
    assert "verified: every table identical, every device's chain the same" in out
    with pytest.raises(SystemExit) as exited:
        main(["collector", "db", "copy", "--from", upgraded_release, "--to", target])
    assert exited.value.code == 2
    assert "is not empty" in capsys.readouterr().err


# --- the conversions, exact on both engines ------------------------------------------------
WIRE_TIMES = [
    "1970-01-01T00:00:00.000000Z",
    "1970-01-01T00:00:00.000001Z",
    "2000-02-29T23:59:59.999999Z",
    "2026-03-10T00:00:00.000001Z",
    "2026-12-31T23:59:59.500000Z",
    "2038-01-19T03:14:08.000000Z",
    "2100-03-01T12:00:00.123457Z",
]


def test_time_conversions_are_exact(db_url: str) -> None:
    db = database(db_url)
    with db.read() as conn:
        for wire in WIRE_TIMES:
            lit = f"'{wire}'"
            us = conn.exec_driver_sql(f"SELECT {ddl.wire_to_micros(lit, db.dialect)}").scalar()
            assert us == to_micros(parse_utc(wire)), wire
            back = conn.exec_driver_sql(f"SELECT {ddl.micros_to_wire(str(us), db.dialect)}")
            assert back.scalar() == wire
            ok = conn.exec_driver_sql(f"SELECT {ddl.is_wire_time(lit, db.dialect)}").scalar()
            assert ok in (True, 1)
        for bad in ("2026-03-10 00:00:00.000000Z", "2026-03-10T00:00:00Z", "x"):
            ok = conn.exec_driver_sql(f"SELECT {ddl.is_wire_time(repr(bad), db.dialect)}")
            assert ok.scalar() in (False, 0), bad
