import asyncio
import itertools
import math

import pytest

from device_profiles import (
    NO_RATIOS,
    DataType,
    Function,
    Kind,
    Order,
    Point,
    Ratios,
    decode,
    encode,
    find_profile,
)
from edge_agent.errors import CommError
from edge_agent.planning import (
    NextWord,
    PlanError,
    Settled,
    Torn,
    decode_block,
    decode_poll,
    plan_profile,
    plan_reads,
    read_block,
    torn_read_guard,
)
from metertrace.wire import Quality, Reading

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


# --- single-register devices and the torn-read guard ---------------------------------------
def test_single_register_device_gets_one_request_per_register():
    points = [pt("a", 0, DataType.U32), pt("b", 2, DataType.U16), pt("c", 3, DataType.I64)]
    blocks = plan_reads(points, max_block=125, max_gap=10, single_register_only=True)
    assert [(b.address, b.count, b.guarded, b.requests) for b in blocks] == [
        (0, 2, True, 3),  # hi, lo, hi
        (2, 1, False, 1),
        (3, 4, True, 7),  # w3 w2 w1 w0 w1 w2 w3
    ]


def test_guard_read_order_and_word_addresses():
    big = plan_reads([pt("a", 10, DataType.U32)], max_block=1, max_gap=0, single_register_only=True)
    little = plan_reads(
        [
            Point(
                "a",
                "kWh",
                Kind.COUNTER,
                Function.HOLDING,
                10,
                DataType.U32,
                Order.LITTLE,
                Order.BIG,
                1.0,
                0.0,
            )
        ],
        max_block=1,
        max_gap=0,
        single_register_only=True,
    )
    assert [big[0].word_address(s) for s in (1, 0)] == [10, 11]  # high word at the lower address
    assert [little[0].word_address(s) for s in (1, 0)] == [11, 10]
    reads: list[int] = []
    order = []
    while isinstance(step := torn_read_guard(reads, words=4, attempts=1), NextWord):
        order.append(step.significance)
        reads.append(0)
    assert order == [3, 2, 1, 0, 1, 2, 3]


def _words(value: int, n: int) -> list[int]:
    """Most significant first."""
    return [(value >> (16 * s)) & 0xFFFF for s in reversed(range(n))]


def _run_guard(start: int, increments: tuple[int, ...], n: int, attempts: int):
    """Read a counter that rises by increments[k] just before read k (k >= 1); return the
    outcome and the true value at each read."""
    reads, truths, value, k = [], [], start, 0
    while isinstance(step := torn_read_guard(reads, words=n, attempts=attempts), NextWord):
        if k:
            value += increments[k - 1] if k - 1 < len(increments) else 0
        truths.append(value)
        reads.append(_words(value, n)[n - 1 - step.significance])
        k += 1
    return step, truths


@pytest.mark.parametrize(
    ("n", "start", "steps", "attempts"),
    [
        (2, 0x0001_FFFD, (0, 1, 3, 0x1_0000), 2),  # 32-bit, around carries into the high word
        (3, 0x0001_FFFF_FFFE, (0, 1, 0x1_0000), 2),  # 48-bit (bcd48-sized), carries in two words
        (4, 0x0000_0001_FFFF_FFFE, (0, 2, 0x1_0000), 1),  # 64-bit around a double carry
    ],
)
def test_torn_read_guard_exhaustively(n, start, steps, attempts):
    """Every sequence of increments between reads: a settled value is the counter's true value
    at one instant (when its low word was read); Torn only when every attempt saw a change."""
    stride, max_reads = 2 * n - 2, 1 + attempts * (2 * n - 2)
    outcomes = {"settled": 0, "torn": 0}

    def word(value: int, s: int) -> int:
        return (value >> (16 * s)) & 0xFFFF

    for incs in itertools.product(steps, repeat=max_reads - 1):
        step, truths = _run_guard(start, incs, n, attempts)
        if isinstance(step, Settled):
            value = int.from_bytes(b"".join(w.to_bytes(2, "big") for w in step.words), "big")
            accepted = (len(truths) - (2 * n - 1)) // stride  # the attempt that settled
            assert value == truths[accepted * stride + n - 1], (incs, hex(value))
            outcomes["settled"] += 1
        else:
            assert isinstance(step, Torn) and len(truths) == max_reads
            for a in range(attempts):  # each attempt really saw an upper word change
                w = truths[a * stride : a * stride + 2 * n - 1]
                assert any(word(w[n - 1 - s], s) != word(w[n - 1 + s], s) for s in range(1, n))
            outcomes["torn"] += 1
    assert outcomes["settled"] and outcomes["torn"]  # both outcomes were exercised


def test_unchanging_value_settles_in_2n_minus_1_reads():
    for n in (1, 2, 3, 4):
        step, truths = _run_guard(0x1234_5678_9ABC_DEF0 % (1 << (16 * n)), (), n, 3)
        assert isinstance(step, Settled) and len(truths) == 2 * n - 1


def test_guard_rejects_nonsense_arguments():
    with pytest.raises(ValueError):
        torn_read_guard([], words=0, attempts=3)


