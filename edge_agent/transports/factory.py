"""Building a RegisterReader for each configured device: the one place that knows every transport."""

from __future__ import annotations

from typing import Protocol

from ..config import DeviceSettings
from . import RegisterReader
from .modbus_tcp import ModbusTcpReader, TcpConnection


class Closeable(Protocol):
    async def close(self) -> None: ...


class TransportFactory:
    """Shares one connection (or one bus) between the devices configured on it.

    Must be used inside the running event loop: pymodbus clients bind to it.
    """

    def __init__(self) -> None:
        self._tcp: dict[tuple[str, int], TcpConnection] = {}

    def reader(self, device: DeviceSettings) -> RegisterReader:
        t = device.transport
        conn = self._tcp.get((t.host, t.port))
        if conn is None:
            conn = self._tcp[(t.host, t.port)] = TcpConnection(t.host, t.port, t.timeout_s)
        return ModbusTcpReader(device.id, conn, t.unit_id)

    def resources(self) -> list[Closeable]:
        return list(self._tcp.values())

    async def close(self) -> None:
        for r in self.resources():
            await r.close()
