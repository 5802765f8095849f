"""Modbus RTU on a serial line: pymodbus builds and checks the frames, the SerialBus owns the line.

pymodbus' own serial client would own the port itself; here the bus does, so that every device
on one RS-485 line, whatever its protocol settings, goes through one queue with one timing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import ReadHoldingRegistersRequest, ReadInputRegistersRequest

from device_profiles import Function

from ..errors import CommError
from .modbus_tcp import exception_error
from .serial_bus import SerialBus


class ModbusRtuReader:
    """A RegisterReader for one unit id on a shared serial bus."""

    def __init__(self, device: str, bus: SerialBus, unit_id: int, timeout_s: float) -> None:
        self.device, self.bus, self.unit_id, self.timeout_s = device, bus, unit_id, timeout_s
        self._framer = FramerRTU(DecodePDU(is_server=False))

    def turn(self) -> AbstractAsyncContextManager[None]:
        return self.bus.turn()

    async def read(self, function: Function, address: int, count: int) -> list[int]:
        what = f"FC{function.code:02d} {address}+{count} unit {self.unit_id}"
        cls = (
            ReadHoldingRegistersRequest
            if function is Function.HOLDING
            else ReadInputRegistersRequest
        )
        request = self._framer.buildFrame(cls(address=address, count=count, dev_id=self.unit_id))
        reply = await self.bus.exchange(
            self.device,
            what,
            request,
            self._parser(function.code),
            self.timeout_s,
            hint=f"check unit id {self.unit_id}, baud rate and parity ({self.bus.line}) and wiring",
        )
        if isinstance(reply, ExceptionResponse):
            raise exception_error(self.device, f"{what} on {self.bus}", reply.exception_code)
        words = list(reply.registers)
        if len(words) != count:
            raise CommError(self.device, what, f"answer has {len(words)} registers, not {count}")
        return words

    def _parser(self, code: int) -> Callable[[bytearray], ModbusPDU | None]:
        def parse(buffer: bytearray) -> ModbusPDU | None:
            if not buffer:
                return None
            # frames of other units (late answers, echoes) are skipped by the framer
            used, pdu = self._framer.handleFrame(bytes(buffer), self.unit_id, 0)
            del buffer[:used]
            if pdu is not None and pdu.function_code & 0x7F != code:
                return None  # not an answer to this request
            return pdu

        return parse

    async def close(self) -> None:
        await self.bus.close()
