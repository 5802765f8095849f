"""Modbus RTU meters on a serial line (a pty pair in tests, or a real RS-485 adapter).

pymodbus' serial server with the same SimulatedMeter as the TCP simulator, plus what only a
shared line has: a meter that is `dead` stays silent (no gateway answers for it), a unit id that
nobody serves stays silent, `slow_s` delays a meter's replies, and with wire_timing every reply
waits for its time on a real wire. Each request is logged (arrival, reply) so tests can check the
master never talks over a reply and keeps the gaps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import deque

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import SimDevice

from .modbus_tcp import SimulatedMeter
from .scenario import MeterModel, SimServer
from .serial_line import LineRecord, port_parity, wire_time_s

REQUEST_BYTES = 8  # unit, FC, address, count, CRC


class ModbusRtuSimulator:
    def __init__(self, spec: SimServer, models: dict[str, MeterModel]) -> None:
        if spec.serial_port is None:
            raise ValueError(f"simulator {spec.name}: a modbus-rtu server needs a serial_port")
        self.spec, self.path = spec, spec.serial_port
        self.meters = {m.id: SimulatedMeter(models[m.id]) for m in spec.meters}
        self.slow_s: dict[str, float] = {}  # meter id -> extra reply delay
        self.log: deque[LineRecord] = deque(maxlen=10000)
        self._units = {m.model.spec.unit_id for m in self.meters.values()}
        self._requests = 0
        self._server = ModbusSerialServer(
            [self._device(m) for m in self.meters.values()],
            port=self.path,
            baudrate=spec.line.baudrate,
            parity=port_parity(self.path, spec.line),
            stopbits=spec.line.stopbits,
            ignore_missing_devices=True,
            trace_packet=self._trace,
        )

    def _device(self, meter: SimulatedMeter) -> SimDevice:
        device = meter.device()
        inner = device.action
        assert inner is not None
        unit = meter.model.spec.unit_id

        async def action(
            fc: int,
            start: int,
            address: int,
            count: int,
            registers: list[int],
            values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            record = LineRecord(time.monotonic(), 0.0, str(unit))
            self.log.append(record)
            self._requests += 1
            mine = self._requests
            if meter.dead:
                record.end = record.start
                raise NoSuchIdException(f"unit {unit} is dead: silence")
            result = await inner(fc, start, address, count, registers, values)
            delay = self.slow_s.get(meter.model.spec.id, 0.0)
            if self.spec.line.wire_timing:
                delay += wire_time_s(self.spec.line, REQUEST_BYTES + 5 + 2 * count)
            if delay:
                await asyncio.sleep(delay)
            if self._requests != mine:
                # pymodbus answers with the newest request's unit id: a reply this late would
                # pass for another meter's, so it is lost, as it would be in a collision
                record.end = record.start
                raise NoSuchIdException(f"unit {unit} answered too late")
            return result

        return dataclasses.replace(device, action=action)

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if not data or data[0] not in self._units:
            # pymodbus answers an unknown unit id with an exception; on a bus nobody would
            return b""
        now = time.monotonic()
        last = self.log[-1] if self.log else None
        if last is not None and last.target == str(data[0]) and last.end == 0.0:
            last.end, last.answered = now, True
        else:  # refused before the meter saw it (e.g. illegal address)
            self.log.append(LineRecord(now, now, str(data[0]), answered=True))
        return data

    async def start(self) -> None:
        if not os.path.exists(self.path):
            raise RuntimeError(
                f"simulator {self.spec.name}: serial port {self.path} does not exist"
            )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        await self._server.shutdown()  # type: ignore[no-untyped-call]
