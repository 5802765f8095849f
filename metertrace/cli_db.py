"""`metertrace collector db ...`: the collector database's schema, and moving it to another one.

    upgrade   bring the database to this release's schema (back it up first)
    current   which revision it holds
    check     at this release's revision, with exactly its schema and append-only triggers?
    copy      copy a database into an empty one (e.g. SQLite -> PostgreSQL) and verify the copy
    rollups   compare the counter rollups with the raw readings (--check), or rebuild them

The database is the one collector.yaml names (-c) or a SQLAlchemy URL (--url). The collector
package is imported only when a command runs, so the agent install keeps its small footprint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .config import load_config


class DbCommandError(Exception):
    """A database command refused or failed; the message says why and what to do."""


def _url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url)
    from collector.config import CollectorConfig

    return load_config(args.config, CollectorConfig).database.resolved_url


def _display(url: str) -> str:
    from collector.db.engine import database

    return database(url).display_url


def cmd_upgrade(args: argparse.Namespace) -> None:
    from collector.db.migrate import SchemaError, upgrade

    url = _url(args)
    try:
        done = upgrade(url)
    except SchemaError as exc:
        raise DbCommandError(str(exc)) from None
    if done.before.at_head:
        print(f"{_display(url)} is at revision {done.revision} (head): nothing to do")
        return
    made = f"; created the tables 0.1.0 had not made yet: {', '.join(done.created)}"
    print(
        f"upgraded {_display(url)} from {done.before.describe()} to revision {done.revision} "
        f"(head){made if done.created else ''}"
    )


def cmd_current(args: argparse.Namespace) -> None:
    from collector.db.migrate import current

    url = _url(args)
    st = current(url)
    print(f"{_display(url)}: {st.describe()}; this release runs on revision {st.head}")


def cmd_check(args: argparse.Namespace) -> None:
    from collector.db.migrate import UPGRADE, check

    url = _url(args)
    report = check(url)
    st = report.state
    if not st.at_head:
        print(f"{_display(url)}: {st.describe()}, not revision {st.head}: run `{UPGRADE}`")
        raise SystemExit(1)
    for line in report.differences:
        print(f"schema: {line}")
    for line in report.triggers:
        print(f"trigger: {line}")
    if not report.ok:
        print(f"{_display(url)}: revision {st.revision}, but its schema differs from this "
              "release's (above)")  # fmt: skip
        raise SystemExit(1)
    print(f"{_display(url)}: revision {st.revision} (head), schema and append-only triggers as "
          "this release defines them")  # fmt: skip


def cmd_copy(args: argparse.Namespace) -> None:
    from collector.db.copy import CopyError, copy_database
    from collector.db.engine import DatabaseUrlError
    from collector.db.migrate import SchemaError

    try:
        report = copy_database(args.source, args.target, chunk=args.chunk, stream=sys.stderr)
    except (CopyError, SchemaError, DatabaseUrlError) as exc:
        raise DbCommandError(str(exc)) from None
    print(f"copied {_display(args.source)} -> {_display(args.target)}")
    for line in report.lines():
        print(f"  {line}")
    if not report.ok:
        raise SystemExit(1)


def cmd_rollups(args: argparse.Namespace) -> None:
    from collector.db.migrate import open_database
    from collector.ledger import rollup_store
    from collector.ledger.store import LedgerStore

    from .progress import Progress

    url = _url(args)
    db = open_database(url, create=False)
    meters = len(rollup_store.series(db))
    if args.rebuild:
        bar = Progress("rebuilding rollups", meters, unit="meter quantities")
        rows = rollup_store.rebuild(db, progress=lambda done, _total: bar.update(done))
        bar.finish(f"{rows} rollups written")
    bar = Progress("checking rollups", meters, unit="meter quantities")
    problems = list(rollup_store.check(db, progress=lambda done, _total: bar.update(done)))
    bar.finish(f"{len(problems)} difference(s)")
    for line in problems[:50]:
        print(f"rollups: {line}")
    if len(problems) > 50:
        print(f"rollups: ... and {len(problems) - 50} more")
    if problems:
        fix = "metertrace collector db rollups --rebuild"
        print(f"{_display(url)}: the rollups differ from the readings, and the figures read "
              f"them: run `{fix}` (as the database owner)")  # fmt: skip
        raise SystemExit(1)
    readings = LedgerStore(db).stats().readings
    print(f"{_display(url)}: the rollups agree with all {readings} readings")


def _target(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("-c", "--config", type=Path, help="collector.yaml: its database")
    where.add_argument("--url", help="a database URL: sqlite:///FILE, postgresql://user@host/db")


def add_parser(collector: Any) -> None:
    """`db` under the `collector` command."""
    db = collector.add_parser("db", help="the collector's database: schema revisions, copying")
    acts = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    up = acts.add_parser("upgrade", help="bring the database to this release's schema")
    _target(up)
    up.set_defaults(func=cmd_upgrade)
    cur = acts.add_parser("current", help="which schema revision the database holds")
    _target(cur)
    cur.set_defaults(func=cmd_current)
    chk = acts.add_parser(
        "check", help="is it at this release's revision, with its schema and triggers?"
    )
    _target(chk)
    chk.set_defaults(func=cmd_check)
    cp = acts.add_parser(
        "copy", help="copy a database into an empty one (e.g. to PostgreSQL), then verify it"
    )
    cp.add_argument("--from", dest="source", required=True, help="the database URL to copy")
    cp.add_argument("--to", dest="target", required=True, help="an empty database's URL")
    cp.add_argument("--chunk", type=int, default=5000, help="rows per insert (default 5000)")
    cp.set_defaults(func=cmd_copy)
    ru = acts.add_parser(
        "rollups", help="check the counter rollups against the raw readings, or rebuild them"
    )
    _target(ru)
    ru.add_argument(
        "--rebuild", action="store_true", help="recompute them from the readings, then check"
    )
    ru.set_defaults(func=cmd_rollups)
