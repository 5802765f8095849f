"""Shares sum exactly (math.fsum) to each meter's metered total: property-style over random
plants with a fixed seed, plus the float corner cases of the exact-sum step."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from collector.allocation.counters import CounterEvent, CounterReadings, EventKind
from collector.allocation.energy import allocate
from collector.allocation.exact_sum import close_exactly
from collector.allocation.topology import IdlePolicy, Key, Topology
from collector.batches.model import Batch
from tests.allocation_helpers import T0, assign, at, class_1

pytestmark = pytest.mark.unit


def random_plant(
    rng: np.random.Generator,
) -> tuple[list[Batch], Topology, dict[str, CounterReadings]]:
    lines = [f"L{i}" for i in range(int(rng.integers(1, 5)))]
    batches: list[Batch] = []
    for line in lines:
        h = float(rng.uniform(0, 2))
        while h < 40:
            dur = float(rng.uniform(0.2, 5))
            q = float(rng.uniform(1, 1000))
            batches.append(Batch(id=f"{line}-{len(batches)}", product_id="p", product_name="p",
                                 line=line, start=at(h), end=at(h + dur), produced_quantity=q,
                                 declared_unit="kilogram", mass_kg=q * 1.1))  # fmt: skip
            h += dur + float(rng.choice([0.0, rng.uniform(0, 3)]))
    readings: dict[str, CounterReadings] = {}
    assignments = []
    for k in range(int(rng.integers(1, 7))):
        meter = f"m{k}"
        n = 48 * 60
        t = T0.timestamp() + np.arange(n) * 60.0 + rng.uniform(-5, 5, n)
        v = 1e4 + np.cumsum(rng.exponential(float(rng.uniform(0.1, 10)), n))
        q = np.zeros(n, np.uint8)
        q[rng.random(n) < 0.02] = 1  # comm_error: a few missing reads
        gap = int(rng.integers(0, n - 200))
        q[gap : gap + int(rng.integers(0, 200))] = 1  # and an outage
        events = []
        if rng.random() < 0.5:  # a replacement
            i = int(rng.integers(1, n))
            ts = T0 + timedelta(seconds=float(t[i] - T0.timestamp()))
            events.append(CounterEvent(ts, EventKind.REPLACEMENT, before=float(v[i - 1]), after=0))
            v[i:] -= v[i - 1]
        readings[meter] = CounterReadings(meter, "electricity", "kWh", t, v, q, 60.0,
                                          tuple(events))  # fmt: skip
        served = list(rng.choice(lines, size=int(rng.integers(1, len(lines) + 1)), replace=False))
        key = list(Key)[int(rng.integers(len(Key)))]
        kw = {"key": key, "idle_policy": list(IdlePolicy)[int(rng.integers(len(IdlePolicy)))]}
        if key is Key.FIXED_SHARES:
            w = rng.random(len(served)) + 0.1
            kw["fixed_shares"] = {s: float(x) for s, x in zip(served, w / w.sum(), strict=True)}
            kw["fixed_shares"][served[-1]] += 1 - math.fsum(kw["fixed_shares"].values())
        rule = "dedicated" if len(served) == 1 and rng.random() < 0.5 else "shared"
        if rule == "dedicated":
            kw.pop("fixed_shares", None)
            kw["key"] = None
        assignments.append(assign(meter, rule, served, **kw))
    if len(readings) >= 2 and rng.random() < 0.5:  # a residual main over one sub-meter
        n = 48 * 60
        t = T0.timestamp() + np.arange(n) * 60.0
        readings["main"] = CounterReadings("main", "electricity", "kWh", t,
                                           1e5 + np.cumsum(rng.exponential(50, n)),
                                           np.zeros(n, np.uint8), 60.0)  # fmt: skip
        assignments.append(assign("main", "residual", lines, key="run_time", sub_meters=["m0"]))
    topo = Topology(idle_policy="overhead", assignments=assignments)
    return batches, topo, readings


@pytest.mark.parametrize("seed", range(40))
def test_shares_and_overhead_sum_exactly_to_each_meter_total(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    batches, topo, readings = random_plant(rng)
    start, end = at(float(rng.uniform(0, 5))), at(float(rng.uniform(30, 48)))
    al = allocate(batches, topo, readings, class_1(*readings), start, end)
    for ms in al.shares:
        assert math.fsum([*ms.quantity.tolist(), ms.overhead]) == ms.total, ms.assignment
        assert ms.closure_residual == 0.0 and not ms.anomalies
    assert all(c.closed for c in al.closures())
    per_batch = sum(
        m.quantity for be in al.batches() for m in be.media
    )  # every meter's shares reach its batches' totals
    totals = math.fsum(ms.total - ms.overhead for ms in al.shares)
    assert per_batch == pytest.approx(totals, rel=1e-12, abs=1e-9)


def test_the_residual_is_carried_by_a_few_ulps_of_one_share() -> None:
    rng = np.random.default_rng(5)
    for _ in range(2000):
        total = float(rng.random() * 10.0 ** rng.integers(-3, 8))
        w = rng.random(int(rng.integers(1, 300))) ** 3
        parts = total * w / w.sum()
        out, residual = close_exactly(parts, total)
        assert residual == 0.0 and math.fsum(out.tolist()) == total
        assert np.count_nonzero(out != parts) <= 1
        assert np.max(np.abs(out - parts)) <= 8 * math.ulp(total)


def test_a_tie_the_largest_share_cannot_break_moves_to_another() -> None:
    # the largest share's ulp is half the total's and the sum sits on a rounding tie
    total = float.fromhex("0x1.0613920191a9dp-10")
    parts = np.array(
        [float.fromhex("0x1.ea89480403238p-13"), float.fromhex("0x1.9184d202228abp-11")]
    )
    out, residual = close_exactly(parts, total)
    assert residual == 0.0 and math.fsum(out.tolist()) == total


def test_shares_too_coarse_to_close_report_the_residual_instead() -> None:
    out, residual = close_exactly(np.array([1e16, -1e16 + 2.0]), 1.5)
    assert residual == pytest.approx(0.5) and math.fsum(out.tolist()) - 1.5 == residual


def test_no_share_at_all_reports_the_whole_total() -> None:
    out, residual = close_exactly(np.zeros(0), 3.0)
    assert out.size == 0 and residual == -3.0
