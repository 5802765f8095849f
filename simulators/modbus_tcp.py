"""Modbus TCP meters generated from device profiles, serving the scenario's ground truth.

Registers are computed when a request arrives, so a reading is the true value at that instant,
encoded exactly as the profile says the real meter encodes it.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import SimData, SimDevice
from pymodbus.simulator.simutils import DataType as SimType

from device_profiles import Function, Kind, Point, encode, is_float

from .scenario import MeterModel, SimServer


def encode_point(point: Point, value: float) -> list[int]:
    raw = (value - point.offset) / point.scale
    if point.kind is Kind.COUNTER and not is_float(point.type):
        # a meter's integer total shows completed units only; rounding up would run ahead
        raw = math.floor(raw + 1e-9)
    return encode(raw, point.type, point.word_order, point.byte_order)


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

    def __post_init__(self) -> None:
        self._points = {
            fc: [p for p in self.model.profile.points() if p.function is fc] for fc in Function
        }

    def device(self) -> SimDevice:
        blocks: dict[Function, list[SimData]] = {}
        gap = self.model.profile.modbus.max_gap
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
        now = time.time()
        self.served.append(ServedRead(now, self.model.spec.unit_id, fc, address, count))
        function = Function.HOLDING if fc == 3 else Function.INPUT
        for p in self._points[function]:
            if p.address < address + count and p.end > address:
                words = encode_point(p, self.model.value(p.quantity, now))
                registers[p.address - start : p.end - start] = words
        return None


class ModbusTcpSimulator:
    """One TCP server with one or more meters (unit ids) behind it."""

    def __init__(self, spec: SimServer, models: dict[str, MeterModel]) -> None:
        self.spec = spec
        self.meters = {m.id: SimulatedMeter(models[m.id]) for m in spec.meters}
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
