"""Modbus TCP meters generated from device profiles, serving the scenario's ground truth.

Registers are computed when a request arrives, so a reading is the true value at that instant,
encoded exactly as the profile says the real meter encodes it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from device_profiles import Function, Kind, Point, Profile, Ratio, encode, is_bcd, is_float
from device_profiles.codec import encode_pattern

from .scenario import MeterModel, SimRatios, SimServer


def encode_point(point: Point, value: float, factor: float = 1.0) -> list[int]:
    """The registers a meter shows for value; factor is the CT/VT ratio it divides by."""
    raw = (value / factor - point.offset) / point.scale
    if point.kind is Kind.COUNTER and not is_float(point.type):
        # a meter's integer total shows completed units only; rounding up would run ahead
        raw = math.floor(raw + 1e-9)
    return encode(raw, point.type, point.word_order, point.byte_order)


def encode_not_available(point: Point) -> list[int]:
    """The registers of the meter's N/A: its first sentinel, a NaN, or BCD that is no number."""
    if point.na:
        pattern = min(point.na)
    elif is_float(point.type):
        return encode(math.nan, point.type, point.word_order, point.byte_order)
    elif is_bcd(point.type):
        pattern = (1 << (16 * point.count)) - 1
    else:
        raise ValueError(
            f"{point.quantity} ({point.type}) has no N/A value in its profile: add na: [...] to "
            "the register or leave the quantity out of not_available"
        )
    return encode_pattern(pattern, point.type, point.word_order, point.byte_order)


def transform_factor(point: Point, ratios: SimRatios) -> float:
    factor = 1.0
    for r in point.transform.ratios if point.transform else ():
        factor *= ratios.ct if r is Ratio.CT else ratios.vt
    return factor


def _valid_ranges(points: list[Point], max_gap: int) -> list[tuple[int, int]]:
    """Address ranges the meter answers: its points, joined across gaps it declares readable."""
    ranges: list[tuple[int, int]] = []
    for p in sorted(points, key=lambda p: p.address):
        if ranges and p.address - ranges[-1][1] <= max_gap:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], p.end))
        else:
            ranges.append((p.address, p.end))
    return ranges


@dataclass
class ServedRead:
    t: float
    unit_id: int
    function: int
    address: int
    count: int


@dataclass
class SimulatedMeter:
    model: MeterModel
    served: deque[ServedRead] = field(default_factory=lambda: deque(maxlen=10000))
    dead: bool = False  # fault injection: answer with "server device failure"
    # unix time of a request; a test compressing a week into seconds moves this clock itself
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        profile = self.model.profile
        if not isinstance(profile, Profile):
            raise ValueError(f"meter {self.model.spec.id}: {profile.id} is not a Modbus profile")
        self.profile = profile
        self._points = {
            fc: [p for p in profile.read_points() if p.function is fc] for fc in Function
        }
        for p in profile.points():
            if p.quantity in self.model.spec.not_available:
                encode_not_available(p)  # refuses, at start, a quantity with no N/A value

    def device(self) -> SimDevice:
        blocks: dict[Function, list[SimData]] = {}
        gap = self.profile.modbus.max_gap
        for fc, pts in self._points.items():
            blocks[fc] = [
                SimData(a, count=b - a, values=0, datatype=SimType.REGISTERS)
                for a, b in _valid_ranges(pts, gap)
            ] or [SimData(0, count=1, datatype=SimType.INVALID)]
        bits = [SimData(0, count=16, values=False, datatype=SimType.BITS)]
        return SimDevice(
            id=self.model.spec.unit_id,
            simdata=(bits, bits, blocks[Function.HOLDING], blocks[Function.INPUT]),
            action=self._on_request,
        )

    async def _on_request(
        self,
        fc: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # meters here are read-only
        if self.dead:
            return ExcCodes.DEVICE_FAILURE
        m = self.profile.modbus
        if count > (1 if m.single_register_only else m.max_block):
            return ExcCodes.ILLEGAL_VALUE  # as such meters answer a read longer than they allow
        now = self.clock()
        self.served.append(ServedRead(now, self.model.spec.unit_id, fc, address, count))
        function = Function.HOLDING if fc == 3 else Function.INPUT
        for p in self._points[function]:
            if p.address < address + count and p.end > address:
                registers[p.address - start : p.end - start] = self._encode(p, now)
        return None

    def _encode(self, p: Point, now: float) -> list[int]:
        spec = self.model.spec
        if p.ratio_of is not None:
            return encode_point(p, spec.ratios.ct if p.ratio_of is Ratio.CT else spec.ratios.vt)
        if p.quantity in spec.not_available:
            return encode_not_available(p)
        shown = self.model.indicated(p.quantity, now)
        return encode_point(p, shown, transform_factor(p, spec.ratios))


class ModbusTcpSimulator:
    """One TCP server with one or more meters (unit ids) behind it."""

    def __init__(
        self,
        spec: SimServer,
        models: dict[str, MeterModel],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self.meters = {m.id: SimulatedMeter(models[m.id], clock=clock) for m in spec.meters}
        self._server = ModbusTcpServer(
            [m.device() for m in self.meters.values()], address=(spec.host, spec.port)
        )

    @property
    def port(self) -> int:
        transport = getattr(self._server, "transport", None)
        sockets = getattr(transport, "sockets", None) if transport else None
        if sockets:
            return int(sockets[0].getsockname()[1])
        return self.spec.port

    async def start(self) -> None:
        """Returns once the socket listens; a taken port is an error naming the server."""
        try:
            await self._server.serve_forever(background=True)
        except RuntimeError as exc:
            raise RuntimeError(
                f"simulator {self.spec.name}: cannot listen on {self.spec.host}:{self.spec.port}"
                " (port taken?)"
            ) from exc

    async def stop(self) -> None:
        await self._server.shutdown()  # type: ignore[no-untyped-call]
