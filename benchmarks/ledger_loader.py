"""Bulk-loads a synthetic plant into a collector database for benchmarks/bench_ledger.py.

Readings go in through the driver's fastest path (SQLite: executemany of the statement that
SQLAlchemy compiles from the schema; PostgreSQL: COPY), their rollups as a rebuild computes
them, everything else through the collector's own stores.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from collector.allocation.counters import QUALITIES, CounterReadings, EventKind
from collector.allocation.topology import Topology
from collector.batches.model import Batch
from collector.batches.store import BatchStore
from collector.batches.topology_file import COUNTER_OF_MEDIUM, MeterSettings, TopologyDocument
from collector.db import Database, open_database
from collector.db.schema import counter_rollups, events, readings
from collector.ledger.rollups import summarise
from collector.ledger.usable import USABLE
from collector.metrology.registry import DeviceSpec, Location
from collector.metrology.registry_store import RegistryStore
from metertrace.timeutil import to_wire
from metertrace.wire import CounterEventBody

GATEWAY = "gw-bench"
PROFILE = {"electricity": "eastron-sdm630", "gas": "synthetic-gas-converter",
           "steam": "synthetic-steam-vortex"}  # fmt: skip
CHUNK = 200_000
_USABLE_CODES = np.array([q.value in USABLE for q in QUALITIES])


def _reading_rows(m: str, qty: str, r: CounterReadings) -> Iterator[list[tuple[Any, ...]]]:
    ts = np.round(r.t * 1e6).astype(np.int64)
    quality = [q.value for q in QUALITIES]
    for s in range(0, ts.size, CHUNK):
        t, v, q = ts[s : s + CHUNK].tolist(), r.value[s : s + CHUNK], r.quality[s : s + CHUNK]
        vals = [None if x != x else x for x in v.tolist()]
        yield [(m, qty, s + i + 1, t[i], vals[i], r.unit, quality[q[i]]) for i in range(len(t))]


_COLS = ("device", "quantity", "seq", "ts", "value", "unit", "quality")


def _insert_readings(db: Database, rows: list[tuple[Any, ...]]) -> None:
    if db.dialect == "postgresql":
        with db.engine.raw_connection() as raw:
            cur = raw.cursor()
            with cur.copy(f"COPY readings ({', '.join(_COLS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        return
    sql = str(readings.insert().values({c: None for c in _COLS}).compile(dialect=db.engine.dialect))
    with db.engine.raw_connection() as raw:
        cur = raw.cursor()
        cur.execute("BEGIN")
        cur.executemany(sql, rows)
        cur.execute("COMMIT")


def _rollup_rows(m: str, qty: str, r: CounterReadings) -> list[dict[str, Any]]:
    usable = _USABLE_CODES[r.quality] & ~np.isnan(r.value)
    ts = np.round(r.t[usable] * 1e6).astype(np.int64)
    return [
        {"device": m, "quantity": qty, "bucket": x.bucket, "first_ts": x.first_ts,
         "first_value": x.first_value, "last_ts": x.last_ts, "last_value": x.last_value,
         "n": x.n, "max_dt": x.max_dt, "min_dv": x.min_dv, "dirty": int(x.dirty)}
        for x in summarise(ts, r.value[usable])
    ]  # fmt: skip


def _event_rows(m: str, qty: str, r: CounterReadings, first_id: int) -> list[dict[str, Any]]:
    out = []
    for k, ev in enumerate(r.events):
        i = int(np.searchsorted(r.t, ev.ts.timestamp() - 1e-6))
        before = ev.before if ev.before is not None else float(r.value[i - 1])
        after = ev.after if ev.after is not None else float(r.value[i])
        body = CounterEventBody(
            quantity=qty, kind=ev.kind.value, unit=r.unit, before=before, after=after,
            ts_before=datetime.fromtimestamp(float(r.t[i - 1]), UTC), ts_after=ev.ts,
            reading_ts=ev.ts, wrap=ev.wrap,
            consumption=(after + ev.wrap - before) if ev.kind is EventKind.WRAP and ev.wrap
            else None,
        )  # fmt: skip
        out.append({
            "gateway": GATEWAY, "id": first_id + k, "device": m, "ts": to_wire(ev.ts),
            "received_at": to_wire(ev.ts), "event": "counter", "counter": body.model_dump_json(),
            "hash": f"bench-{m}-{k}", "payload": b"{}",
        })  # fmt: skip
    return out


def load_plant(
    url: str,
    batches: Sequence[Batch],
    topology: Topology,
    media: dict[str, tuple[str, str]],
    counters: dict[str, CounterReadings],
    *,
    progress: bool = True,
) -> int:
    """Write the plant into an empty database at url; the number of readings stored."""
    db = open_database(url)
    at = datetime.now(UTC)
    registry = RegistryStore(db)
    for m, (medium, _) in media.items():
        spec = DeviceSpec(id=m, gateway=GATEWAY, profile=PROFILE[medium], serial_number=f"SN-{m}",
                          medium=medium, location=Location(site="bench"), accuracy_class="1.0",
                          installed_at=datetime(2020, 1, 1, tzinfo=UTC))  # fmt: skip
        registry.record_device(spec, actor="bench", role="plant_engineer", at=at)
    store = BatchStore(db)
    store.record(batches, actor="bench", at=at, source="bench_ledger")
    doc = TopologyDocument(idle_policy=topology.idle_policy,
                           meters={m: MeterSettings(resolution=0.01) for m in media},
                           assignments=topology.assignments)  # fmt: skip
    store.set_topology(doc, source_text="", source="bench_ledger", actor="bench", at=at)
    stored, event_id = 0, 1
    total = sum(r.t.size for r in counters.values())
    for m, r in counters.items():
        qty = COUNTER_OF_MEDIUM[media[m][0]]
        for rows in _reading_rows(m, qty, r):
            _insert_readings(db, rows)
            stored += len(rows)
            if progress:
                sys.stderr.write(
                    f"\rloading readings: {stored:,}/{total:,} ({100 * stored / total:.0f} %)"
                )
                sys.stderr.flush()
        ev = _event_rows(m, qty, r, event_id)
        event_id += len(ev)
        with db.write() as conn:
            conn.execute(counter_rollups.insert(), _rollup_rows(m, qty, r))
            if ev:
                conn.execute(events.insert(), ev)
    if progress:
        sys.stderr.write("\n")
    _analyse(db)
    return stored


def _analyse(db: Database) -> None:
    """Statistics and (PostgreSQL) the visibility map after the bulk load, as autovacuum keeps
    them on a running collector: without them the planner does not know the new rows, and an
    index-only scan still visits the table."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if db.dialect == "postgresql" else "ANALYZE")
