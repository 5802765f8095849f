"""Copying a collector's database to another one (SQLite to PostgreSQL), then verifying it.

The source must be at the head revision; the target must be empty (it is first upgraded to
head) or at head with no rows. Every table of collector/db/schema.py is copied in key order,
in chunks, in one target transaction (a failure leaves the target empty), from one read
snapshot of the source. PostgreSQL's id sequences are then set past the copied ids.

Verification reads both databases again: for every table the row count and a SHA-256 over its
rows in key order; for every device its hash chain (collector/ledger/chain.py) with the
data-loss events and replays the ledger holds, and whether each message's hash is its
payload's. The copy is good when every table is identical and every chain reads the same in
both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy import Column, Connection, Table, func, select

from collector.db.engine import Database, database
from collector.db.migrate import current, upgrade
from collector.db.schema import events, late_duplicates, messages, metadata
from collector.db.times import from_micros
from collector.ledger.chain import Link, verify_chain
from metertrace.progress import Progress
from metertrace.wire import message_hash

CHUNK = 5000


class CopyError(RuntimeError):
    """The copy was refused or failed; the target holds nothing of it."""


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    target_rows: int
    same_rows: bool  # the digests of all rows, in key order, agree

    @property
    def ok(self) -> bool:
        return self.source_rows == self.target_rows and self.same_rows

    def line(self) -> str:
        if self.ok:
            return f"{self.table}: {_rows_n(self.target_rows)}, identical"
        if self.source_rows != self.target_rows:
            return (
                f"{self.table}: MISMATCH {_rows_n(self.source_rows)} in the source, "
                f"{self.target_rows} in the target"
            )
        return f"{self.table}: MISMATCH {_rows_n(self.target_rows)}, but their content differs"


def _rows_n(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


@dataclass(frozen=True)
class ChainCheck:
    device: str
    source: str  # the chain report's summary in the source
    target: str  # ... and in the target
    intact: bool  # the target's chain is intact (no unexplained gap, no broken link)
    bad_payloads: tuple[int, ...]  # target seqs whose hash is not their payload's
    source_bad_payloads: tuple[int, ...]

    @property
    def ok(self) -> bool:
        return self.source == self.target and self.bad_payloads == self.source_bad_payloads

    def line(self) -> str:
        if not self.ok:
            extra = f"; hash not the payload's at seq {list(self.bad_payloads)}"
            return (
                f"MISMATCH {self.target}{extra if self.bad_payloads else ''} "
                f"(in the source: {self.source})"
            )
        note = "" if self.intact else " (as in the source)"
        return f"{self.target}{note}"


@dataclass(frozen=True)
class CopyReport:
    tables: list[TableCheck]
    chains: list[ChainCheck]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and all(c.ok for c in self.chains)

    def lines(self) -> list[str]:
        out = [t.line() for t in self.tables] + [c.line() for c in self.chains]
        bad = sum(not t.ok for t in self.tables) + sum(not c.ok for c in self.chains)
        out.append(
            "verified: every table identical, every device's chain the same"
            if self.ok
            else f"verification FAILED: {bad} mismatch(es)"
        )
        return out


def _key(table: Table) -> list[Column[Any]]:
    """The order rows are copied and compared in: the primary key, or every column."""
    return list(table.primary_key.columns) or list(table.columns)


def _rows(conn: Connection, table: Table, chunk: int) -> Iterator[list[dict[str, Any]]]:
    result = conn.execution_options(yield_per=chunk).execute(select(table).order_by(*_key(table)))
    for part in result.partitions():
        yield [dict(r._mapping) for r in part]


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _empty_target(target: Database) -> None:
    st = current(target.url)
    if st.kind == "empty":
        upgrade(target.url)
        return
    if not st.at_head:
        raise CopyError(f"the target {target.display_url} holds {st.describe()}: give an empty one")
    with target.read() as conn:
        full = [t.name for t in metadata.sorted_tables if _count(conn, t)]
    if full:
        raise CopyError(
            f"the target {target.display_url} is not empty ({', '.join(full[:5])} hold rows): "
            "copy into an empty database"
        )


def copy_database(
    source_url: str, target_url: str, *, chunk: int = CHUNK, stream: TextIO | None = None
) -> CopyReport:
    """Copy every table from source to target and verify the copy (see the module docstring)."""
    source, target = database(source_url), database(target_url)
    if source.url == target.url:
        raise CopyError("the source and the target are the same database")
    st = current(source.url)
    if not st.at_head:
        raise CopyError(
            f"the source {source.display_url} holds {st.describe()}, not revision {st.head}: "
            f"upgrade it first (metertrace collector db upgrade --url {source.display_url})"
        )
    _empty_target(target)
    with source.read() as src, target.write() as dst:
        for table in metadata.sorted_tables:
            progress = Progress(f"copying {table.name}", _count(src, table), stream)
            done = 0
            for rows in _rows(src, table, chunk):
                dst.execute(table.insert(), rows)
                done += len(rows)
                progress.update(done)
            progress.finish()
        _carry_id_counters(src, dst)
    return verify_copy(source.url, target.url, chunk=chunk)


def _id_tables() -> list[Table]:
    """Tables whose id the database gives (BIGSERIAL, AUTOINCREMENT)."""
    return [
        t
        for t in metadata.sorted_tables
        if len(t.primary_key.columns) == 1 and t.primary_key.columns[0].autoincrement is True
    ]


def _last_id(conn: Connection, table: Table) -> int:
    """The highest id the table has given (rows since removed included, where it knows)."""
    top = int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())
    if conn.dialect.name == "postgresql":
        seq = conn.exec_driver_sql(
            f"SELECT pg_get_serial_sequence('{table.name}', 'id')"
        ).scalar_one()
        last, called = conn.exec_driver_sql(f"SELECT last_value, is_called FROM {seq}").one()
        return max(top, int(last) if called else int(last) - 1)
    row = conn.exec_driver_sql(
        "SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)
    ).first()
    return max(top, int(row[0]) if row else 0)


def _carry_id_counters(src: Connection, dst: Connection) -> None:
    """Explicit ids do not move PostgreSQL's sequences: set them past the copied ids (and past
    whatever the source had given), so the next row gets a fresh id on either engine."""
    for table in _id_tables():
        last = _last_id(src, table)
        if dst.dialect.name == "postgresql":
            seq = f"pg_get_serial_sequence('{table.name}', 'id')"
            if last >= 1:
                dst.exec_driver_sql(f"SELECT setval({seq}, {last}, true)")
            else:
                dst.exec_driver_sql(f"SELECT setval({seq}, 1, false)")
        elif last > _last_id(dst, table):
            dst.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = ?", (table.name,))
            dst.exec_driver_sql(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table.name, last)
            )


# --- verification -----------------------------------------------------------------------------
def _value(v: Any) -> Any:
    if isinstance(v, bytes | bytearray | memoryview):
        return {"b": bytes(v).hex()}
    if isinstance(v, float):
        return {"f": v.hex()}  # exact
    return v


def _digest(conn: Connection, table: Table, chunk: int) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    for rows in _rows(conn, table, chunk):
        for r in rows:
            h.update(json.dumps([_value(v) for v in r.values()]).encode())
            h.update(b"\n")
        n += len(rows)
    return n, h.hexdigest()


def _chain(conn: Connection, device: str, chunk: int) -> tuple[str, bool, tuple[int, ...]]:
    """The device's chain report (summary, intact) and the seqs whose hash is not their
    payload's, from the stored messages, data-loss events and replays."""
    m = messages.c
    links, bad = [], []
    result = conn.execution_options(yield_per=chunk).execute(
        select(m.seq, m.hash, m.prev, m.ts, m.payload).where(m.device == device).order_by(m.seq)
    )
    for seq, digest, prev, ts, payload in result:
        links.append(Link(int(seq), digest, prev, from_micros(ts)))
        try:
            if message_hash(json.loads(payload)) != digest:
                bad.append(int(seq))
        except (ValueError, TypeError):
            bad.append(int(seq))
    e = events.c
    losses = [
        (int(a), int(b))
        for a, b in conn.execute(
            select(e.first_seq, e.last_seq).where(
                e.device == device, e.first_seq.is_not(None), e.last_seq.is_not(None)
            )
        )
    ]
    ld = late_duplicates.c
    late = [int(s) for (s,) in conn.execute(select(ld.seq).distinct().where(ld.device == device))]
    report = verify_chain(device, links, losses=losses, replays=late)
    return report.summary(), report.intact, tuple(bad)


def _devices(conn: Connection) -> set[str]:
    return {d for (d,) in conn.execute(select(messages.c.device).distinct())}


def verify_copy(source_url: str, target_url: str, *, chunk: int = CHUNK) -> CopyReport:
    """Compare target with source: every table's rows, every device's chain."""
    source, target = database(source_url), database(target_url)
    with source.read() as src, target.read() as dst:
        tables = []
        for table in metadata.sorted_tables:
            (ns, ds), (nt, dt) = _digest(src, table, chunk), _digest(dst, table, chunk)
            tables.append(TableCheck(table.name, ns, nt, ds == dt))
        chains = []
        for device in sorted(_devices(src) | _devices(dst)):
            s, _, s_bad = _chain(src, device, chunk)
            t, intact, t_bad = _chain(dst, device, chunk)
            chains.append(ChainCheck(device, s, t, intact, t_bad, s_bad))
    return CopyReport(tables, chains)
