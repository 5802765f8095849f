"""Register codec: Modbus register words <-> numbers, for every data type and ordering.

Pure and shared: the edge agent decodes with it and the simulators encode with it, so a
profile that round-trips here is read back exactly as it was served.

Packed BCD (`bcd16`, `bcd32`, `bcd48`: 4, 8 or 12 decimal digits in 1, 2 or 3 registers) is
unsigned; its bytes follow the same word and byte order as any other type. A nibble above 9 is
not a number: `decode` raises `InvalidBcdError`, which the agent reports as `not_available`
(the meter answered, so it is no communication error, but what it answered is no value).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from enum import StrEnum


class DataType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    I32 = "i32"
    U64 = "u64"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    BCD16 = "bcd16"
    BCD32 = "bcd32"
    BCD48 = "bcd48"


class Order(StrEnum):
    BIG = "big"  # high word (or byte) first, as Modbus itself sends 16-bit registers
    LITTLE = "little"  # low word (or byte) first


class InvalidBcdError(ValueError):
    """Registers declared BCD hold a nibble above 9: they carry no decimal number."""


_STRUCT = {
    DataType.U16: ">H",
    DataType.I16: ">h",
    DataType.U32: ">I",
    DataType.I32: ">i",
    DataType.U64: ">Q",
    DataType.I64: ">q",
    DataType.F32: ">f",
    DataType.F64: ">d",
}
_BCD_WORDS = {DataType.BCD16: 1, DataType.BCD32: 2, DataType.BCD48: 3}


def register_count(dtype: DataType) -> int:
    if dtype in _BCD_WORDS:
        return _BCD_WORDS[dtype]
    return struct.calcsize(_STRUCT[dtype]) // 2


def is_float(dtype: DataType) -> bool:
    return dtype in (DataType.F32, DataType.F64)


def is_bcd(dtype: DataType) -> bool:
    return dtype in _BCD_WORDS


def is_signed(dtype: DataType) -> bool:
    return dtype in (DataType.I16, DataType.I32, DataType.I64)


def bit_width(dtype: DataType) -> int:
    return 16 * register_count(dtype)


def type_max_pattern(dtype: DataType) -> int | None:
    """The bit pattern of the type's largest value (all nines for BCD); None for floats."""
    if is_float(dtype):
        return None
    if is_bcd(dtype):
        return int("9" * 4 * register_count(dtype), 16)
    bits = bit_width(dtype)
    return (1 << (bits - 1)) - 1 if is_signed(dtype) else (1 << bits) - 1


def type_min_pattern(dtype: DataType) -> int | None:
    """The bit pattern of a signed type's smallest value (0x8000...); None otherwise."""
    return 1 << (bit_width(dtype) - 1) if is_signed(dtype) else None


def rollover(dtype: DataType) -> int | None:
    """The raw count an integer register cannot show (it shows 0 instead); None for floats.

    A signed register's positive range ends at 2^(bits-1): a total that passes it turns
    negative, so that is where it stops counting upwards.
    """
    if is_float(dtype):
        return None
    if is_bcd(dtype):
        return int(10 ** (4 * register_count(dtype)))
    bits = bit_width(dtype)
    return 1 << (bits - 1) if is_signed(dtype) else 1 << bits


def _to_bytes(words: Sequence[int], word_order: Order, byte_order: Order) -> bytes:
    ordered = list(words) if word_order is Order.BIG else list(reversed(words))
    out = bytearray()
    for w in ordered:
        if not 0 <= w <= 0xFFFF:
            raise ValueError(f"register value {w} is not a 16-bit word")
        hi, lo = w >> 8, w & 0xFF
        out += bytes((hi, lo)) if byte_order is Order.BIG else bytes((lo, hi))
    return bytes(out)


def _to_words(data: bytes, word_order: Order, byte_order: Order) -> list[int]:
    words = []
    for i in range(0, len(data), 2):
        a, b = data[i], data[i + 1]
        words.append((a << 8 | b) if byte_order is Order.BIG else (b << 8 | a))
    return words if word_order is Order.BIG else list(reversed(words))


def _check_count(words: Sequence[int], dtype: DataType) -> None:
    n = register_count(dtype)
    if len(words) != n:
        raise ValueError(f"{dtype} needs {n} registers, got {len(words)}")


def bit_pattern(
    words: Sequence[int],
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> int:
    """The value's bytes, most significant first, as one unsigned integer (for N/A sentinels)."""
    _check_count(words, dtype)
    return int.from_bytes(_to_bytes(words, word_order, byte_order), "big")


def decode(
    words: Sequence[int],
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> int | float:
    """Decode the registers of one value, exactly as read in one request."""
    _check_count(words, dtype)
    data = _to_bytes(words, word_order, byte_order)
    if is_bcd(dtype):
        digits = data.hex()
        if not digits.isdigit():
            raise InvalidBcdError(f"{dtype} registers {digits} hold a nibble above 9")
        return int(digits)
    value: int | float = struct.unpack(_STRUCT[dtype], data)[0]
    return value


def encode(
    value: int | float,
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> list[int]:
    """Encode a number into registers; integers are rounded, out-of-range values are an error."""
    if is_float(dtype):
        return _to_words(struct.pack(_STRUCT[dtype], float(value)), word_order, byte_order)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot encode {value} as {dtype}")
    if is_bcd(dtype):
        n = 4 * register_count(dtype)
        number = round(value)
        if not 0 <= number < 10**n:
            raise ValueError(f"{value} does not fit {dtype} ({n} decimal digits, unsigned)")
        return _to_words(bytes.fromhex(f"{number:0{n}d}"), word_order, byte_order)
    try:
        data = struct.pack(_STRUCT[dtype], round(value))
    except struct.error as exc:
        raise ValueError(f"{value} does not fit {dtype}") from exc
    return _to_words(data, word_order, byte_order)


def encode_pattern(
    pattern: int, dtype: DataType, word_order: Order = Order.BIG, byte_order: Order = Order.BIG
) -> list[int]:
    """The registers holding a raw bit pattern (the inverse of bit_pattern)."""
    nbytes = 2 * register_count(dtype)
    if not 0 <= pattern < 1 << (8 * nbytes):
        raise ValueError(f"pattern {pattern:#x} does not fit {dtype}")
    return _to_words(pattern.to_bytes(nbytes, "big"), word_order, byte_order)


def hexwords(words: Sequence[int]) -> str:
    """The raw registers as sent on the wire, for evidence: '4499a000'."""
    return "".join(f"{w:04x}" for w in words)
