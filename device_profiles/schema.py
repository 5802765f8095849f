"""The schema of a device profile: one meter's register map, strictly validated."""

from __future__ import annotations

import itertools
import math
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from .codec import (
    DataType,
    Order,
    bit_width,
    is_float,
    rollover,
    type_max_pattern,
    type_min_pattern,
)
from .point import Function, Point, Ratio, Transform
from .vocabulary import Kind, check_medium, quantity

__all__ = ["Function", "Point", "Profile", "Ratio", "Transform"]

Sentinel = StrictInt | Literal["nan", "max", "min"]


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
    single_register_only: bool = Field(
        False,
        description="the device refuses multi-register reads: one request per register, "
        "multi-register values read with the torn-read guard",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModbusSettings:
        if self.single_register_only:
            for name in ("max_block", "max_gap"):
                if name in self.model_fields_set:
                    raise ValueError(
                        f"{name}: single_register_only reads one register per request; "
                        f"remove {name}"
                    )
        return self


class ReferenceConditions(_Strict):
    """Base conditions of a gas standard volume; stated on every gas profile."""

    temperature_c: float = Field(ge=-50, le=50)
    pressure_kpa: float = Field(gt=0)


class RatioRegister(_Strict):
    """Where the meter keeps its own CT or VT ratio (primary/secondary = raw × scale)."""

    address: int = Field(ge=0, le=0xFFFF)
    function: Function | None = None
    type: DataType | None = None
    word_order: Order | None = None
    byte_order: Order | None = None
    scale: float = 1.0

    @field_validator("scale")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("a ratio's scale must be positive")
        return v


class ProfileRatios(_Strict):
    ct: RatioRegister | None = None
    vt: RatioRegister | None = None


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
    na: list[Sentinel] = Field(
        [], description="raw bit patterns meaning not available; 'nan', 'max', 'min' of the type"
    )
    valid_range: tuple[float, float] | None = Field(
        None, description="[min, max] in the quantity's unit; outside: quality out_of_range"
    )
    wrap: float | None = Field(
        None, gt=0, description="counters: the value the register shows as 0 again"
    )
    max_rate_per_h: float | None = Field(
        None, gt=0, description="counters: a larger increase per hour is implausible"
    )
    transform: Transform | None = Field(
        None, description="the register is secondary-side: multiply by the CT/VT ratio"
    )

    @field_validator("quantity")
    @classmethod
    def _known_quantity(cls, v: str) -> str:
        try:
            quantity(v)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return v

    @field_validator("na")
    @classmethod
    def _raw_patterns(cls, v: list[int | str]) -> list[int | str]:
        for s in v:
            if isinstance(s, int) and s < 0:
                raise ValueError(
                    f"{s} is negative; write the raw bit pattern, e.g. 0xFFFF for -1 of an i16"
                )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Register:
        q = quantity(self.quantity)
        if self.unit != q.unit:
            raise ValueError(
                f"unit {self.unit!r} is not the unit of {self.quantity} ({q.unit!r}); "
                f"write unit: {q.unit} and convert with scale"
            )
        if self.scale == 0:
            raise ValueError("scale 0 would turn every reading into 0; use the meter's factor")
        if self.valid_range is not None and not self.valid_range[0] < self.valid_range[1]:
            raise ValueError("valid_range: write [min, max] with min < max")
        for name in ("wrap", "max_rate_per_h"):
            if getattr(self, name) is not None and q.kind is not Kind.COUNTER:
                raise ValueError(f"{name}: {self.quantity} is a gauge; only counters have it")
        if self.transform is not None and q.medium != "electricity":
            raise ValueError(
                f"transform: {self.quantity} is not electrical; CT/VT ratios do not apply"
            )
        return self


def _sentinels(r: Register, dtype: DataType, where: str) -> frozenset[int]:
    """Resolve 'max'/'min'/'nan' to bit patterns and check every pattern fits the type."""
    out: set[int] = set()
    for s in r.na:
        if s == "nan":
            if not is_float(dtype):
                raise ValueError(f"{where}.na: 'nan' needs a float type, not {dtype}")
            continue  # every NaN is refused anyway; listing it documents the meter
        if s == "max":
            pattern = type_max_pattern(dtype)
        elif s == "min":
            pattern = type_min_pattern(dtype)
        else:
            pattern = int(s)
        if pattern is None:
            raise ValueError(
                f"{where}.na: {s!r} has no meaning for {dtype}"
                + ("; use 'nan' or a raw bit pattern" if is_float(dtype) else "; it is unsigned")
            )
        if pattern >= 1 << bit_width(dtype):
            raise ValueError(f"{where}.na: {pattern:#x} does not fit {dtype}")
        out.add(pattern)
    return frozenset(out)


class ProfileHeader(_Strict):
    """What every profile says about itself, whatever protocol the meter speaks."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)+$")
    manufacturer: str
    model: str
    medium: str
    source: str = Field(min_length=3, description="where the map was found")
    verified: bool = Field(description="false for synthetic or unconfirmed maps")
    notes: str = ""

    @field_validator("medium")
    @classmethod
    def _known_medium(cls, v: str) -> str:
        return check_medium(v)


def each_quantity_once(quantities: list[str]) -> None:
    """Refuse a profile that maps one quantity twice, naming both entries."""
    seen: dict[str, int] = {}
    for i, q in enumerate(quantities):
        if q in seen:
            raise ValueError(
                f"registers[{i}]: quantity {q} is already mapped by "
                f"registers[{seen[q]}]; map each quantity once"
            )
        seen[q] = i


class Profile(ProfileHeader):
    protocol: Literal["modbus"] = "modbus"
    modbus: ModbusSettings = ModbusSettings()
    defaults: Defaults = Defaults()
    reference_conditions: ReferenceConditions | None = None
    ratios: ProfileRatios | None = Field(
        None, description="registers where the meter keeps its own CT/VT ratios"
    )
    registers: list[Register] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        each_quantity_once([r.quantity for r in self.registers])
        gas_std = any(quantity(r.quantity).unit.startswith("Nm³") for r in self.registers)
        if gas_std and self.reference_conditions is None:
            raise ValueError(
                "a profile with Nm³ quantities must state reference_conditions "
                "(temperature_c, pressure_kpa)"
            )
        points = self.read_points()  # resolves sentinels and wraps, raising on bad ones
        if not self.modbus.single_register_only:
            for p in points:
                if p.count > self.modbus.max_block:
                    raise ValueError(
                        f"{p.quantity}: {p.type} needs {p.count} registers in one read but "
                        f"modbus.max_block is {self.modbus.max_block}; raise max_block or set "
                        "modbus.single_register_only: true"
                    )
        by_fc: dict[Function, list[Point]] = {}
        for p in points:
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
        """The quantities this meter reports, in profile order."""
        return [self._point(i, r) for i, r in enumerate(self.registers)]

    def ratio_points(self) -> list[Point]:
        """The meter's own CT/VT ratio registers (read with the quantities, never published)."""
        if self.ratios is None:
            return []
        out = []
        for ratio in Ratio:
            rr: RatioRegister | None = getattr(self.ratios, ratio.value)
            if rr is not None:
                d = self.defaults
                out.append(
                    Point(
                        quantity=f"ratio.{ratio.value}",
                        unit="1",
                        kind=Kind.GAUGE,
                        function=rr.function or d.function,
                        address=rr.address,
                        type=rr.type or d.type,
                        word_order=rr.word_order or d.word_order,
                        byte_order=rr.byte_order or d.byte_order,
                        scale=rr.scale,
                        offset=0.0,
                        ratio_of=ratio,
                    )
                )
        return out

    def read_points(self) -> list[Point]:
        """Everything one poll reads: the quantities and the ratio registers."""
        return [*self.points(), *self.ratio_points()]

    def ratios_from_config(self) -> set[Ratio]:
        """Ratios the transforms need that the meter's registers do not provide."""
        needed = {ratio for r in self.registers if r.transform for ratio in r.transform.ratios}
        return {r for r in needed if not (self.ratios and getattr(self.ratios, r.value))}

    def _point(self, i: int, r: Register) -> Point:
        d = self.defaults
        dtype = r.type or d.type
        where = f"registers[{i}]"
        kind = quantity(r.quantity).kind
        wrap = r.wrap
        raw_rollover = rollover(dtype)
        if raw_rollover is not None and kind is Kind.COUNTER:
            reachable = raw_rollover * abs(r.scale)
            if wrap is None:
                wrap = reachable
            elif wrap > reachable * (1 + 1e-12):
                raise ValueError(
                    f"{where}.wrap: {dtype} × scale {r.scale:g} never reaches {wrap:g} "
                    f"(it rolls over at {reachable:g}); fix wrap or the type"
                )
        if kind is Kind.COUNTER and r.scale < 0:
            raise ValueError(f"{where}.scale: a counter's scale must be positive")
        if wrap is not None and not math.isfinite(wrap):
            raise ValueError(f"{where}.wrap: must be finite")
        return Point(
            quantity=r.quantity,
            unit=r.unit,
            kind=kind,
            function=r.function or d.function,
            address=r.address,
            type=dtype,
            word_order=r.word_order or d.word_order,
            byte_order=r.byte_order or d.byte_order,
            scale=r.scale,
            offset=r.offset,
            na=_sentinels(r, dtype, where),
            valid_range=r.valid_range,
            wrap=wrap,
            max_rate_per_h=r.max_rate_per_h,
            transform=r.transform,
        )
