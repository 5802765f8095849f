"""Modbus TCP over pymodbus. Devices behind one address share one connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from device_profiles import Function

from ..errors import CommError
from . import NoAnswer

log = logging.getLogger(__name__)

MODBUS_EXCEPTIONS = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


def exception_error(device: str, what: str, code: int) -> CommError:
    """A Modbus exception reply as an error; 10 and 11 mean the device itself is silent."""
    detail = f"Modbus exception {code} ({MODBUS_EXCEPTIONS.get(code, 'unknown')})"
    if code in (10, 11):
        return NoAnswer(device, what, f"{detail}: check the unit id and the device's wiring")
    return CommError(device, what, detail)


class TcpConnection:
    """One TCP connection; requests on it go one at a time (many gateways need that)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port = host, port
        self._client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0)
        self._lock = asyncio.Lock()

    async def read(
        self, device: str, unit_id: int, function: Function, address: int, count: int
    ) -> list[int]:
        what = f"FC{function.code:02d} {address}+{count} unit {unit_id} at {self.host}:{self.port}"
        async with self._lock:
            try:
                if not self._client.connected and not await self._client.connect():
                    raise NoAnswer(device, what, "connection refused or unreachable")
                if function is Function.HOLDING:
                    rr = await self._client.read_holding_registers(
                        address, count=count, device_id=unit_id
                    )
                else:
                    rr = await self._client.read_input_registers(
                        address, count=count, device_id=unit_id
                    )
            except ModbusException as exc:
                self._client.close()
                raise NoAnswer(device, what, f"no answer ({exc})") from exc
            except OSError as exc:
                self._client.close()
                raise NoAnswer(device, what, f"socket error ({exc})") from exc
        if rr.isError():
            raise exception_error(device, what, getattr(rr, "exception_code", 0))
        words = list(rr.registers)
        if len(words) != count:
            raise CommError(device, what, f"answer has {len(words)} registers")
        return words

    async def close(self) -> None:
        self._client.close()


class ModbusTcpReader:
    """A RegisterReader for one device (unit id) on a shared connection."""

    def __init__(self, device: str, connection: TcpConnection, unit_id: int) -> None:
        self.device, self.connection, self.unit_id = device, connection, unit_id

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        # TCP devices are polled concurrently; the connection orders requests itself
        yield

    async def read(self, function: Function, address: int, count: int) -> list[int]:
        return await self.connection.read(self.device, self.unit_id, function, address, count)

    async def close(self) -> None:
        await self.connection.close()
