"""DL/T 645-2007 meter profiles: one data identifier (DI) per quantity, values in BCD.

A DL/T 645 meter has no registers: the master asks for one DI per request and the meter answers
with that value as packed BCD, lowest byte first, in a fixed format such as XXXXXX.XX (six
integer and two decimal digits). The format is part of the profile, like a Modbus data type.
Power, current and power factor are signed: the top bit of the most significant byte is the sign.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .schema import Profile, ProfileHeader, each_quantity_once
from .vocabulary import Kind, quantity

_FORMAT_RE = re.compile(r"^(X+)(?:\.(X+))?$")


@dataclass(frozen=True, slots=True)
class ValueFormat:
    """A DL/T 645 number format, e.g. XXXXXX.XX: digits in total and how many are decimals."""

    text: str
    digits: int
    decimals: int

    @classmethod
    def parse(cls, text: str) -> ValueFormat:
        m = _FORMAT_RE.match(text)
        if m is None:
            raise ValueError(f"format {text!r} is not like XXXXXX.XX (X digits, one optional '.')")
        integer, fraction = m.group(1), m.group(2) or ""
        digits = len(integer) + len(fraction)
        if digits % 2:
            raise ValueError(f"format {text!r} has {digits} digits; BCD packs two per byte")
        return cls(text, digits, len(fraction))

    @property
    def size(self) -> int:
        """Bytes on the wire."""
        return self.digits // 2

    @property
    def step(self) -> float:
        """The value of one unit in the last digit."""
        return float(10**-self.decimals)


def decode_bcd(data: bytes, fmt: ValueFormat, *, signed: bool) -> float | None:
    """The number in data (lowest byte first); None when a nibble is not a decimal digit."""
    if len(data) != fmt.size:
        raise ValueError(f"format {fmt.text} needs {fmt.size} bytes, got {len(data)}")
    big = bytearray(reversed(data))
    negative = signed and bool(big[0] & 0x80)
    if signed:
        big[0] &= 0x7F
    digits = big.hex()
    if not digits.isdigit():
        return None  # e.g. FF FF: the meter has no number here
    value: float = int(digits) / 10**fmt.decimals
    return -value if negative else value


def encode_bcd(value: float, fmt: ValueFormat, *, signed: bool) -> bytes:
    """value rounded to the format's decimals, as BCD lowest byte first."""
    units = round(abs(value) * 10**fmt.decimals)
    if value < 0 and not signed:
        raise ValueError(f"{value} is negative but the format {fmt.text} is unsigned")
    text = f"{units:0{fmt.digits}d}"
    if len(text) > fmt.digits or (signed and text[0] > "7"):
        raise ValueError(f"{value} does not fit the format {fmt.text}")
    big = bytearray(bytes.fromhex(text))
    if value < 0 and units:
        big[0] |= 0x80
    return bytes(reversed(big))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dlt645Serial(_Strict):
    """The meter's factory serial settings; a device's transport may override them."""

    baudrate: int = Field(2400, description="1200, 2400 and 9600 are common")
    parity: Literal["N", "E", "O"] = "E"

    @field_validator("baudrate")
    @classmethod
    def _standard_rate(cls, v: int) -> int:
        if v not in (600, 1200, 2400, 4800, 9600, 19200):
            raise ValueError(f"baudrate {v} is not a DL/T 645 rate (1200, 2400, 4800, 9600, ...)")
        return v


class Dlt645Register(_Strict):
    quantity: str
    di: str = Field(description="data identifier DI3 DI2 DI1 DI0 as 8 hex digits, e.g. 00010000")
    format: str = Field(description="BCD format as in the standard, e.g. XXXXXX.XX")
    unit: str
    signed: bool = Field(False, description="top bit of the top byte is the sign")
    scale: float = 1.0

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, v: str) -> str:
        try:
            quantity(v)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return v

    @field_validator("di")
    @classmethod
    def _di(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9A-Fa-f]{8}", v):
            raise ValueError(f"di {v!r} is not 8 hex digits (DI3 DI2 DI1 DI0, e.g. '00010000')")
        return v.upper()

    @field_validator("format")
    @classmethod
    def _format(cls, v: str) -> str:
        ValueFormat.parse(v)
        return v

    @model_validator(mode="after")
    def _unit_matches_vocabulary(self) -> Dlt645Register:
        expected = quantity(self.quantity).unit
        if self.unit != expected:
            raise ValueError(
                f"unit {self.unit!r} is not the unit of {self.quantity} ({expected!r}); "
                f"write unit: {expected} and convert with scale"
            )
        if self.scale == 0:
            raise ValueError("scale 0 would turn every reading into 0; use the meter's factor")
        return self


@dataclass(frozen=True, slots=True)
class Dlt645Point:
    """One DI with everything needed to read and decode it."""

    quantity: str
    unit: str
    kind: Kind
    di: str
    format: ValueFormat
    signed: bool
    scale: float

    def decode(self, data: bytes) -> float | None:
        number = decode_bcd(data, self.format, signed=self.signed)
        # 1234567 / 100 * 1 is exact in decimal; keep it that way for scale 1
        return None if number is None else float(f"{number * self.scale:.15g}")


class Dlt645Profile(ProfileHeader):
    protocol: Literal["dlt645"]
    dlt645: Dlt645Serial = Dlt645Serial()
    registers: list[Dlt645Register] = Field(min_length=1)

    @model_validator(mode="after")
    def _each_once(self) -> Dlt645Profile:
        each_quantity_once([r.quantity for r in self.registers])
        dis: dict[str, int] = {}
        for i, r in enumerate(self.registers):
            if r.di in dis:
                raise ValueError(
                    f"registers[{i}]: di {r.di} is already read by registers[{dis[r.di]}]"
                )
            dis[r.di] = i
        return self

    def points(self) -> list[Dlt645Point]:
        return [
            Dlt645Point(
                quantity=r.quantity,
                unit=r.unit,
                kind=quantity(r.quantity).kind,
                di=r.di,
                format=ValueFormat.parse(r.format),
                signed=r.signed,
                scale=r.scale,
            )
            for r in self.registers
        ]


# Every profile the loader returns; code that needs one protocol narrows with isinstance.
AnyProfile = Profile | Dlt645Profile
