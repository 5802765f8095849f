"""DL/T 645-2007 meters on a serial line (a pty pair in tests, or a real RS-485 adapter).

Each meter answers read requests for its own address with the scenario's ground truth at the
moment the request arrives, encoded in its profile's BCD format; a DI the profile lacks gets an
abnormal reply (error 0x02, no requested data). Frames for other addresses are ignored, as on a
real bus. `dead` meters stay silent, `slow_s` delays replies, and with wire_timing every reply
waits for its time on a real wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field

import serial

from device_profiles import Kind
from device_profiles.dlt645 import Dlt645Point, Dlt645Profile, encode_bcd
from edge_agent import dlt645_codec as codec

from .scenario import MeterModel, SimServer
from .serial_line import LineRecord, port_parity, wire_time_s

NO_DATA = 0x02
OTHER = 0x01


def encode_value(point: Dlt645Point, value: float) -> bytes:
    raw = value / point.scale
    if point.kind is Kind.COUNTER:
        # a meter's total shows completed steps only; rounding up would run ahead of the truth
        steps = 10**point.format.decimals
        raw = math.floor(raw * steps + 1e-9) / steps
    return encode_bcd(raw, point.format, signed=point.signed)


@dataclass
class Dlt645Meter:
    model: MeterModel
    dead: bool = False  # fault injection: silence
    slow_s: float = 0.0
    points: dict[str, Dlt645Point] = field(init=False)

    def __post_init__(self) -> None:
        profile = self.model.profile
        if not isinstance(profile, Dlt645Profile):
            raise ValueError(f"meter {self.model.spec.id}: {profile.id} is not a DL/T 645 profile")
        self.points = {p.di: p for p in profile.points()}

    @property
    def address(self) -> str:
        assert self.model.spec.address is not None  # the scenario requires it on dlt645
        return self.model.spec.address

    def answer(self, frame: codec.Frame, now: float) -> bytes:
        if frame.function != codec.READ_DATA or len(frame.data) < 4:
            return codec.abnormal_reply(frame.address, frame.function, OTHER)
        di = codec.di_text(frame.data[:4])
        point = self.points.get(di)
        if point is None:
            return codec.abnormal_reply(frame.address, frame.function, NO_DATA)
        value = encode_value(point, self.model.indicated(point.quantity, now))
        return codec.read_reply(frame.address, di, value)


class Dlt645Simulator:
    def __init__(self, spec: SimServer, models: dict[str, MeterModel]) -> None:
        if spec.serial_port is None:
            raise ValueError(f"simulator {spec.name}: a dlt645 server needs a serial_port")
        self.spec, self.path = spec, spec.serial_port
        self.meters = {m.id: Dlt645Meter(models[m.id]) for m in spec.meters}
        self._by_field = {codec.address_field(m.address): m for m in self.meters.values()}
        self.log: deque[LineRecord] = deque(maxlen=10000)
        self._serial: serial.Serial | None = None
        self._buffer = bytearray()
        self._replies: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if not os.path.exists(self.path):
            raise RuntimeError(f"simulator {self.spec.name}: no serial port {self.path}")
        line = self.spec.line
        self._serial = serial.Serial(
            self.path,
            baudrate=line.baudrate,
            parity=port_parity(self.path, line),
            stopbits=line.stopbits,
            timeout=0,
            exclusive=True,
        )
        asyncio.get_running_loop().add_reader(self._serial.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._serial is not None
        try:
            self._buffer += self._serial.read(4096)
        except serial.SerialException:  # the other end went away (socat stopped)
            asyncio.get_running_loop().remove_reader(self._serial.fileno())
            return
        while True:
            frame, used = codec.find_frame(bytes(self._buffer))
            del self._buffer[:used]
            if frame is None:
                return
            self._handle(frame)

    def _handle(self, frame: codec.Frame) -> None:
        if frame.is_reply:
            return  # another station's answer
        now = time.time()
        if frame.function == codec.READ_ADDRESS:
            alive = [m for m in self.meters.values() if not m.dead]
            if len(alive) == 1:  # with several meters every one would answer: a collision
                meter = alive[0]
                self._reply(meter, codec.read_address_reply(codec.address_field(meter.address)))
            return
        addressed = self._by_field.get(frame.address)
        if addressed is None:
            return  # not addressed to any meter here
        if addressed.dead:
            self.log.append(LineRecord(time.monotonic(), time.monotonic(), addressed.address))
            return
        self._reply(addressed, addressed.answer(frame, now), len(frame.encode()))

    def _reply(self, meter: Dlt645Meter, reply: bytes, request_bytes: int = 16) -> None:
        record = LineRecord(time.monotonic(), 0.0, meter.address)
        self.log.append(record)
        delay = meter.slow_s
        if self.spec.line.wire_timing:
            delay += wire_time_s(self.spec.line, request_bytes + len(reply))
        task = asyncio.get_running_loop().create_task(self._send_later(record, reply, delay))
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def _send_later(self, record: LineRecord, reply: bytes, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self._serial is not None:
            self._serial.write(reply)
            record.end, record.answered = time.monotonic(), True

    async def stop(self) -> None:
        for task in list(self._replies):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._serial is not None:
            asyncio.get_running_loop().remove_reader(self._serial.fileno())
            self._serial.close()
            self._serial = None
