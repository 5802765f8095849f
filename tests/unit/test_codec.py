import math
import struct

import pytest

from device_profiles import DataType, Order, decode, encode, hexwords, register_count

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
    value = 1234.5 if dtype in (DataType.F32, DataType.F64) else 4321
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
