"""Every batch figure of a year from the database: 50 meters × 1 year of 10-second readings
stored in SQLite or PostgreSQL, 10,000 batches, computed through the collector's own service.

    .venv/bin/python -m benchmarks.bench_ledger                 # both stores, a full year
    .venv/bin/python -m benchmarks.bench_ledger --store sqlite --days 7 --batches-per-line 20

The plant, counters and faults are benchmarks/bench_allocation.py's (same seed): dedicated,
shared and residual meters, failed reads, outages, wraps, a replacement and a reset. The loader
writes the readings, their rollups (collector/ledger/rollups.py `summarise`, as a rebuild does),
the counter events, the device registry, the batches and the topology; message payloads are not
written (the figures never read them). Loading is timed but is not the goal.

The timed part runs in a fresh process, so its peak RSS is the service's alone:
`BatchEnergyService.period_energy(year)` over the stores, as `GET /api/v1/energy` does. The
baseline in the same run is the in-memory allocation of the same arrays (what
bench_allocation times), and every batch's energy per medium from the database must equal it.
Goals: <= 10 s and peak RSS <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_allocation import FAULTS, make_batches, make_readings, make_topology
from benchmarks.ledger_loader import load_plant
from collector.allocation.consumption import prepare
from collector.allocation.counters import CounterReadings
from collector.allocation.energy import allocate_series
from collector.allocation.uncertainty import MeterUncertainty
from collector.batches.store import BatchStore
from collector.db import open_database
from collector.db.engine import close_database, sqlite_url

GOAL_S = 10.0
GOAL_RSS_MIB = 1024.0
SEED = 20260101


def plant(
    days: int, per_line: int
) -> tuple[Any, Any, dict[str, tuple[str, str]], dict[str, CounterReadings], datetime]:
    rng = np.random.default_rng(SEED)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    batches = make_batches(rng, start, days, 10, per_line)
    topology, media = make_topology(start)
    n = int(days * 86400 / 10)
    readings = {}
    for m, (med, unit) in media.items():
        r = make_readings(rng, m, med, unit, start.timestamp(), n, FAULTS.get(m, ""))
        # stored as integer µs: the in-memory reference uses the same instants
        t = np.round(r.t * 1e6).astype(np.int64) / 1e6
        readings[m] = CounterReadings(m, med, unit, t, r.value, r.quality, r.poll_interval_s,
                                      r.events)  # fmt: skip
    return batches, topology, media, readings, start


def reference(
    batches: Any,
    topology: Any,
    readings: dict[str, CounterReadings],
    start: datetime,
    end: datetime,
) -> tuple[dict[str, dict[str, float]], float]:
    """Energy per batch and medium from the arrays in memory, and the seconds it took."""
    t0 = time.perf_counter()
    series = {m: prepare(r) for m, r in readings.items()}
    any_rating = {m: MeterUncertainty.from_accuracy_class(m, resolution=0.01, class_percent=1.0)
                  for m in readings}  # fmt: skip
    alloc = allocate_series(batches, topology, series, any_rating, start, end)
    out = {b.batch.id: {m.medium: m.quantity for m in b.media} for b in alloc.batches()}
    return out, time.perf_counter() - t0


@contextmanager
def database(store: str, work: Path, keep: bool) -> Iterator[str]:
    """A new database for one run, removed afterwards unless kept (to time --compute again)."""
    if store == "sqlite":
        url = sqlite_url(work / "ledger-bench.db")
        yield url
        close_database(url)
        if keep:
            print(f"kept: {url}", file=sys.stderr)
            return
        for p in work.glob("ledger-bench.db*"):
            p.unlink()
        return
    from tests.databases import drop_pg_database, new_pg_database

    url = new_pg_database("bench")
    try:
        yield url
    finally:
        if keep:
            print(f"kept: {url}", file=sys.stderr)
        else:
            drop_pg_database(url)


def compute(url: str, start: str, end: str, out: str) -> None:
    """The timed part, in its own process: every batch figure of the period from the stores."""
    from collector.batches.energy_service import BatchEnergyService
    from collector.batches.store import BatchStore
    from collector.ledger.counter_readings import CounterStore
    from collector.metrology.registry_store import RegistryStore

    db = open_database(url)
    service = BatchEnergyService(BatchStore(db), RegistryStore(db), CounterStore(db))
    t0 = time.perf_counter()
    period = service.period_energy(datetime.fromisoformat(start), datetime.fromisoformat(end))
    seconds = time.perf_counter() - t0
    figures = {bid: {m.medium: m.quantity for m in f.media} for bid, f in period_figures(period)}
    Path(out).write_text(json.dumps({
        "seconds": seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "figures": figures,
        "closed": sum(c.closed for c in period.closures),
        "closures": len(period.closures),
        "unavailable": len(getattr(period, "unavailable", {}) or {}),
    }))  # fmt: skip


def period_figures(period: Any) -> Iterator[tuple[str, Any]]:
    for b in period.batches:
        yield b.batch.id, b


def run_store(store: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    batches, topology, media, readings, start = plant(args.days, args.batches_per_line)
    end = start + timedelta(days=args.days)
    with database(store, work, args.keep) as url:
        t0 = time.perf_counter()
        stored = load_plant(url, batches, topology, media, readings, progress=not args.quiet)
        load_s = time.perf_counter() - t0
        # the batches in the order the store gives them, as the service gets them (the order
        # of a sum decides its last bit)
        ordered = [r.batch for r in BatchStore(open_database(url)).batches(start=start, end=end)]
        want, ref_s = reference(ordered, topology, readings, start, end)
        del readings  # the timed process reads the database, not these arrays
        out = work / f"figures-{store}.json"
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_ledger", "--compute", url,
             start.isoformat(), end.isoformat(), str(out)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"{store}: the service failed:\n{proc.stderr[-3000:]}")
        got = json.loads(out.read_text())
    diffs = [
        (bid, med, want[bid][med], got["figures"].get(bid, {}).get(med))
        for bid in want
        for med in want[bid]
        if got["figures"].get(bid, {}).get(med) != want[bid][med]
    ]
    return {
        "store": store,
        "readings_stored": stored,
        "batches": len(batches),
        "load_s": round(load_s, 1),
        "service_s": round(got["seconds"], 2),
        "peak_rss_mib": round(got["peak_rss_mib"]),
        "in_memory_s": round(ref_s, 2),
        "ratio_to_in_memory": round(got["seconds"] / ref_s, 2),
        "figures_equal": not diffs,
        "differences": diffs[:5],
        "closed": f"{got['closed']}/{got['closures']}",
        "goal_met": got["seconds"] <= GOAL_S and got["peak_rss_mib"] <= GOAL_RSS_MIB,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_ledger", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--batches-per-line", type=int, default=1000)
    p.add_argument("--work", help="folder for the SQLite file (default: a temporary one)")
    p.add_argument("--out", help="also write the figures as JSON to this file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--keep", action="store_true",
                   help="keep the databases, to time again with --compute")  # fmt: skip
    p.add_argument("--compute", nargs=4, metavar=("URL", "START", "END", "OUT"),
                   help="only the timed part, on a kept database")  # fmt: skip
    args = p.parse_args(argv)
    if args.compute:
        compute(*args.compute)
        return []
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    if args.keep:
        work = Path(args.work or tempfile.mkdtemp())
        rows = [run_store(s, args, work) for s in stores]
    else:
        with tempfile.TemporaryDirectory(dir=args.work) as tmp:
            rows = [run_store(s, args, Path(tmp)) for s in stores]
    render(rows, argv)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return rows


def render(rows: list[dict[str, Any]], argv: list[str] | None) -> None:
    cmd = " ".join([".venv/bin/python -m benchmarks.bench_ledger", *(argv or sys.argv[1:])])
    print(f"command: {cmd}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}")
    head = ("store", "readings", "batches", "load s", "service s", "in-memory s", "ratio",
            "peak RSS MiB", "figures = in-memory", "closed", "goal")  # fmt: skip
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(x) for x in (
            r["store"], f"{r['readings_stored']:,}", f"{r['batches']:,}", r["load_s"],
            r["service_s"], r["in_memory_s"], r["ratio_to_in_memory"], r["peak_rss_mib"],
            r["figures_equal"], r["closed"], "met" if r["goal_met"] else "NOT MET")))  # fmt: skip
        for d in r["differences"]:
            print(f"  differs: batch {d[0]} {d[1]}: in memory {d[2]!r}, from the database {d[3]!r}")


if __name__ == "__main__":
    main()
