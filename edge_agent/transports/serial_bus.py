"""One owner per physical serial line (RS-485): requests strictly one at a time, with gaps.

Every device configured on the same port shares one SerialBus. A poll takes the bus for all of
its requests (`turn()`), so a device's values come from one moment and its timestamp is when it
got the line, not when it started waiting; between any two frames the bus keeps the protocol's
silent interval. A request that gets no answer holds the line for the device's timeout and no
longer; what arrives late is discarded before the next request is sent.

POSIX only (asyncio add_reader on the port's file descriptor), like the gateways it runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import serial

from . import NoAnswer

log = logging.getLogger(__name__)
T = TypeVar("T")

Parity = Literal["N", "E", "O"]


@dataclass(frozen=True, slots=True)
class LineSettings:
    baudrate: int
    parity: Parity
    stopbits: int = 1
    bytesize: int = 8

    @property
    def bits_per_char(self) -> int:
        return 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits

    def transfer_s(self, nbytes: int) -> float:
        """How long nbytes take on the wire at this baud rate."""
        return nbytes * self.bits_per_char / self.baudrate

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"


def modbus_rtu_gap_s(line: LineSettings) -> float:
    """Modbus over serial line 2.5.1.1: 3.5 character times, fixed 1.75 ms above 19200 baud."""
    return 1.75e-3 if line.baudrate > 19200 else 3.5 * line.transfer_s(1)


class SerialPort:
    """A serial port read through the event loop; bytes collect in a buffer."""

    def __init__(self, path: str, line: LineSettings) -> None:
        self.path, self.line = path, line
        self.buffer = bytearray()
        self._serial: serial.Serial | None = None
        self._arrived = asyncio.Event()
        self._error: str | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        """Raises OSError with the reason (missing device, no permission, in use)."""
        try:
            port = serial.Serial(
                self.path,
                baudrate=self.line.baudrate,
                bytesize=self.line.bytesize,
                parity=self.line.parity,
                stopbits=self.line.stopbits,
                timeout=0,
                write_timeout=2.0,
                exclusive=True,  # a second process on the same line would garble both
            )
        except (serial.SerialException, ValueError) as exc:
            raise OSError(str(exc)) from exc
        self._serial, self._error = port, None
        asyncio.get_running_loop().add_reader(port.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._serial is not None
        try:
            data = self._serial.read(4096)
        except (serial.SerialException, OSError) as exc:
            self._error = str(exc)
            self.close()
        else:
            self.buffer += data
        self._arrived.set()

    def discard_input(self) -> None:
        if self._serial is not None:
            self._serial.reset_input_buffer()
        self.buffer.clear()

    def write(self, data: bytes) -> None:
        if self._serial is None:
            raise OSError("port is closed")
        try:
            self._serial.write(data)
        except serial.SerialException as exc:  # includes the write timeout
            self._error = str(exc)
            self.close()
            raise OSError(self._error) from exc

    async def receive(self, parse: Callable[[bytearray], T | None], deadline: float) -> T | None:
        """parse(buffer) on every arrival until it returns a result, or None at the deadline.

        parse may delete the bytes it has used or ruled out from the front of the buffer.
        """
        while True:
            if (result := parse(self.buffer)) is not None:
                return result
            if self._error is not None:
                raise OSError(self._error)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def close(self) -> None:
        if self._serial is not None:
            with contextlib.suppress(Exception):  # the loop may already be closed
                asyncio.get_running_loop().remove_reader(self._serial.fileno())
            self._serial.close()
            self._serial = None


class SerialBus:
    def __init__(self, path: str, line: LineSettings, protocol: str, gap_s: float) -> None:
        self.path, self.line, self.protocol, self.gap_s = path, line, protocol, gap_s
        self.port = SerialPort(path, line)
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[object] | None = None
        self._last_end = 0.0

    def __str__(self) -> str:
        return f"{self.path} ({self.protocol}, {self.line})"

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """The line for the calling task alone until the block ends (re-entrant per task)."""
        me = asyncio.current_task()
        if self._holder is me:
            yield
            return
        async with self._lock:
            self._holder = me
            try:
                yield
            finally:
                self._holder = None

    async def exchange(
        self,
        device: str,
        what: str,
        request: bytes,
        parse: Callable[[bytearray], T | None],
        timeout_s: float,
        hint: str = "",
    ) -> T:
        """Send request and return parse's result for the reply, or raise NoAnswer.

        hint says what to check when the device stays silent (address, baud rate, wiring).
        """
        async with self.turn():
            where = f"{what} on {self}"
            if not self.port.is_open:
                try:
                    self.port.open()
                except OSError as exc:
                    raise NoAnswer(device, where, f"cannot open the serial port: {exc}") from exc
            wait = self._last_end + self.gap_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.port.discard_input()  # a late answer to an earlier request is not ours
            start = time.monotonic()
            try:
                self.port.write(request)
                # the answer cannot start before the request has left the wire
                deadline = start + self.line.transfer_s(len(request)) + timeout_s
                result = await self.port.receive(parse, deadline)
            except OSError as exc:
                self._last_end = time.monotonic()
                raise NoAnswer(device, where, f"serial port failed: {exc}") from exc
            self._last_end = time.monotonic()
            if result is None:
                heard = bytes(self.port.buffer)
                detail = f"no answer within {timeout_s:g} s"
                if heard:
                    detail += f" (heard {len(heard)} bytes that are no valid reply: {heard.hex()})"
                raise NoAnswer(device, where, detail + (f"; {hint}" if hint else ""))
            return result

    async def close(self) -> None:
        self.port.close()
