"""Allocation rules and idle policies, as data: constant-rate meters make every share a
hand-computable number.

Batches: A on L1 1–3 h (100 kg), B on L1 4–6 h (50 kg), C on L2 2–5 h (300 kg); the period is
0–8 h. Meters rise at a constant rate: E1 10/h, E2 20/h, S 30/h, M 100/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from collector.allocation.allocation import AllocationError
from collector.allocation.batch_table import BatchError
from collector.allocation.energy import Allocation, allocate
from collector.allocation.topology import Topology
from tests.allocation_helpers import assign, at, batch, class_1, steady

pytestmark = pytest.mark.unit

RATES = {"E1": 10.0, "E2": 20.0, "S": 30.0, "M": 100.0}
READINGS = {m: steady(m, r) for m, r in RATES.items()}
METROLOGY = class_1(*RATES)


def abc(**masses: float) -> list[Any]:
    return [
        batch("A", "L1", 1, 3, 100, mass_kg=masses.get("A")),
        batch("B", "L1", 4, 6, 50, mass_kg=masses.get("B")),
        batch("C", "L2", 2, 5, 300, mass_kg=masses.get("C")),
    ]


def run(assignments: list[Any], policy: str = "overhead", batches: list[Any] | None = None,
        end_h: float = 8) -> Allocation:  # fmt: skip
    topo = Topology(idle_policy=policy, assignments=assignments)
    return allocate(batches or abc(), topo, READINGS, METROLOGY, at(0), at(end_h))


def shares(al: Allocation) -> tuple[dict[str, float], float]:
    """Per batch id, the quantity of the (single) assignment; and its overhead."""
    (ms,) = al.shares
    ids = [al.table.batches[int(b)].id for b in ms.batch]
    return {i: float(q) for i, q in zip(ids, ms.quantity, strict=True) if q}, ms.overhead


@dataclass(frozen=True)
class Case:
    name: str
    assignment: dict[str, Any]
    policy: str
    expected: dict[str, float]
    overhead: float
    masses: dict[str, float] | None = None


E1 = {"meter": "E1", "rule": "dedicated", "lines": ["L1"]}
S = {"meter": "S", "rule": "shared", "lines": ["L1", "L2"]}
M = {"meter": "M", "rule": "residual", "lines": ["L1", "L2"], "sub_meters": ["E1", "E2"]}
CASES = [
    Case("dedicated, idle as overhead", E1, "overhead", {"A": 20, "B": 20}, 40),
    Case("dedicated, idle to the next batch (none after B)", E1, "next_batch",
         {"A": 30, "B": 30}, 20),
    Case("dedicated, idle to the previous batch (none before A)", E1, "previous_batch",
         {"A": 30, "B": 40}, 10),
    Case("dedicated, idle spread by production", E1, "spread_by_production",
         {"A": 20 + 40 * 100 / 150, "B": 20 + 40 * 50 / 150}, 0),
    Case("shared by produced quantity in each interval", {**S, "key": "produced_quantity"},
         "overhead", {"A": 40, "B": 36, "C": 74}, 90),
    Case("shared by mass", {**S, "key": "mass"}, "overhead", {"A": 45, "B": 36, "C": 69}, 90,
         masses={"A": 200, "B": 50, "C": 300}),
    Case("shared by run time", {**S, "key": "run_time"}, "overhead",
         {"A": 45, "B": 45, "C": 60}, 90),
    Case("shared by fixed shares", {**S, "key": "fixed_shares",
                                    "fixed_shares": {"L1": 0.25, "L2": 0.75}},
         "overhead", {"A": 37.5, "B": 37.5, "C": 75}, 90),
    Case("shared, idle to the next batch", {**S, "key": "produced_quantity"}, "next_batch",
         {"A": 70, "B": 36, "C": 74}, 60),
    Case("residual: main minus sub-meters, by run time", {**M, "key": "run_time"}, "overhead",
         {"A": 105, "B": 105, "C": 140}, 210),
    Case("residual serving one line: no key needed", {**M, "lines": ["L2"]}, "overhead",
         {"C": 210}, 350),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_and_policy(case: Case) -> None:
    kw = dict(case.assignment)
    a = assign(kw.pop("meter"), kw.pop("rule"), kw.pop("lines"), **kw)
    al = run([a], case.policy, abc(**(case.masses or {})))
    got, overhead = shares(al)
    assert got == pytest.approx(case.expected, abs=1e-9)
    assert overhead == pytest.approx(case.overhead, abs=1e-9)
    (closure,) = al.closures()
    assert closure.closed and closure.residual == 0.0


def test_a_meter_whose_lines_ran_nothing_is_all_overhead() -> None:
    al = run([assign("E2", "dedicated", ["L3"])])
    (c,) = al.closures()
    assert c.total == pytest.approx(160) and c.overhead == c.total and c.allocated == 0
    assert c.closed


def test_naive_period_bounds_are_refused() -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="naive datetime"):
        allocate(abc(), Topology(idle_policy="overhead",
                                 assignments=[assign("E1", "dedicated", ["L1"])]),
                 READINGS, METROLOGY, datetime(2026, 1, 1), at(8))  # fmt: skip


def test_batches_starting_together_share_idle_energy_by_the_key() -> None:
    both = [batch("D", "L1", 2, 3, 100), batch("E", "L2", 2, 3, 300)]
    a = assign("S", "shared", ["L1", "L2"], key="produced_quantity")
    got, overhead = shares(run([a], "next_batch", both))
    assert got == pytest.approx({"D": 15 + 7.5, "E": 45 + 22.5})
    assert overhead == pytest.approx(150)  # 3–8 h: no batch follows


def test_a_meter_reassigned_mid_period_gives_one_closure_per_window() -> None:
    first = assign("E1", "dedicated", ["L1"], valid_to=at(4))
    second = assign("E1", "dedicated", ["L2"], valid_from=at(4))
    al = run([first, second])
    assert [c.overhead for c in al.closures()] == pytest.approx([20, 30])
    assert al.batch("A").media[0].quantity == pytest.approx(20)
    assert al.batch("C").media[0].quantity == pytest.approx(10)  # 4–5 h only
    assert al.batch("B").media == ()  # L1 after 4 h has no meter


def test_batch_energy_carries_contributions_quality_and_method() -> None:
    al = run([assign("E1", "dedicated", ["L1"]),
              assign("S", "shared", ["L1", "L2"], key="run_time")], "next_batch")  # fmt: skip
    (e,) = al.batch("A").media
    assert (e.medium, e.unit, e.declared_unit) == ("electricity", "kWh", "kilogram")
    assert e.quantity == pytest.approx(30 + 75)  # E1: 20 + idle 0–1 h; S: 30 + 15 + idle 30
    by_meter = {c.meter_id: c for c in e.contributions}
    assert by_meter["E1"].rule == "dedicated" and by_meter["E1"].key is None
    assert by_meter["E1"].idle_quantity == pytest.approx(10)
    assert by_meter["E1"].share_of_meter == pytest.approx(30 / 80)
    assert by_meter["S"].key == "run_time"
    assert by_meter["E1"].calibration[0].status == "uncalibrated"
    assert e.per_declared_unit == pytest.approx(e.quantity / 100)
    assert e.coverage == 1.0 and e.primary_data_share == 1.0
    assert "ISO 14044" in e.method_text and "meter E1 is dedicated to line L1" in e.method_text
    assert "by run time" in e.method_text and "next batch" in e.method_text


def test_a_batch_reaching_outside_the_period_has_no_per_unit_figure() -> None:
    al = run([assign("E1", "dedicated", ["L1"])], end_h=2)
    be = al.batch("A")
    assert not be.complete and be.media[0].per_declared_unit is None
    assert be.media[0].quantity == pytest.approx(10)  # 1–2 h only


def test_a_gap_inside_a_batch_lowers_coverage_and_primary_share() -> None:
    r = steady("E1", 10.0)
    keep = (r.t < at(1.5).timestamp()) | (r.t > at(2.5).timestamp())
    gap_h = (3600 + 20) / 3600  # from the last reading before 1.5 h to the first after 2.5 h
    cut = type(r)(r.meter_id, r.medium, r.unit, r.t[keep], r.value[keep], r.quality[keep], 10.0)
    topo = Topology(idle_policy="overhead", assignments=[assign("E1", "dedicated", ["L1"])])
    al = allocate(abc(), topo, {"E1": cut}, METROLOGY, at(0), at(8))
    (e,) = al.batch("A").media
    assert e.quantity == pytest.approx(20)  # the counter survived the gap
    assert e.estimated_quantity == pytest.approx(10 * gap_h)
    assert e.coverage == pytest.approx(1 - gap_h / 2)
    assert e.primary_data_share == pytest.approx(1 - 10 * gap_h / 20)


def test_residual_below_zero_is_counted_and_still_closes() -> None:
    readings = {"M": steady("M", 10.0), "E2": steady("E2", 20.0)}
    topo = Topology(idle_policy="spread_by_production",
                    assignments=[assign("M", "residual", ["L1"], sub_meters=["E2"])])  # fmt: skip
    al = allocate(abc(), topo, readings, class_1("M", "E2"), at(0), at(8))
    (c,) = al.closures()
    assert c.negative_intervals > 0 and c.total == pytest.approx(-80) and c.closed


@pytest.mark.parametrize(
    ("assignment", "batches", "match"),
    [
        ({"key": "produced_quantity"}, [batch("A", "L1", 1, 2), batch("C", "L2", 1, 2, 5,
          declared_unit="piece")], "different declared units.*mass or run_time"),
        ({"key": "mass"}, abc(A=1), r"mass_kg of batches \['B', 'C'\]"),
    ],
)  # fmt: skip
def test_a_key_the_batches_cannot_support_is_refused(assignment, batches, match) -> None:
    a = assign("S", "shared", ["L1", "L2"], **assignment)
    with pytest.raises(AllocationError, match=match):
        run([a], batches=batches)


def test_one_line_making_kilograms_and_pieces_needs_no_key_until_idle_is_spread() -> None:
    mixed = [batch("A", "L1", 1, 3), batch("B", "L1", 4, 6, 50, declared_unit="piece")]
    got, _ = shares(run([assign("E1", "dedicated", ["L1"])], "next_batch", mixed))
    assert got == pytest.approx({"A": 30, "B": 30})
    with pytest.raises(AllocationError, match="different declared units"):
        run([assign("E1", "dedicated", ["L1"])], "spread_by_production", mixed)
    got, _ = shares(run([assign("E1", "dedicated", ["L1"], key="run_time")],
                        "spread_by_production", mixed))  # fmt: skip
    assert got == pytest.approx({"A": 40, "B": 40})


def test_missing_readings_or_metrology_are_refused_naming_the_meter() -> None:
    topo = Topology(idle_policy="overhead", assignments=[assign("E9", "dedicated", ["L1"])])
    with pytest.raises(AllocationError, match=r"meter E9: no readings"):
        allocate(abc(), topo, READINGS, METROLOGY, at(0), at(8))
    topo = Topology(idle_policy="overhead", assignments=[assign("E1", "dedicated", ["L1"])])
    with pytest.raises(AllocationError, match="meter E1: no uncertainty record"):
        allocate(abc(), topo, READINGS, {}, at(0), at(8))


def test_overlapping_batches_on_a_line_and_duplicate_ids_are_refused() -> None:
    topo = Topology(idle_policy="overhead", assignments=[assign("E1", "dedicated", ["L1"])])
    overlapping = [batch("A", "L1", 1, 3), batch("B", "L1", 2, 4)]
    with pytest.raises(BatchError, match=r"A .* and B .* overlap on line L1"):
        allocate(overlapping, topo, READINGS, METROLOGY, at(0), at(8))
    with pytest.raises(BatchError, match="'A' appears twice"):
        allocate([batch("A", "L1", 1, 2), batch("A", "L2", 1, 2)], topo, READINGS, METROLOGY,
                 at(0), at(8))  # fmt: skip
