"""Batches and topology are validated at the door; the method text follows from the topology."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from collector.allocation.method_text import describe
from collector.allocation.topology import IdlePolicy, Topology
from collector.batches.model import Batch
from tests.allocation_helpers import T0, assign, at

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"end": T0}, "is not after start"),
        ({"start": datetime(2026, 1, 1)}, "timezone"),
        ({"declared_unit": "tonne"}, "declared_unit"),
        ({"produced_quantity": 0}, "produced_quantity"),
        ({"produced_quantity": float("nan")}, "produced_quantity"),
        ({"mass_kg": -1}, "mass_kg"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_field(kw, match) -> None:
    fields = {"id": "B1", "product_id": "p", "product_name": "P", "line": "L1",
              "start": at(0), "end": at(1), "produced_quantity": 1.0,
              "declared_unit": "kilogram", **kw}  # fmt: skip
    with pytest.raises(ValidationError, match=match):
        Batch(**fields)


def test_batch_times_are_kept_in_utc() -> None:
    b = Batch.model_validate({"id": "B1", "product_id": "p", "product_name": "P", "line": "L1",
                              "start": "2026-01-01T08:00:00+08:00", "end": "2026-01-01T01:00:00Z",
                              "produced_quantity": 1, "declared_unit": "piece"})  # fmt: skip
    assert b.start == T0 and b.start.tzinfo is not None and b.duration_s == 3600


@pytest.mark.parametrize(
    ("rule", "lines", "kw", "match"),
    [
        ("dedicated", ["L1", "L2"], {}, "serves exactly one line"),
        ("shared", ["L1", "L2"], {}, "needs a key"),
        ("shared", ["L1", "L1"], {"key": "run_time"}, "list a line twice"),
        ("shared", ["L1", "L2"], {"key": "fixed_shares", "fixed_shares": {"L1": 1.0}},
         "must name exactly the lines"),
        ("shared", ["L1", "L2"], {"key": "fixed_shares",
                                  "fixed_shares": {"L1": 0.5, "L2": 0.6}}, "sum to 1.1"),
        ("shared", ["L1"], {"key": "mass", "fixed_shares": {"L1": 1.0}}, "fixed_shares given"),
        ("residual", ["L1"], {}, "needs its sub_meters"),
        ("residual", ["L1"], {"sub_meters": ["m"]}, "exclude the meter"),
        ("shared", ["L1"], {"sub_meters": ["x"]}, "residual' only"),
        ("dedicated", ["L1"], {"valid_to": T0}, "valid_to must be after"),
    ],
)  # fmt: skip
def test_a_bad_assignment_is_refused_with_the_fix(rule, lines, kw, match) -> None:
    with pytest.raises(ValidationError, match=match):
        assign("m", rule, lines, **kw)


def test_overlapping_assignments_of_one_meter_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"meter m: .* overlap"):
        Topology(idle_policy="overhead", assignments=[assign("m", "dedicated", ["L1"]),
                                                      assign("m", "dedicated", ["L2"],
                                                             valid_from=at(5))])  # fmt: skip


def test_the_idle_policy_must_be_declared() -> None:
    with pytest.raises(ValidationError, match="idle_policy"):
        Topology(assignments=[assign("m", "dedicated", ["L1"])])  # type: ignore[call-arg]


def test_the_topology_gives_each_assignments_window_and_policy() -> None:
    a = assign("m", "dedicated", ["L1"], valid_from=at(2), valid_to=at(4))
    b = assign("m", "dedicated", ["L2"], valid_from=at(4), idle_policy="next_batch")
    topo = Topology(idle_policy="overhead", assignments=[a, b])
    assert topo.active(at(0), at(3)) == [(a, at(2), at(3))]
    assert [x for x, _, _ in topo.active(at(3), at(9))] == [a, b]
    assert topo.policy_of(a) is IdlePolicy.OVERHEAD and topo.policy_of(b) is IdlePolicy.NEXT_BATCH


def test_method_text_follows_iso_14044_order_and_names_every_meter() -> None:
    items = [
        (assign("S", "shared", ["L1", "L2"], key="mass", key_basis="energy ∝ mass heated"),
         IdlePolicy.SPREAD),
        (assign("F", "shared", ["L1", "L2"], key="fixed_shares",
                fixed_shares={"L1": 0.6, "L2": 0.4}), IdlePolicy.OVERHEAD),
        (assign("E", "dedicated", ["L1"]), IdlePolicy.NEXT_BATCH),
        (assign("M", "residual", ["L1"], sub_meters=["E"]), IdlePolicy.OVERHEAD),
    ]  # fmt: skip
    text = describe(items)
    avoided = text.index("Allocation avoided (subdivision)")
    physical = text.index("Partitioned by a physical relationship")
    other = text.index("Partitioned by another relationship")
    assert text.index("ISO 14044:2006, 4.3.4.2") < avoided < physical < other
    assert "meter E is dedicated to line L1" in text[avoided:physical]
    assert "residual of main meter M minus sub-meter(s) E" in text[avoided:physical]
    assert (
        "by mass produced in each interval (production assumed uniform over each batch); "
        "basis: energy ∝ mass heated"
    ) in text
    assert "fixed shares (L1 60.0%, L2 40.0%; basis: not stated)" in text[other:]
    assert "meter(s) F, M is reported as unallocated overhead" in text
    assert "meter(s) E goes to the next batch" in text
    assert "sum exactly to its metered consumption" in text
    assert "Economic allocation is not used" in text
