"""Register codec: Modbus register words <-> numbers, for every data type and ordering.

Pure and shared: the edge agent decodes with it and the simulators encode with it, so a
profile that round-trips here is read back exactly as it was served.
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


class Order(StrEnum):
    BIG = "big"  # high word (or byte) first, as Modbus itself sends 16-bit registers
    LITTLE = "little"  # low word (or byte) first


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


def register_count(dtype: DataType) -> int:
    return struct.calcsize(_STRUCT[dtype]) // 2


def is_float(dtype: DataType) -> bool:
    return dtype in (DataType.F32, DataType.F64)


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


def decode(
    words: Sequence[int],
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> int | float:
    """Decode the registers of one value, exactly as read in one request."""
    n = register_count(dtype)
    if len(words) != n:
        raise ValueError(f"{dtype} needs {n} registers, got {len(words)}")
    value: int | float = struct.unpack(_STRUCT[dtype], _to_bytes(words, word_order, byte_order))[0]
    return value


def encode(
    value: int | float,
    dtype: DataType,
    word_order: Order = Order.BIG,
    byte_order: Order = Order.BIG,
) -> list[int]:
    """Encode a number into registers; integers are rounded, out-of-range values are an error."""
    if is_float(dtype):
        data = struct.pack(_STRUCT[dtype], float(value))
    else:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"cannot encode {value} as {dtype}")
        try:
            data = struct.pack(_STRUCT[dtype], round(value))
        except struct.error as exc:
            raise ValueError(f"{value} does not fit {dtype}") from exc
    return _to_words(data, word_order, byte_order)


def hexwords(words: Sequence[int]) -> str:
    """The raw registers as sent on the wire, for evidence: '4499a000'."""
    return "".join(f"{w:04x}" for w in words)
