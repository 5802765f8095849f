import math

import pytest

from device_profiles import DataType, Function, Kind, Order, Point, encode, find_profile
from edge_agent.planning import PlanError, decode_block, plan_reads

pytestmark = pytest.mark.unit


def pt(
    q: str,
    address: int,
    dtype: DataType = DataType.F32,
    fc: Function = Function.HOLDING,
    scale: float = 1.0,
) -> Point:
    return Point(q, "kWh", Kind.COUNTER, fc, address, dtype, Order.BIG, Order.BIG, scale, 0.0)


def spans(blocks):
    return [(b.function.code, b.address, b.count) for b in blocks]


def test_contiguous_points_make_one_request():
    blocks = plan_reads([pt("a", 0), pt("b", 2), pt("c", 4)], max_block=125, max_gap=0)
    assert spans(blocks) == [(3, 0, 6)]


def test_gap_within_limit_is_read_through_and_beyond_it_splits():
    points = [pt("a", 0), pt("b", 12), pt("c", 40)]
    assert spans(plan_reads(points, max_block=125, max_gap=10)) == [(3, 0, 14), (3, 40, 2)]
    assert spans(plan_reads(points, max_block=125, max_gap=0)) == [
        (3, 0, 2),
        (3, 12, 2),
        (3, 40, 2),
    ]


def test_block_limit_never_splits_a_value():
    points = [pt(str(i), i * 2) for i in range(5)]  # 10 registers
    blocks = plan_reads(points, max_block=3, max_gap=0)
    assert spans(blocks) == [(3, 0, 2), (3, 2, 2), (3, 4, 2), (3, 6, 2), (3, 8, 2)]
    assert all(len(b.points) == 1 for b in blocks)


def test_value_larger_than_block_is_refused():
    with pytest.raises(PlanError, match="needs 4 registers in one read but max_block is 2"):
        plan_reads([pt("a", 0, DataType.I64)], max_block=2, max_gap=0)


def test_function_codes_are_planned_separately_and_order_is_irrelevant():
    points = [pt("b", 2, fc=Function.INPUT), pt("a", 0), pt("c", 0, fc=Function.INPUT)]
    assert spans(plan_reads(points, max_block=125, max_gap=0)) == [(3, 0, 2), (4, 0, 4)]


def test_sdm630_plan_is_minimal():
    p = find_profile("eastron-sdm630")
    blocks = plan_reads(p.points(), max_block=p.modbus.max_block, max_gap=p.modbus.max_gap)
    # 0x0000..0x004F in one read, the total at 0x0156 in a second: the minimum for this map
    assert spans(blocks) == [(4, 0, 0x50), (4, 0x156, 2)]


def test_decode_block_applies_scale_and_keeps_raw():
    block = plan_reads(
        [pt("a", 0), pt("b", 2, DataType.U32, scale=0.01)], max_block=125, max_gap=0
    )[0]
    words = encode(1224.5, DataType.F32) + encode(88312119, DataType.U32)
    a, b = decode_block(block, words)
    assert (a.value, a.raw) == (1224.5, "44991000")
    assert b.value == 883121.19  # no binary noise such as 883121.1900000001


def test_nan_register_has_no_value():
    block = plan_reads([pt("a", 0)], max_block=125, max_gap=0)[0]
    (d,) = decode_block(block, [0x7FC0, 0x0000])
    assert d.value is None and d.raw == "7fc00000"


def test_short_answer_is_an_error():
    block = plan_reads([pt("a", 0)], max_block=125, max_gap=0)[0]
    with pytest.raises(PlanError):
        decode_block(block, [1])
    assert math.isfinite(decode_block(block, [0, 0])[0].value or 0)
