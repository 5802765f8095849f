"""DL/T 645-2007 on a serial line: one data identifier per request, through the SerialBus."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from .. import dlt645_codec as codec
from ..errors import CommError
from .serial_bus import SerialBus


class Dlt645Reader:
    """A DataIdReader for one meter address on a shared serial bus."""

    def __init__(self, device: str, bus: SerialBus, address: str, timeout_s: float) -> None:
        self.device, self.bus, self.address, self.timeout_s = device, bus, address, timeout_s
        self._field = codec.address_field(address)

    def turn(self) -> AbstractAsyncContextManager[None]:
        return self.bus.turn()

    async def read_di(self, di: str, size: int) -> bytes:
        what = f"read DI {di} from address {self.address}"
        reply = await self.bus.exchange(
            self.device,
            what,
            codec.read_request(self.address, di),
            self._parser(),
            self.timeout_s,
            hint=f"check the address, baud rate and parity ({self.bus.line}) and wiring",
        )
        where = f"{what} on {self.bus}"
        if reply.is_abnormal:
            code = reply.data[0] if reply.data else 0
            raise CommError(
                self.device,
                where,
                f"abnormal reply, error {code:#04x} ({codec.error_text(code)})",
            )
        echoed = codec.di_text(reply.data[:4])
        if echoed != di.upper():
            raise CommError(self.device, where, f"the reply is for DI {echoed}")
        value = reply.data[4:]
        if len(value) != size:
            raise CommError(
                self.device, where, f"the value has {len(value)} bytes; the profile expects {size}"
            )
        return value

    def _parser(self) -> Callable[[bytearray], codec.Frame | None]:
        def parse(buffer: bytearray) -> codec.Frame | None:
            while True:
                frame, used = codec.find_frame(bytes(buffer))
                del buffer[:used]
                if frame is None:
                    return None
                # an echo of our request, or another meter's late reply, is not the answer
                if (
                    frame.is_reply
                    and frame.address == self._field
                    and frame.function == codec.READ_DATA
                ):
                    return frame

        return parse

    async def close(self) -> None:
        await self.bus.close()
