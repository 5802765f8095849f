"""A resolved register (a `Point`): everything needed to read and interpret one value.

Profiles (schema.py) are what people write; points are what the planner, the decoder and the
simulators use, with the profile's defaults applied and the type's sentinels resolved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .codec import DataType, InvalidBcdError, Order, bit_pattern, decode, is_float, register_count
from .vocabulary import Kind


class Function(StrEnum):
    HOLDING = "holding"  # FC03
    INPUT = "input"  # FC04

    @property
    def code(self) -> int:
        return 3 if self is Function.HOLDING else 4


class Ratio(StrEnum):
    """An instrument transformer ratio: primary / secondary."""

    CT = "ct"  # current transformer
    VT = "vt"  # voltage (potential) transformer


class Transform(StrEnum):
    """Which ratios turn a secondary-side register into the primary-side quantity."""

    CT = "ct"  # currents
    VT = "vt"  # voltages
    CT_VT = "ct_vt"  # power and energy

    @property
    def ratios(self) -> tuple[Ratio, ...]:
        return {
            Transform.CT: (Ratio.CT,),
            Transform.VT: (Ratio.VT,),
            Transform.CT_VT: (Ratio.CT, Ratio.VT),
        }[self]


@dataclass(frozen=True, slots=True)
class Ratios:
    """CT/VT ratios of one installed device, from its configuration (`ct_ratio`, `vt_ratio`).

    A ratio given here overrides the one the profile reads from the meter's own registers: the
    installer states what is fitted when the meter's programming is wrong or absent.
    """

    ct: float | None = None
    vt: float | None = None

    def __post_init__(self) -> None:
        for name in ("ct", "vt"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name}_ratio must be a positive number (primary/secondary)")

    def get(self, ratio: Ratio) -> float | None:
        return self.ct if ratio is Ratio.CT else self.vt


NO_RATIOS = Ratios()


@dataclass(frozen=True, slots=True)
class Point:
    """A register with the profile's defaults applied: everything needed to read one value.

    `wrap` and `max_rate_per_h` are in the register's scaled unit, before any CT/VT transform
    (the decoder multiplies them by the same ratio as the value). `ratio_of` marks a point that
    reads the meter's own CT or VT ratio rather than a quantity; it is never published.
    """

    quantity: str
    unit: str
    kind: Kind
    function: Function
    address: int
    type: DataType
    word_order: Order
    byte_order: Order
    scale: float
    offset: float
    na: frozenset[int] = frozenset()  # raw bit patterns that mean "not available"
    valid_range: tuple[float, float] | None = None
    wrap: float | None = None
    max_rate_per_h: float | None = None
    transform: Transform | None = None
    ratio_of: Ratio | None = None

    @property
    def count(self) -> int:
        return register_count(self.type)

    @property
    def end(self) -> int:
        return self.address + self.count

    def scaled(self, words: Sequence[int]) -> float | None:
        """raw × scale + offset, or None when the registers hold no number.

        No number: one of the profile's N/A sentinels, a float NaN or infinity, or BCD with a
        nibble above 9. The CT/VT transform is not applied here (it may need other registers).
        """
        if self.na and bit_pattern(words, self.type, self.word_order, self.byte_order) in self.na:
            return None
        try:
            number = float(decode(words, self.type, self.word_order, self.byte_order))
        except InvalidBcdError:
            return None
        if not math.isfinite(number):
            return None
        value = number * self.scale + self.offset
        return value if is_float(self.type) else exact(value)

    def in_range(self, value: float) -> bool:
        return self.valid_range is None or self.valid_range[0] <= value <= self.valid_range[1]


def exact(value: float) -> float:
    """Drop binary noise an integer register cannot have: 88312119 × 0.01 is 883121.19, not
    883121.1900000001."""
    return float(f"{value:.15g}")