class ScriptedReader:
    """A RegisterReader over an in-memory counter that rises by `step` before every request."""

    def __init__(self, value: int, step: int, *, dtype: DataType, word_order: Order) -> None:
        self.value, self.step, self.dtype, self.wo = value, step, dtype, word_order
        self.requests: list[tuple[int, int]] = []

    async def read(self, function: Function, address: int, count: int) -> list[int]:
        self.requests.append((address, count))
        self.value += self.step
        words = encode(self.value, self.dtype, self.wo)
        return words[address - 100 : address - 100 + count]

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("wo", [Order.BIG, Order.LITTLE])
def test_read_block_assembles_guarded_words_in_wire_order(wo):
    p = Point(
        "e", "kWh", Kind.COUNTER, Function.HOLDING, 100, DataType.U32, wo, Order.BIG, 1.0, 0.0
    )
    (block,) = plan_reads([p], max_block=1, max_gap=0, single_register_only=True)
    reader = ScriptedReader(0x0002_0000, 0, dtype=DataType.U32, word_order=wo)
    words = asyncio.run(read_block(reader, block, device="d"))
    assert decode(words, DataType.U32, wo) == 0x0002_0000
    assert [c for _, c in reader.requests] == [1, 1, 1]


def test_read_block_gives_up_on_a_value_that_keeps_changing():
    (block,) = plan_reads(
        [pt("e", 100, DataType.U32)], max_block=1, max_gap=0, single_register_only=True
    )
    reader = ScriptedReader(0, 0x1_0000, dtype=DataType.U32, word_order=Order.BIG)  # carries always
    with pytest.raises(CommError, match="changed during each of 3 guarded reads"):
        asyncio.run(read_block(reader, block, device="d"))
    assert len(reader.requests) == 1 + 3 * 2


# --- decoding a poll: sentinels, ranges, ratios ----------------------------------------------
def _poll(profile_id: str, ratios: Ratios = NO_RATIOS, **values):
    """Encode values (or a raw word list) for each quantity as the meter would, then decode."""
    profile = find_profile(profile_id)
    plan = plan_profile(profile, ratios)
    answers = []
    for b in plan:
        words = [0] * b.count
        for p in b.points:
            v = values.get(p.quantity.replace(".", "_"), 1.0)
            if v is None:
                answers.append(None)
                break
            w = (
                v
                if isinstance(v, list)
                else encode(v / p.scale, p.type, p.word_order, p.byte_order)
            )
            words[p.address - b.address : p.end - b.address] = w
        else:
            answers.append(words)
    return {d.point.quantity: d for d in decode_poll(plan, answers, ratios)}


def test_sentinel_nan_and_bad_bcd_are_not_available():
    pm = _poll("schneider-pm5xxx", energy_active_import=[0x8000, 0, 0, 0], current_l1=[0x7FC0, 0])
    assert pm["energy.active.import"].quality is Quality.NOT_AVAILABLE
    assert pm["energy.active.import"].value is None and pm["energy.active.import"].raw
    assert pm["current.l1"].quality is Quality.NOT_AVAILABLE
    gas = _poll("fuxin-gas-flow-computer", volume_gas_standard=[0x0000, 0x12F3, 0x1116])
    assert (gas["volume.gas.standard"].quality, gas["volume.gas.standard"].value) == (
        Quality.NOT_AVAILABLE,
        None,
    )


def test_out_of_range_keeps_the_value():
    d = _poll("chint-dtsu666", frequency=70.0)["frequency"]
    assert (d.quality, d.value) == (Quality.OUT_OF_RANGE, 70.0)


def test_ratios_from_the_meter_and_from_config():
    meter = _poll(
        "chint-dtsu666", ratio_ct=40.0, ratio_vt=10.0, current_l1=2.5, energy_active_import=10.0
    )
    assert meter["current.l1"].value == 100.0  # 2.5 A secondary × CT 40
    assert meter["energy.active.import"].value == 4000.0  # × CT 40 × VT 10
    assert meter["energy.active.import"].factor == 400.0
    assert meter["frequency"].factor == 1.0
    override = _poll("chint-dtsu666", Ratios(ct=20), ratio_ct=40.0, ratio_vt=10.0, current_l1=2.5)
    assert override["current.l1"].value == 50.0  # the device config's CT wins


def test_unreadable_ratio_is_a_comm_error_and_a_bad_one_not_available():
    failed = _poll("chint-dtsu666", ratio_ct=None, frequency=50.0)
    assert failed["current.l1"].quality is Quality.COMM_ERROR and failed["current.l1"].value is None
    assert failed["frequency"].quality is Quality.GOOD  # needs no ratio
    zero = _poll("chint-dtsu666", ratio_ct=0.0, ratio_vt=10.0)
    assert zero["current.l1"].quality is Quality.NOT_AVAILABLE
    assert zero["voltage.l1n"].quality is Quality.GOOD


def test_config_ratios_are_required_when_the_meter_does_not_provide_them():
    with pytest.raises(PlanError, match="set ct_ratio and vt_ratio"):
        plan_profile(find_profile("acrel-dtsd1352"))
    d = _poll("acrel-dtsd1352", Ratios(ct=40, vt=10), current_l1=5.0)["current.l1"]
    assert d.value == 200.0


def test_failed_block_gives_comm_errors_without_values():
    readings = _poll("eastron-sdm630", voltage_l1n=None)
    assert {d.quality for d in readings.values()} >= {Quality.COMM_ERROR}
    assert all(
        d.value is None and d.raw is None
        for d in readings.values()
        if d.quality is Quality.COMM_ERROR
    )
    assert readings["energy.active.total"].quality is Quality.GOOD  # its own block answered


def test_reading_dict_is_a_valid_wire_reading():
    d = _poll("synthetic-single-register-meter", voltage_l1n=[0xFFFF])["voltage.l1n"]
    assert Reading.model_validate(d.reading()).quality is Quality.NOT_AVAILABLE
