"""Building a reader for each configured device: the one place that knows every transport.

Devices on one TCP address share one connection; devices on one serial port share one bus,
and every one of them must agree on the protocol and line settings of that bus.
"""

from __future__ import annotations

import os
from typing import Protocol

from device_profiles.dlt645 import AnyProfile, Dlt645Profile
from metertrace.config import ConfigError

from ..config import DeviceSettings, Dlt645Transport, ModbusRtuTransport, ModbusTcpTransport
from . import DataIdReader, RegisterReader
from .dlt645 import Dlt645Reader
from .modbus_rtu import ModbusRtuReader
from .modbus_tcp import ModbusTcpReader, TcpConnection
from .serial_bus import LineSettings, SerialBus, modbus_rtu_gap_s


class Closeable(Protocol):
    async def close(self) -> None: ...


def port_key(path: str) -> str:
    """/dev/serial/by-id/... and the /dev/ttyUSB0 it points to are one line."""
    return os.path.realpath(path) if os.path.exists(path) else path


class TransportFactory:
    """Must be used inside the running event loop: connections and buses bind to it."""

    def __init__(self) -> None:
        self._tcp: dict[tuple[str, int], TcpConnection] = {}
        self._buses: dict[str, SerialBus] = {}
        self._bus_users: dict[str, dict[str, str]] = {}  # port -> {unit/address: device}

    def reader(self, device: DeviceSettings, profile: AnyProfile) -> RegisterReader | DataIdReader:
        t = device.transport
        if isinstance(profile, Dlt645Profile) != isinstance(t, Dlt645Transport):
            speaks = "dlt645" if isinstance(profile, Dlt645Profile) else "modbus"
            raise ConfigError(
                f"device {device.id}: profile {device.profile} speaks {speaks} but its "
                f"transport is {t.type}; use a transport of type "
                f"{'dlt645' if speaks == 'dlt645' else 'modbus-tcp or modbus-rtu'}"
            )
        if isinstance(t, ModbusTcpTransport):
            conn = self._tcp.get((t.host, t.port))
            if conn is None:
                conn = self._tcp[(t.host, t.port)] = TcpConnection(t.host, t.port, t.timeout_s)
            return ModbusTcpReader(device.id, conn, t.unit_id)
        if isinstance(t, ModbusRtuTransport):
            line = LineSettings(t.baudrate, t.parity, t.stopbits, t.bytesize)
            bus = self._bus(device.id, t.port, line, "modbus-rtu", modbus_rtu_gap_s(line))
            self._claim(bus, device.id, f"unit id {t.unit_id}")
            return ModbusRtuReader(device.id, bus, t.unit_id, t.timeout_s)
        assert isinstance(profile, Dlt645Profile)  # checked above with the transport
        line = LineSettings(
            t.baudrate or profile.dlt645.baudrate,
            t.parity or profile.dlt645.parity,
            t.stopbits,
            t.bytesize,
        )
        bus = self._bus(device.id, t.port, line, "dlt645", t.frame_gap_ms / 1000)
        self._claim(bus, device.id, f"address {t.address}")
        return Dlt645Reader(device.id, bus, t.address, t.timeout_s)

    def _bus(
        self, device: str, port: str, line: LineSettings, protocol: str, gap_s: float
    ) -> SerialBus:
        key = port_key(port)
        bus = self._buses.get(key)
        if bus is None:
            bus = self._buses[key] = SerialBus(port, line, protocol, gap_s)
            self._bus_users[key] = {}
            return bus
        if (bus.protocol, bus.line, bus.gap_s) != (protocol, line, gap_s):
            first = next(iter(self._bus_users[key].values()))
            raise ConfigError(
                f"device {device}: serial port {port} is already used by {first} with "
                f"{bus.protocol} at {bus.line} (gap {bus.gap_s * 1000:g} ms), this device asks "
                f"for {protocol} at {line} (gap {gap_s * 1000:g} ms); every device on one line "
                "must use the same protocol and settings"
            )
        return bus

    def _claim(self, bus: SerialBus, device: str, slot: str) -> None:
        users = self._bus_users[port_key(bus.path)]
        if slot in users:
            raise ConfigError(
                f"device {device}: {slot} on {bus.path} is already {users[slot]}'s; two devices "
                "answering to one address on one line garble each other's replies"
            )
        users[slot] = device

    def buses(self) -> list[SerialBus]:
        return list(self._buses.values())

    def resources(self) -> list[Closeable]:
        return [*self._tcp.values(), *self._buses.values()]

    async def close(self) -> None:
        for r in self.resources():
            await r.close()
