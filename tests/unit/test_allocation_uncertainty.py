"""GUM uncertainty of allocated energy, checked against numbers worked out by hand.

Constant-rate meters over 0–8 h; batch A runs on L1 1–3 h. Resolution 0.01 gives a reading
difference term √2·0.01/√12 = 0.01/√6 for every meter a batch draws on.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from collector.allocation.energy import allocate
from collector.allocation.topology import Topology
from collector.allocation.uncertainty import Budget, MeterUncertainty, combine, reading_difference_u
from tests.allocation_helpers import assign, at, batch, steady

pytestmark = pytest.mark.unit

RES = 0.01 / math.sqrt(6)  # resolution term of one meter's reading difference
BATCHES = [batch("A", "L1", 1, 3, 100), batch("C", "L2", 2, 5, 300)]


def cert(meter: str, group: str | None = None) -> MeterUncertainty:
    # U = 1 % at k = 2: u_rel = 0.5 %
    return MeterUncertainty.from_certificate(
        meter, resolution=0.01, expanded_rel=0.01, k=2, certificate_id=f"C-{meter}", group=group
    )


def u_of_a(assignments, rates: dict[str, float], metrology) -> tuple[float, float]:
    topo = Topology(idle_policy="overhead", assignments=assignments)
    readings = {m: steady(m, r) for m, r in rates.items()}
    (e,) = allocate(BATCHES, topo, readings, metrology, at(0), at(8)).batch("A").media
    assert e.expanded_uncertainty == pytest.approx(2 * e.standard_uncertainty)
    return e.quantity, e.standard_uncertainty


def test_the_basic_terms() -> None:
    assert reading_difference_u(0.01) == pytest.approx(0.01 / math.sqrt(6))
    assert cert("m").relative_u == pytest.approx(0.005)
    a = MeterUncertainty.from_accuracy_class("m", resolution=0.1, class_percent=1.0)
    assert a.relative_u == pytest.approx(0.01 / math.sqrt(3))
    assert "a/√3" in a.basis and a.calibration_status == "uncalibrated"
    assert combine([3, 4]) == pytest.approx(5)
    assert combine(correlated=[[1, 2]]) == pytest.approx(3)
    assert combine([3], [[1, 2], [4]]) == pytest.approx(math.sqrt(9 + 9 + 16))


def test_one_dedicated_meter() -> None:
    q, u = u_of_a([assign("E1", "dedicated", ["L1"])], {"E1": 10}, {"E1": cert("E1")})
    assert q == pytest.approx(20)
    assert u == pytest.approx(math.sqrt((0.005 * 20) ** 2 + RES**2))


def test_independent_meters_add_in_quadrature_shared_calibration_linearly() -> None:
    two = [assign("E1", "dedicated", ["L1"]), assign("E2", "dedicated", ["L1"])]
    rates = {"E1": 10, "E2": 20}  # A draws 20 and 40
    _, u = u_of_a(two, rates, {"E1": cert("E1"), "E2": cert("E2")})
    assert u == pytest.approx(math.sqrt(0.1**2 + 0.2**2 + 2 * RES**2))
    _, u = u_of_a(two, rates, {"E1": cert("E1", "lab"), "E2": cert("E2", "lab")})
    assert u == pytest.approx(math.sqrt((0.1 + 0.2) ** 2 + 2 * RES**2))


def test_a_sub_meter_sharing_the_main_meters_reference_does_not_cancel_its_error() -> None:
    # A shared reference makes errors move together only by the reference's part, which no
    # certificate states: the worst case over 0 <= r <= 1 for a difference is r = 0.
    residual = [assign("M", "residual", ["L1"], sub_meters=["E1"])]
    rates = {"M": 100, "E1": 10}  # A: main 200, sub 20, residual 180
    q, u = u_of_a(residual, rates, {"M": cert("M", "lab"), "E1": cert("E1", "lab")})
    assert q == pytest.approx(180)
    independent = math.sqrt(1.0**2 + 0.1**2 + 2 * RES**2)
    assert u == pytest.approx(independent)
    _, u = u_of_a(residual, rates, {"M": cert("M"), "E1": cert("E1")})
    assert u == pytest.approx(independent)


def test_same_reference_terms_of_the_same_sign_add_linearly_and_opposite_in_quadrature() -> None:
    budget = Budget(1)
    at0 = np.array([0])
    budget.correlated("lab", "M1", at0, np.array([3.0]))
    budget.correlated("lab", "M2", at0, np.array([1.0]))
    budget.correlated("lab", "S1", at0, np.array([-2.0]))
    budget.correlated("lab", "M1", at0, np.array([-1.0]))  # M1 with itself: its terms net first
    assert budget.u_c()[0] == pytest.approx(math.sqrt((2.0 + 1.0) ** 2 + 2.0**2))


def test_a_meter_counted_twice_is_correlated_with_itself() -> None:
    # E1 is dedicated to L1 and subtracted from M's residual on L1: its error cancels for A
    both = [assign("E1", "dedicated", ["L1"]), assign("M", "residual", ["L1"], sub_meters=["E1"])]
    q, u = u_of_a(both, {"M": 100, "E1": 10}, {"M": cert("M"), "E1": cert("E1")})
    assert q == pytest.approx(200)  # 20 + (200 − 20)
    assert u == pytest.approx(math.sqrt((0.005 * 200) ** 2 + 3 * RES**2))


def test_the_keys_own_uncertainty_is_a_relative_term() -> None:
    shared = [assign("S", "shared", ["L1", "L2"], key="run_time", key_uncertainty_rel=0.02)]
    q, u = u_of_a(shared, {"S": 30}, {"S": cert("S")})
    assert q == pytest.approx(45)  # 1–2 h alone 30, 2–3 h half of 30
    assert u == pytest.approx(math.sqrt((0.005 * 45) ** 2 + RES**2 + (0.02 * 45) ** 2))
