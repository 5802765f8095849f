"""The schema of a device profile: one meter's register map, strictly validated."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .codec import DataType, Order, register_count
from .vocabulary import MEDIA, Kind, quantity


class Function(StrEnum):
    HOLDING = "holding"  # FC03
    INPUT = "input"  # FC04

    @property
    def code(self) -> int:
        return 3 if self is Function.HOLDING else 4


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    function: Function = Function.HOLDING
    type: DataType = DataType.U16
    word_order: Order = Order.BIG
    byte_order: Order = Order.BIG


class ModbusSettings(_Strict):
    max_block: int = Field(125, ge=1, le=125, description="registers per read request")
    max_gap: int = Field(0, ge=0, le=124, description="unused registers a read may span")


class ReferenceConditions(_Strict):
    """Base conditions of a gas standard volume; stated on every gas profile."""

    temperature_c: float = Field(ge=-50, le=50)
    pressure_kpa: float = Field(gt=0)


class Register(_Strict):
    quantity: str
    address: int = Field(ge=0, le=0xFFFF)
    unit: str
    function: Function | None = None
    type: DataType | None = None
    word_order: Order | None = None
    byte_order: Order | None = None
    scale: float = 1.0
    offset: float = 0.0

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, v: str) -> str:
        try:
            quantity(v)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return v

    @model_validator(mode="after")
    def _unit_matches_vocabulary(self) -> Register:
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
class Point:
    """A register with the profile's defaults applied: everything needed to read one value."""

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

    @property
    def count(self) -> int:
        return register_count(self.type)

    @property
    def end(self) -> int:
        return self.address + self.count


class Profile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")
    manufacturer: str
    model: str
    medium: str
    protocol: Literal["modbus"] = "modbus"
    source: str = Field(min_length=3, description="where the register map was found")
    verified: bool = Field(description="false for synthetic or unconfirmed maps")
    notes: str = ""
    modbus: ModbusSettings = ModbusSettings()
    defaults: Defaults = Defaults()
    reference_conditions: ReferenceConditions | None = None
    registers: list[Register] = Field(min_length=1)

    @field_validator("medium")
    @classmethod
    def _known_medium(cls, v: str) -> str:
        if v not in MEDIA:
            raise ValueError(f"unknown medium {v!r}; use one of {sorted(MEDIA)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        seen: dict[str, int] = {}
        for i, r in enumerate(self.registers):
            if r.quantity in seen:
                raise ValueError(
                    f"registers[{i}]: quantity {r.quantity} is already mapped by "
                    f"registers[{seen[r.quantity]}]; map each quantity once"
                )
            seen[r.quantity] = i
        gas_std = any(quantity(r.quantity).unit.startswith("Nm³") for r in self.registers)
        if gas_std and self.reference_conditions is None:
            raise ValueError(
                "a profile with Nm³ quantities must state reference_conditions "
                "(temperature_c, pressure_kpa)"
            )
        by_fc: dict[Function, list[Point]] = {}
        for p in self.points():
            by_fc.setdefault(p.function, []).append(p)
        for fc, pts in by_fc.items():
            pts.sort(key=lambda p: p.address)
            for a, b in itertools.pairwise(pts):
                if b.address < a.end:
                    raise ValueError(
                        f"{fc.value} registers of {a.quantity} ({a.address}..{a.end - 1}) "
                        f"overlap {b.quantity} at {b.address}"
                    )
        return self

    def points(self) -> list[Point]:
        d = self.defaults
        return [
            Point(
                quantity=r.quantity,
                unit=r.unit,
                kind=quantity(r.quantity).kind,
                function=r.function or d.function,
                address=r.address,
                type=r.type or d.type,
                word_order=r.word_order or d.word_order,
                byte_order=r.byte_order or d.byte_order,
                scale=r.scale,
                offset=r.offset,
            )
            for r in self.registers
        ]
