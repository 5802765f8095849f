import math
import struct

import pytest

from device_profiles import (
    DataType,
    InvalidBcdError,
    Order,
    decode,
    encode,
    hexwords,
    register_count,
)
from device_profiles.codec import (
    bit_pattern,
    encode_pattern,
    rollover,
    type_max_pattern,
    type_min_pattern,
)

pytestmark = pytest.mark.unit

B, L = Order.BIG, Order.LITTLE


@pytest.mark.parametrize(
    ("words", "dtype", "wo", "bo", "expected"),
    [
        ([0x4499, 0x1000], DataType.F32, B, B, 1224.5),  # SDM630 style ABCD
        ([0x1000, 0x4499], DataType.F32, L, B, 1224.5),  # CDAB: low word first (EM24, EK)
        ([0x9944, 0x0010], DataType.F32, B, L, 1224.5),  # BADC
        ([0x0010, 0x9944], DataType.F32, L, L, 1224.5),  # DCBA
        ([0xFFFF], DataType.I16, B, B, -1),
        ([0xFFFF], DataType.U16, B, B, 65535),
        ([0x0001, 0x0000], DataType.U32, B, B, 65536),
        ([0x0000, 0x0001], DataType.U32, L, B, 65536),
        ([0xFFFF, 0xFFFE], DataType.I32, B, B, -2),
        ([0, 0, 0x0001, 0x0000], DataType.I64, B, B, 65536),
        ([0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF], DataType.I64, B, B, 2**63 - 1),
    ],
)
def test_known_vectors(words, dtype, wo, bo, expected):
    assert decode(words, dtype, wo, bo) == expected
    assert encode(expected, dtype, wo, bo) == words


@pytest.mark.parametrize("dtype", list(DataType))
@pytest.mark.parametrize("wo", [B, L])
@pytest.mark.parametrize("bo", [B, L])
def test_round_trip_every_type_and_order(dtype, wo, bo):
    value = 1234.5 if dtype in (DataType.F32, DataType.F64) else 4321  # fits every type
    words = encode(value, dtype, wo, bo)
    assert len(words) == register_count(dtype)
    assert decode(words, dtype, wo, bo) == value


def test_float32_rounding_is_the_only_loss():
    truth = 152340.123456
    got = decode(encode(truth, DataType.F32), DataType.F32)
    assert got == struct.unpack(">f", struct.pack(">f", truth))[0]
    assert got != truth


def test_nan_decodes_as_nan():
    assert math.isnan(decode([0x7FC0, 0x0000], DataType.F32))


def test_wrong_register_count_is_an_error():
    with pytest.raises(ValueError, match="f32 needs 2 registers, got 1"):
        decode([0x4499], DataType.F32)


def test_out_of_range_integer_is_an_error():
    with pytest.raises(ValueError, match="does not fit u16"):
        encode(70000, DataType.U16)


def test_hexwords():
    assert hexwords([0x4499, 0x1000]) == "44991000"


# --- packed BCD ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("words", "dtype", "wo", "bo", "expected"),
    [
        ([0x1234], DataType.BCD16, B, B, 1234),
        ([0x3412], DataType.BCD16, B, L, 1234),
        ([0x0012, 0x3456], DataType.BCD32, B, B, 123456),
        ([0x3456, 0x0012], DataType.BCD32, L, B, 123456),  # low word first
        ([0x0000, 0x1243, 0x1116], DataType.BCD48, B, B, 12431116),  # FXGasFlow 1243.1116
        ([0x1116, 0x1243, 0x0000], DataType.BCD48, L, B, 12431116),
        ([0x9999, 0x9999, 0x9999], DataType.BCD48, B, B, 999_999_999_999),
    ],
)
def test_bcd_vectors(words, dtype, wo, bo, expected):
    assert decode(words, dtype, wo, bo) == expected
    assert encode(expected, dtype, wo, bo) == words


@pytest.mark.parametrize("words", [[0x12A4], [0xFFFF], [0x000F]])
def test_bcd_nibble_above_nine_is_no_number(words):
    with pytest.raises(InvalidBcdError, match="nibble above 9"):
        decode(words, DataType.BCD16)


@pytest.mark.parametrize(("value", "dtype"), [(10_000, DataType.BCD16), (-1, DataType.BCD32)])
def test_bcd_out_of_range_is_an_error(value, dtype):
    with pytest.raises(ValueError, match="decimal digits, unsigned"):
        encode(value, dtype)


def test_bcd_register_counts():
    assert [register_count(t) for t in (DataType.BCD16, DataType.BCD32, DataType.BCD48)] == [
        1,
        2,
        3,
    ]


# --- bit patterns, sentinels, rollover -----------------------------------------------------
@pytest.mark.parametrize(
    ("dtype", "top", "bottom", "roll"),
    [
        (DataType.U16, 0xFFFF, None, 2**16),
        (DataType.I16, 0x7FFF, 0x8000, 2**15),
        (DataType.U32, 0xFFFF_FFFF, None, 2**32),
        (DataType.I64, 2**63 - 1, 2**63, 2**63),
        (DataType.BCD32, 0x9999_9999, None, 10**8),
        (DataType.F32, None, None, None),
    ],
)
def test_type_limits(dtype, top, bottom, roll):
    assert (type_max_pattern(dtype), type_min_pattern(dtype), rollover(dtype)) == (
        top,
        bottom,
        roll,
    )


@pytest.mark.parametrize("wo", [B, L])
@pytest.mark.parametrize("bo", [B, L])
def test_bit_pattern_is_the_inverse_of_encode_pattern(wo, bo):
    pattern = 0x8000_0000_0000_0001
    words = encode_pattern(pattern, DataType.I64, wo, bo)
    assert bit_pattern(words, DataType.I64, wo, bo) == pattern
    assert decode(words, DataType.I64, wo, bo) == -(2**63) + 1


def test_pattern_too_wide_is_an_error():
    with pytest.raises(ValueError, match="does not fit u16"):
        encode_pattern(0x1_0000, DataType.U16)
