"""Allocation benchmark: 10,000 batches over one year of 10-second readings from 50 meters.

    .venv/bin/python -m benchmarks.bench_allocation

Synthetic counters (3,153,600 readings per meter, 157.7 M in all) are generated with numpy
first and timed separately. The timed part is the whole allocation from raw readings:
unwrapping every counter (events, gaps, quality), splitting every meter's consumption among
the batches, the per-batch uncertainty budget, and materialising all 10,000 batch results.
Baseline, same run: consumption per batch of the dedicated meters by a per-batch np.interp
loop on the materialised cumulative counter, against the vectorised path on the same data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np

from collector.allocation.consumption import CounterSeries, prepare
from collector.allocation.counters import CounterEvent, CounterReadings, EventKind, quality_code
from collector.allocation.energy import allocate_series
from collector.allocation.topology import IdlePolicy, Key, MeterAssignment, Rule, Topology
from collector.allocation.uncertainty import MeterUncertainty
from collector.batches.model import Batch
from metertrace.wire import Quality

GOAL_S = 5.0
COMM = quality_code(Quality.COMM_ERROR)
POLL_S = 10.0
T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def make_batches(
    rng: np.random.Generator, start: datetime, days: int, lines: int, per_line: int
) -> list[Batch]:
    """per_line batches on each line, each in its own slot with idle/changeover around it."""
    slot = days * 86400 / per_line
    out = []
    for li in range(lines):
        unit = "piece" if li >= lines - 2 else "kilogram"  # two lines count pieces
        run = slot * rng.uniform(0.6, 0.9, per_line)
        offset = (slot - run) * rng.uniform(0.1, 0.9, per_line)
        for j in range(per_line):
            s = start + timedelta(seconds=float(j * slot + offset[j]))
            q = float(rng.uniform(500, 5000))
            out.append(
                Batch(
                    id=f"B{li + 1:02d}-{j:04d}",
                    product_id=f"P{(li * 7 + j) % 20:02d}",
                    product_name=f"product {(li * 7 + j) % 20}",
                    line=f"L{li + 1:02d}",
                    start=s,
                    end=s + timedelta(seconds=float(run[j])),
                    produced_quantity=q,
                    declared_unit=unit,
                    mass_kg=q * (0.2 if unit == "piece" else 1.0),
                )
            )
    return out


def make_topology(start: datetime) -> tuple[Topology, dict[str, tuple[str, str]]]:
    """50 meters: dedicated, shared (every key), residual; every idle policy."""
    policies = list(IdlePolicy)
    lines = [f"L{i:02d}" for i in range(1, 11)]
    media: dict[str, tuple[str, str]] = {}
    items: list[MeterAssignment] = []

    def add(meter: str, medium: str, unit: str, **kw: Any) -> None:
        media[meter] = (medium, unit)
        kw.setdefault("idle_policy", policies[len(items) % len(policies)])
        items.append(MeterAssignment(meter_id=meter, valid_from=start, **kw))

    for i, line in enumerate(lines, 1):
        add(f"E{i:02d}", "electricity", "kWh", rule=Rule.DEDICATED, lines=[line])
        add(f"X{i:02d}", "electricity", "kWh", rule=Rule.DEDICATED, lines=[line])
        add(f"G{i:02d}", "gas", "Nm³", rule=Rule.DEDICATED, lines=[line])
    for k in range(5):
        pair = lines[2 * k : 2 * k + 2]
        key = Key.MASS if k == 4 else Key.PRODUCED_QUANTITY  # L09/L10 count pieces
        add(f"S{k + 1:02d}", "steam", "t", rule=Rule.SHARED, lines=pair, key=key)
        add(f"M{k + 1:02d}", "electricity", "kWh", rule=Rule.RESIDUAL, lines=pair,
            key=Key.RUN_TIME, sub_meters=[f"E{2 * k + 1:02d}", f"E{2 * k + 2:02d}"])  # fmt: skip
    keys = [Key.RUN_TIME, Key.MASS, Key.FIXED_SHARES, Key.RUN_TIME]
    for k in range(10):
        served = [lines[(k + j) % 10] for j in range(3)]
        key = keys[k % 4]
        shares = {x: s for x, s in zip(served, (0.5, 0.3, 0.2), strict=True)}
        add(f"C{k + 1:02d}", "electricity", "kWh", rule=Rule.SHARED, lines=served, key=key,
            fixed_shares=shares if key is Key.FIXED_SHARES else None)  # fmt: skip
    return Topology(idle_policy=IdlePolicy.OVERHEAD, assignments=items), media


def make_readings(
    rng: np.random.Generator, meter: str, medium: str, unit: str, t0: float, n: int, fault: str
) -> CounterReadings:
    """One meter's year: jittered timestamps, a noisy counter, and the fault it is given."""
    t = t0 + np.arange(n, dtype=np.float64) * POLL_S
    t += rng.uniform(-0.4, 0.4, n)
    rate = {"electricity": 0.05, "gas": 0.01, "steam": 0.0005}[medium]  # per second
    if meter.startswith("M"):
        rate *= 3  # a main meter reads its two sub-meters and more
    v = rng.random(n)
    v *= 2 * rate * POLL_S
    np.cumsum(v, out=v)
    v += 1000.0
    q = np.zeros(n, dtype=np.uint8)
    events: list[CounterEvent] = []

    def at(i: int) -> datetime:
        return datetime.fromtimestamp(float(t[i]), UTC)

    if fault == "comm":  # 0.1 % failed reads
        bad = rng.choice(n, n // 1000, replace=False)
        q[bad] = COMM
        v[bad] = np.nan
    elif fault == "gap":  # three outages of 1, 3 and 6 hours
        for start, hours in ((n // 4, 1), (n // 2, 3), (3 * n // 4, 6)):
            q[start : start + int(hours * 360)] = COMM
    elif fault == "wrap":  # a 6-digit register: wraps at 10⁶
        wraps = np.flatnonzero(np.diff(np.floor(v / 1e6))) + 1
        events = [CounterEvent(at(int(i)), EventKind.WRAP, wrap=1e6) for i in wraps]
        np.mod(v, 1e6, out=v)
    elif fault == "replacement":  # new meter from 0 at mid-year
        i = n // 2
        events = [CounterEvent(at(i), EventKind.REPLACEMENT, before=float(v[i - 1]), after=0.0)]
        v[i:] -= v[i - 1]
    elif fault == "reset":  # a confirmed reset: the step across it is unknown
        i = n // 3
        events = [CounterEvent(at(i), EventKind.RESET, before=float(v[i - 1]), after=0.0)]
        v[i:] -= v[i - 1]
        q[i] = quality_code(Quality.COUNTER_RESET)
    return CounterReadings(meter, medium, unit, t, v, q, POLL_S, tuple(events))


FAULTS = {"E03": "comm", "G05": "gap", "C02": "wrap", "X07": "replacement", "S03": "reset",
          "M02": "comm", "E08": "gap"}  # fmt: skip


Bounds = dict[str, tuple[np.ndarray, np.ndarray]]


def dedicated_inputs(
    series: dict[str, CounterSeries], topology: Topology, batches: list[Batch]
) -> tuple[list[tuple[str, str]], Bounds, dict[str, np.ndarray]]:
    """What both paths get: (meter, line) pairs, batch bounds per line, cumulative counters."""
    pairs = [(a.meter_id, a.lines[0]) for a in topology.assignments if a.rule is Rule.DEDICATED]
    bounds: Bounds = {}
    for line in sorted({b.line for b in batches}):
        on = [b for b in batches if b.line == line]
        bounds[line] = (
            np.array([b.start.timestamp() for b in on]),
            np.array([b.end.timestamp() for b in on]),
        )
    cum = {m: series[m].cumulative() for m, _ in pairs}
    return pairs, bounds, cum


def naive_dedicated(
    series: dict[str, CounterSeries],
    pairs: list[tuple[str, str]],
    bounds: Bounds,
    cum: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Baseline: one np.interp call per batch, at its start and end, on the cumulative counter."""
    out = {}
    for meter, line in pairs:
        t, c = series[meter].t, cum[meter]
        starts, ends = bounds[line]
        out[meter] = np.array(
            [float(np.diff(np.interp([s, e], t, c))[0]) for s, e in zip(starts, ends, strict=True)]
        )
    return out


def scan_dedicated(
    readings: dict[str, CounterReadings], pairs: list[tuple[str, str]], bounds: Bounds, sample: int
) -> int:
    """Second baseline: per batch, mask the raw readings inside it and difference the ends
    (what a per-batch SQL/loop query does). O(readings) per batch, so only `sample` pairs."""
    done = 0
    for meter, line in pairs:
        r = readings[meter]
        for s, e in zip(*bounds[line], strict=True):
            inside = r.value[(r.t >= s) & (r.t < e)]
            if inside.size:
                _ = inside[-1] - inside[0]
            done += 1
            if done == sample:
                return done
    return done


def vectorised_dedicated(
    series: dict[str, CounterSeries], pairs: list[tuple[str, str]], bounds: Bounds
) -> dict[str, np.ndarray]:
    """All of a meter's batch boundaries at once (CounterSeries.at)."""
    out = {}
    for meter, line in pairs:
        starts, ends = bounds[line]
        out[meter] = series[meter].at(ends) - series[meter].at(starts)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_allocation", description=__doc__)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--batches-per-line", type=int, default=1000)
    p.add_argument("--seed", type=int, default=20260101)
    p.add_argument("--out", help="also write the figures as JSON to this file")
    args = p.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=args.days)
    n = int(args.days * 86400 / POLL_S)

    t_gen = time.perf_counter()
    batches = make_batches(rng, start, args.days, 10, args.batches_per_line)
    topology, media = make_topology(start)
    readings = {
        m: make_readings(rng, m, med, unit, start.timestamp(), n, FAULTS.get(m, ""))
        for m, (med, unit) in media.items()
    }
    metrology = {
        m: MeterUncertainty.from_accuracy_class(m, resolution=0.01, class_percent=1.0)
        if i % 2
        else MeterUncertainty.from_certificate(
            m, resolution=0.01, expanded_rel=0.004, k=2, certificate_id=f"CERT-{m}",
            group="lab-A" if i % 4 == 0 else None,
        )
        for i, m in enumerate(media)
    }  # fmt: skip
    gen_s = time.perf_counter() - t_gen
    total_readings = sum(r.t.size for r in readings.values())

    series, prep_s = timed(lambda: {m: prepare(r) for m, r in readings.items()})
    alloc, split_s = timed(
        lambda: allocate_series(batches, topology, series, metrology, start, end)
    )
    _, budget_s = timed(lambda: alloc.media)
    results, out_s = timed(lambda: list(alloc.batches()))
    closures = alloc.closures()
    total_s = prep_s + split_s + budget_s + out_s

    pairs_, bounds, cum = dedicated_inputs(series, topology, batches)
    naive, naive_s = timed(lambda: naive_dedicated(series, pairs_, bounds, cum))
    vec, vec_s = timed(lambda: vectorised_dedicated(series, pairs_, bounds))
    sample = 200
    _, scan_s = timed(lambda: scan_dedicated(readings, pairs_, bounds, sample))
    worst = max(float(np.max(np.abs(naive[m] - vec[m]))) for m in naive)
    pairs = sum(v.size for v in naive.values())

    unclosed = [c.meter_id for c in closures if not c.closed]
    figures = {
        "setup": {
            "meters": len(readings), "batches": len(batches), "days": args.days,
            "readings_per_meter": n, "readings_total": total_readings,
            "assignments": len(topology.assignments), "faults": FAULTS,
        },
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "cpu": platform.processor() or platform.machine()},
        "generation_s": round(gen_s, 2),
        "allocation_s": {"prepare_counters": round(prep_s, 3), "split_meters": round(split_s, 3),
                         "uncertainty_budget": round(budget_s, 3),
                         "materialise_results": round(out_s, 3), "total": round(total_s, 3)},
        "goal_s": GOAL_S, "goal_met": total_s <= GOAL_S,
        "closure": {"meters": len(closures), "not_closed": unclosed},
        "baseline": {"dedicated_batch_meter_pairs": pairs, "naive_loop_s": round(naive_s, 3),
                     "vectorised_s": round(vec_s, 4), "ratio": round(naive_s / vec_s, 1),
                     "max_abs_difference": worst,
                     "scan_sample_pairs": sample,
                     "scan_extrapolated_s": round(scan_s / sample * pairs, 1),
                     "scan_ratio": round(scan_s / sample * pairs / vec_s)},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "results": len(results),
    }  # fmt: skip
    render(figures, argv)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(figures, f, indent=2)
    return figures


def render(f: dict[str, Any], argv: list[str] | None) -> None:
    s, a, b = f["setup"], f["allocation_s"], f["baseline"]
    cmd = " ".join([".venv/bin/python -m benchmarks.bench_allocation", *(argv or sys.argv[1:])])
    m = f["machine"]
    print(f"command: {cmd}")
    print(f"machine: {m['nproc']} CPUs ({m['cpu']}), Python {m['python']}, numpy {m['numpy']}")
    print(
        f"{s['batches']:,} batches, {s['meters']} meters ({s['assignments']} assignments), "
        f"{s['days']} days of {POLL_S:g}-second readings: {s['readings_per_meter']:,} per meter, "
        f"{s['readings_total']:,} in all"
    )
    print(f"generation (not timed in the allocation): {f['generation_s']:.2f} s")
    print("allocation, from raw readings to every batch's result:")
    for k in ("prepare_counters", "split_meters", "uncertainty_budget", "materialise_results"):
        print(f"  {k:22}{a[k]:8.3f} s")
    verdict = "met" if f["goal_met"] else "NOT MET"
    print(f"  {'total':22}{a['total']:8.3f} s   goal <= {f['goal_s']:g} s: {verdict}")
    c = f["closure"]
    print(f"closure: {c['meters'] - len(c['not_closed'])}/{c['meters']} meters sum exactly")
    print(
        f"baseline, dedicated meters ({b['dedicated_batch_meter_pairs']:,} batch-meter pairs): "
        f"per-batch np.interp loop {b['naive_loop_s']:.3f} s, vectorised {b['vectorised_s']:.4f} s,"
        f" ratio {b['ratio']:g}x (max difference {b['max_abs_difference']:.2e})"
    )
    print(
        f"second baseline, a mask over the raw readings per batch: "
        f"{b['scan_extrapolated_s']:g} s extrapolated from {b['scan_sample_pairs']} pairs, ratio "
        f"{b['scan_ratio']:g}x"
    )
    print(f"peak RSS: {f['peak_rss_mib']:.0f} MiB")
    assert math.isfinite(a["total"])


if __name__ == "__main__":
    main()
